/** Resolves once `check` holds, polling every 20 ms; throws after `ms` (tests of processes and sockets wait on events). */
export async function until(check: () => boolean, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
