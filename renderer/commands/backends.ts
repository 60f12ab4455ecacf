/** The engine's backends: what the backend choice before a run offers, and what the Models screen lists. */
import { setBackends } from '../stores/connection.js';
import { forgetUnavailableBackend } from '../stores/settings.js';
import { attempt, request } from './engine.js';

export async function loadBackends(): Promise<void> {
  const listed = await attempt('listBackends', () => request('listBackends', {}));
  if (!listed) return;
  setBackends(listed.default, listed.backends);
  forgetUnavailableBackend(listed.backends.filter((b) => b.available).map((b) => b.name));
}
