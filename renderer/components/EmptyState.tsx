/** What a screen shows when it has nothing yet, or while its list loads. */
import { memo, type ReactNode } from 'react';

export interface EmptyStateProps {
  readonly title: string;
  readonly children?: ReactNode;
  readonly loading?: boolean;
  readonly testId?: string;
}

export const EmptyState = memo(function EmptyState({ title, children, loading = false, testId = 'empty-state' }: EmptyStateProps) {
  return (
    <div className="empty" data-testid={testId} aria-busy={loading}>
      {loading && <span className="spinner" aria-hidden="true" />}
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
});
