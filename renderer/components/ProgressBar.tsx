/** A progress bar with its value exposed to assistive technology (and to tests). */
import { memo } from 'react';

export interface ProgressBarProps {
  readonly fraction: number;
  readonly label: string;
  readonly tone?: 'active' | 'done' | 'stopped';
}

export const ProgressBar = memo(function ProgressBar({ fraction, label, tone = 'active' }: ProgressBarProps) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  return (
    <div className={`progress progress-${tone}`} role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
      <div className="progress-fill" style={{ width: `${percent}%` }} />
    </div>
  );
});
