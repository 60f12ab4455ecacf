/**
 * One heavy job at a time per engine (the math saturates its thread); later jobs wait in order. Each job gets
 * its own AbortSignal, so cancelling a queued job drops it and cancelling the running one stops it between chunks.
 */

export interface Job {
  readonly id: string;
  run(signal: AbortSignal): Promise<void>;
  /** Called instead of `run` when the job is cancelled before it started. */
  onCancelledWhileQueued?(): void;
}

export class JobQueue {
  private readonly waiting: Job[] = [];
  private current: { job: Job; controller: AbortController } | null = null;
  private running: Promise<void> = Promise.resolve();

  enqueue(job: Job): void {
    this.waiting.push(job);
    this.pump();
  }

  /** True if the job was queued or running (it will end as cancelled). */
  cancel(id: string): boolean {
    if (this.current?.job.id === id) {
      this.current.controller.abort();
      return true;
    }
    const index = this.waiting.findIndex((j) => j.id === id);
    if (index < 0) return false;
    const [job] = this.waiting.splice(index, 1);
    job.onCancelledWhileQueued?.();
    return true;
  }

  isRunning(id: string): boolean {
    return this.current?.job.id === id;
  }

  isQueued(id: string): boolean {
    return this.waiting.some((j) => j.id === id);
  }

  /** Resolves when nothing is running or waiting (for tests and orderly shutdown). */
  async whenIdle(): Promise<void> {
    while (this.current) await this.running;
  }

  /** Cancels everything (engine shutdown). */
  cancelAll(): void {
    for (const job of this.waiting.splice(0)) job.onCancelledWhileQueued?.();
    this.current?.controller.abort();
  }

  private pump(): void {
    if (this.current || this.waiting.length === 0) return;
    const job = this.waiting.shift()!;
    const controller = new AbortController();
    this.current = { job, controller };
    this.running = job.run(controller.signal).catch(() => undefined).finally(() => {
      this.current = null;
      this.pump();
    });
  }
}
