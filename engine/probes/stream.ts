/**
 * A model reading one token stream in-process, for the probes: per-token NLL and greedy choices, carried state that
 * can be forked (every tensor cloned), reset or replaced at any position. Chunks are cut wherever the caller feeds,
 * so a fork or an intervention lands exactly at its token.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type CausalLM, type ForwardOptions, type ModelState, releaseState, runChunk } from '../models/model.js';

/** Deep copy of a carried state: every tensor cloned (the copy owns its handles), everything else copied. */
export function cloneState<S extends ModelState>(state: S): S {
  const copy = (value: unknown): unknown => {
    if (value instanceof tf.Tensor) return tf.clone(value);
    if (Array.isArray(value)) return value.map(copy);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
    return value;
  };
  return copy(state) as S;
}

/**
 * The state a document starts with, placed at absolute position `position`: TTT W0/b0 and no partial gradients,
 * Mamba's SSM state and conv tail zero, an empty KV cache, zero conv tails. Positions stay absolute (RoPE, the TTT
 * mini-batch phase), so a reset at t reads the text after t as a fresh run would, up to RoPE's relative rounding.
 */
export function resetState<S extends ModelState>(model: CausalLM<S>, position: number): S {
  return { ...model.initialState(), position };
}

/** Reads tokens one chunk at a time; `onTokens` counts them, `signal` stops between chunks. */
export interface FeedOptions {
  readonly chunkTokens: number;
  readonly signal?: AbortSignal;
  readonly onTokens?: (tokens: number) => void;
}

export interface FeedResult {
  /** nll[i]: −log p(ids[i] | everything before), nats; NaN for a stream's very first token. */
  readonly nll: Float32Array;
  /** greedy[i]: the model's most likely token at ids[i]'s place (−1 where nothing came before). */
  readonly greedy: Int32Array;
}

export class ProbeCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export class TokenStream<S extends ModelState = ModelState> {
  /** Log-probabilities of the next token after what was read so far; null before the first token. */
  private nextLogProbs: Float32Array | null;

  constructor(
    readonly model: CausalLM<S>,
    private state: S,
    nextLogProbs: Float32Array | null = null,
    /** Options for every chunk (e.g. `freezeInnerLoopFrom`). */
    public forwardOptions: ForwardOptions = {},
  ) {
    this.nextLogProbs = nextLogProbs;
  }

  static fresh<S extends ModelState>(model: CausalLM<S>, options: ForwardOptions = {}): TokenStream<S> {
    return new TokenStream(model, model.initialState(), null, options);
  }

  get position(): number {
    return this.state.position;
  }

  /** An independent copy at the same place (the carried state cloned). */
  fork(options: ForwardOptions = this.forwardOptions): TokenStream<S> {
    return new TokenStream(this.model, cloneState(this.state), this.nextLogProbs, options);
  }

  /** Replaces the carried state (the stream takes ownership of `state` and frees its own). */
  replaceState(state: S): void {
    releaseState(this.state, state);
    this.state = state;
  }

  /** Hands the carried state to the caller (who then owns it); the stream must not be used again. */
  takeState(): S {
    const s = this.state;
    this.state = null as unknown as S;
    return s;
  }

  /** Reads `ids`, scoring each token against what came before it (the previous feed's last prediction included). */
  async feed(ids: Int32Array, options: FeedOptions): Promise<FeedResult> {
    const nll = new Float32Array(ids.length).fill(NaN);
    const greedy = new Int32Array(ids.length).fill(-1);
    for (let from = 0; from < ids.length; from += options.chunkTokens) {
      if (options.signal?.aborted) throw new ProbeCancelled();
      const chunk = ids.subarray(from, Math.min(ids.length, from + options.chunkTokens));
      const out = runChunk(this.model, chunk, this.state, this.forwardOptions);
      this.state = out.state;
      const T = chunk.length, V = out.logits.shape[1];
      const scored = tf.tidy(() => {
        const lp = tf.logSoftmax(out.logits); // [T, V]
        const flat = tf.reshape(lp, [-1]); // [T·V]
        const rows = Int32Array.from({ length: T - 1 }, (_, i) => i * V + chunk[i + 1]);
        const picked = T > 1 ? tf.neg(tf.gather(flat, tf.tensor1d(rows, 'int32'))) : tf.zeros([0]); // [T−1]
        return { picked, argmax: tf.argMax(lp, 1), last: tf.slice(lp, [T - 1, 0], [1, V]) };
      });
      tf.dispose([out.logits, out.innerLoop?.perLayer ?? [], out.weightTrace?.metrics ?? []]);
      const [picked, argmax, last] = await Promise.all([scored.picked.data(), scored.argmax.data(), scored.last.data()]);
      tf.dispose([scored.picked, scored.argmax, scored.last]);
      if (this.nextLogProbs) {
        nll[from] = -this.nextLogProbs[chunk[0]];
        greedy[from] = argmaxOf(this.nextLogProbs);
      }
      nll.set(picked as Float32Array, from + 1);
      for (let i = 0; i + 1 < T; i++) greedy[from + i + 1] = argmax[i];
      this.nextLogProbs = last as Float32Array;
      options.onTokens?.(T);
    }
    return { nll, greedy };
  }

  dispose(): void {
    if (this.state) releaseState(this.state, null);
    this.state = null as unknown as S;
  }
}

function argmaxOf(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
