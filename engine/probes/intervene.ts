/**
 * Interventions along a book at position t, each read against the unmodified run, token for token:
 *   frozen      the inner loop stops learning from t on (ForwardOptions.freezeInnerLoopFrom): TTT and delta-rule
 *               models only; the gap to the unmodified run is what test-time learning buys;
 *   reset       the carried state goes back to a document's start at t (TTT W0/b0, Mamba SSM state and conv tails
 *               zero, the Transformer's KV cache empty), positions kept;
 *   transplant  at t the model takes the state it had after reading another text (the donor).
 * The stream runs once to t; each intervention forks there, so every chunk is cut exactly at t.
 */
import type { InterventionKind } from '../protocol.js';
import type { CausalLM } from '../models/model.js';
import { type FeedOptions, resetState, TokenStream } from './stream.js';

export interface InterveneInput {
  readonly book: Int32Array;
  readonly at: number;
  readonly interventions: readonly InterventionKind[];
  /** Transplant: the donor text's token ids. */
  readonly donor?: Int32Array;
}

export interface InterveneResult {
  /** NLL (nats) of every book token in the unmodified run (NaN for the first). */
  readonly nll: Float32Array;
  /** Per intervention the model took: NLL of every token (equal to `nll` before t). */
  readonly intervened: Partial<Record<InterventionKind, Float32Array>>;
  /** Interventions the model cannot take, and why. */
  readonly skipped: Partial<Record<InterventionKind, string>>;
}

/** Whether a model has an inner loop to freeze (TTT, DeltaNet); the reason when it has none. */
export const freezeUnsupported = (model: CausalLM): string | null =>
  model.family === 'ttt' || model.family === 'delta' ? null : `a ${model.family} model has no inner loop to freeze`;

export function interveneWork(input: InterveneInput, model: CausalLM): number {
  const taken = input.interventions.filter((k) => !(k === 'frozen' && freezeUnsupported(model)));
  return input.book.length + taken.length * (input.book.length - input.at) + (taken.includes('transplant') ? input.donor?.length ?? 0 : 0);
}

/** Mean of `after − before` over the tokens from `from` on (NaN-free tokens only). */
export function meanDelta(before: Float32Array, after: Float32Array, from: number): number {
  let s = 0, n = 0;
  for (let i = from; i < before.length; i++) {
    const d = after[i] - before[i];
    if (Number.isFinite(d)) {
      s += d;
      n++;
    }
  }
  return n === 0 ? NaN : s / n;
}

export async function runInterventions(model: CausalLM, input: InterveneInput, options: FeedOptions): Promise<InterveneResult> {
  const { book, at } = input;
  if (at > book.length) throw new Error(`position ${at} is past the text's ${book.length} tokens`);
  const nll = new Float32Array(book.length);
  const intervened: Partial<Record<InterventionKind, Float32Array>> = {};
  const skipped: Partial<Record<InterventionKind, string>> = {};
  const main = TokenStream.fresh(model);
  try {
    nll.set((await main.feed(book.subarray(0, at), options)).nll, 0);
    for (const kind of input.interventions) {
      if (kind === 'frozen' && freezeUnsupported(model)) {
        skipped.frozen = freezeUnsupported(model)!;
        continue;
      }
      if (kind === 'transplant' && !input.donor) {
        skipped.transplant = 'no donor text was given';
        continue;
      }
      const fork = main.fork(kind === 'frozen' ? { freezeInnerLoopFrom: at } : {});
      try {
        if (kind === 'reset') fork.replaceState(resetState(model, at));
        if (kind === 'transplant') {
          const donor = TokenStream.fresh(model);
          try {
            await donor.feed(input.donor!, options);
            fork.replaceState(donor.takeState());
          } finally {
            donor.dispose();
          }
        }
        const out = new Float32Array(book.length);
        out.set(nll.subarray(0, at));
        out.set((await fork.feed(book.subarray(at), options)).nll, at);
        intervened[kind] = out;
      } finally {
        fork.dispose();
      }
    }
    nll.set((await main.feed(book.subarray(at), options)).nll, at);
  } finally {
    main.dispose();
  }
  return { nll, intervened, skipped };
}
