/** The one-line banner under the header: errors from commands, notices about the connection. */
import { memo } from 'react';
import { dismissBanner, useViewStore } from '../stores/view.js';

export const Banner = memo(function Banner() {
  const banner = useViewStore((s) => s.banner);
  if (!banner) return null;
  return (
    <div className={`banner banner-${banner.tone}`} role={banner.tone === 'error' ? 'alert' : 'status'} data-testid="banner">
      <span className="banner-text" title={banner.message}>{banner.message}</span>
      <button type="button" className="banner-close" aria-label="Dismiss" onClick={dismissBanner}>×</button>
    </div>
  );
});
