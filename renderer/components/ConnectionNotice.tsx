/** A calm line while the engine is starting, restarting or unreachable; nothing once it is connected. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { type ConnectionState, useConnectionStore } from '../stores/connection.js';

const selectNotice = (s: ConnectionState) => ({ status: s.status, detail: s.detail });

const defaultText: Record<ConnectionState['status'], string> = {
  connecting: 'Starting the engine…',
  connected: '',
  reconnecting: 'Lost the connection to the engine; reconnecting…',
  restarting: 'The engine stopped; restarting it. Finished runs are safe on disk.',
  disconnected: 'The engine is not running.',
};

export const ConnectionNotice = memo(function ConnectionNotice() {
  const { status, detail } = useConnectionStore(useShallow(selectNotice));
  if (status === 'connected') return null;
  const tone = status === 'connecting' ? 'info' : 'error';
  return (
    <div className={`banner banner-${tone}`} role="status" data-testid="connection-notice">
      {status !== 'disconnected' && <span className="spinner" aria-hidden="true" />}
      <span className="banner-text" title={detail ?? undefined}>{detail ?? defaultText[status]}</span>
    </div>
  );
});
