/**
 * Models of one run advance over the book side by side: each streams in its own workers, and none may run more
 * than a few chunks ahead of the slowest (in fractions of the book, so models with different tokenizers keep to
 * the same text). At any moment every model has covered about the same leading part of the book, so the
 * comparison means something from the first seconds, and the cores a fast model would spend running ahead go to
 * the slow ones. The numbers cannot depend on this schedule: each model's state lives in its own workers.
 *
 * The same bookkeeping gives honest progress: each model's recent speed, and times left that account for
 * attention whose cost grows with the position (full causal attention past a model's window).
 */
import type { ModelProgress, NotificationParams, RunStatus } from '../protocol.js';

interface Lane {
  readonly model: string;
  readonly total: number;
  /** Tokens of context past which attention stops growing; null: it grows with every token (full attention). */
  readonly boundedAttention: boolean;
  status: RunStatus;
  done: number;
  bitsPerByte: number | null;
  /** (seconds, tokens done) over the last while, for the recent speed. */
  readonly samples: [number, number][];
}

/**
 * How far back the recent speed looks: at least this long, and a third of the run so far, so the time left follows a
 * change of pace without jumping with every busy moment of the machine.
 */
const rateWindowSeconds = 12;
const rateWindowShare = 1 / 3;
/**
 * Context length at which attention costs a small model about as much as the rest of it per token; only the shape of
 * the time-left estimate for full attention depends on it (cost per token ∝ 1 + position / this).
 */
const attentionCrossover = 2048;

/** Work to process the first n tokens, in units of a token at position 0. */
const work = (n: number, bounded: boolean) => (bounded ? n : n + (n * n) / (2 * attentionCrossover));

export class SideBySide {
  private readonly lanes: Lane[];
  private readonly waiters = new Set<() => void>();
  private readonly started = performance.now();

  /**
   * `lead`: how far (a fraction of the book) a model may run ahead of the slowest; it must cover the chunks a model
   * keeps in flight, or the slowest could wait on itself.
   */
  constructor(models: readonly { model: string; total: number; boundedAttention: boolean }[], private readonly lead: number) {
    this.lanes = models.map((m) => ({ ...m, status: 'queued', done: 0, bitsPerByte: null, samples: [] }));
  }

  private seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  private fraction(lane: Lane): number {
    return lane.total > 0 ? lane.done / lane.total : 1;
  }

  /** The furthest model `index` may go now: the slowest other running model's position plus the lead. */
  private limit(index: number): number {
    let slowest = Infinity;
    this.lanes.forEach((lane, i) => {
      if (i !== index && (lane.status === 'running' || lane.status === 'queued')) slowest = Math.min(slowest, this.fraction(lane));
    });
    return slowest + this.lead;
  }

  /** Resolves once model `index` may send tokens up to `end` into its workers. */
  async admit(index: number, end: number): Promise<void> {
    const lane = this.lanes[index];
    while (end / lane.total > this.limit(index)) await new Promise<void>((resolve) => this.waiters.add(resolve));
  }

  private wake(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const resolve of waiting) resolve();
  }

  setStatus(index: number, status: RunStatus): void {
    this.lanes[index].status = status;
    this.wake();
  }

  advance(index: number, done: number, bitsPerByte: number | null): void {
    const lane = this.lanes[index];
    lane.done = done;
    lane.bitsPerByte = bitsPerByte;
    const now = this.seconds();
    lane.samples.push([now, done]);
    const window = Math.max(rateWindowSeconds, now * rateWindowShare);
    while (lane.samples.length > 2 && now - lane.samples[1][0] > window) lane.samples.shift();
    this.wake();
  }

  /** Tokens per second over the last while (since its first chunk until there is a while to look back on). */
  private rate(lane: Lane): number | null {
    if (lane.samples.length < 2) return null;
    const [t0, d0] = lane.samples[0];
    const [t1, d1] = lane.samples[lane.samples.length - 1];
    return t1 > t0 ? (d1 - d0) / (t1 - t0) : null;
  }

  /** Seconds left for one model at its recent speed, with the growing cost of unbounded attention counted. */
  private eta(lane: Lane): number | null {
    if (lane.status !== 'running') return lane.status === 'queued' ? null : 0;
    const rate = this.rate(lane);
    if (rate === null || rate <= 0) return null;
    const costNow = lane.boundedAttention ? 1 : 1 + lane.done / attentionCrossover;
    return (work(lane.total, lane.boundedAttention) - work(lane.done, lane.boundedAttention)) / (rate * costNow);
  }

  /** The whole run's progress, as the `runProgress` notification carries it. */
  progress(runId: string): NotificationParams<'runProgress'> {
    const models: ModelProgress[] = this.lanes.map((lane) => ({
      model: lane.model, status: lane.status, tokensDone: lane.done, tokensTotal: lane.total, tokensPerSecond: this.rate(lane), etaSeconds: this.eta(lane),
      bitsPerByte: lane.bitsPerByte,
    }));
    const live = this.lanes.filter((l) => l.status === 'running' || l.status === 'queued');
    // models advance together, so the run ends when its slowest model does
    const etas = live.map((l) => this.eta(l));
    const eta = live.length === 0 ? 0 : etas.some((e) => e === null) ? null : Math.max(...(etas as number[]));
    const fraction = this.lanes.reduce((sum, l) => sum + (l.status === 'failed' ? 1 : this.fraction(l)), 0) / Math.max(1, this.lanes.length);
    return { runId, fraction, etaSeconds: eta, elapsedSeconds: this.seconds(), models };
  }
}
