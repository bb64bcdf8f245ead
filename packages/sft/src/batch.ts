/**
 * Batches as transformers' data collators make them: rows right-padded to the longest in the batch with the pad id
 * (the paper: pad = EOS), an attention mask, labels = input ids where the token is a target and -100 elsewhere
 * (padding included). Optional packing puts several examples in one row without attention across them (segments,
 * position ids restarting per example, no target at an example's first token: TRL's padding-free packing).
 */
import type { TrainBatch } from '@polyglot/model';
import type { Example } from './data.js';
import { SftError } from './errors.js';
import { mixSeed, permutation } from './rng.js';

/** transformers' ignore_index. */
export const IGNORE = -100;

/** A collated batch with its token counts. */
export interface Batch extends TrainBatch {
  inputIds: Int32Array;
  labels: Int32Array;
  segments: Int32Array;
  /** 1 for tokens, 0 for padding (the attention mask). */
  attentionMask: Uint8Array;
  /** Non-padding tokens. */
  tokens: number;
  /** Positions in the loss (labels not ignored after the shift). */
  targetTokens: number;
}

/** Right-pads examples into one batch. */
export function collate(examples: readonly Example[], padId: number): Batch {
  if (examples.length === 0) throw new SftError('SFT_BAD_ARG', 'collate needs at least one example');
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE);
  const segments = new Int32Array(B * T);
  const attentionMask = new Uint8Array(B * T);
  let tokens = 0;
  let targetTokens = 0;
  examples.forEach((ex, b) => {
    const o = b * T;
    for (let t = 0; t < ex.ids.length; t++) {
      inputIds[o + t] = ex.ids[t];
      attentionMask[o + t] = 1;
      segments[o + t] = ex.segments ? ex.segments[t] : 1;
      if (ex.targets[t] && t > 0) {
        labels[o + t] = ex.ids[t];
        targetTokens++;
      }
    }
    tokens += ex.ids.length;
  });
  return {
    batch: B,
    length: T,
    inputIds,
    labels,
    segments,
    attentionMask,
    tokens,
    targetTokens,
  };
}

/**
 * Packs examples into rows of at most `maxLength` tokens, best-fit decreasing (TRL's default `bfd` strategy):
 * longest first, each into the fullest row it fits. Each example keeps its own segment; its first token is not a
 * target (nothing from the previous example predicts it).
 */
export function packExamples(examples: readonly Example[], maxLength: number): Example[] {
  const order = examples.map((_, i) => i).sort((a, b) => examples[b].ids.length - examples[a].ids.length);
  const rows: { items: number[]; used: number }[] = [];
  for (const i of order) {
    const n = Math.min(examples[i].ids.length, maxLength);
    let best = -1;
    for (let r = 0; r < rows.length; r++) {
      const free = maxLength - rows[r].used;
      if (free >= n && (best < 0 || rows[r].used > rows[best].used)) best = r;
    }
    if (best < 0) rows.push({ items: [i], used: n });
    else {
      rows[best].items.push(i);
      rows[best].used += n;
    }
  }
  return rows.map(({ items, used }) => {
    const ids: number[] = [];
    const targets = new Uint8Array(used);
    const segments = new Int32Array(used);
    items.forEach((i, k) => {
      const ex = examples[i];
      const n = Math.min(ex.ids.length, maxLength);
      const start = ids.length;
      for (let t = 0; t < n; t++) {
        ids.push(ex.ids[t]);
        targets[start + t] = t === 0 ? 0 : ex.targets[t];
        segments[start + t] = k + 1;
      }
    });
    return { ids, targets, segments };
  });
}

/** How the examples are ordered in each epoch. */
export interface OrderOptions {
  /** Sort by token length, ascending (stable; the same every epoch). Wins over shuffle. */
  sortByLength?: boolean;
  /** Seeded shuffle, a new permutation each epoch. */
  shuffle?: boolean;
  seed?: number;
}

/** The example order of an epoch (0-based). */
export function epochOrder(examples: readonly Example[], epoch: number, opts: OrderOptions): number[] {
  const n = examples.length;
  if (opts.sortByLength) {
    return Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => examples[a].ids.length - examples[b].ids.length,
    );
  }
  if (opts.shuffle) return permutation(n, mixSeed(opts.seed ?? 0, 0x5eed, epoch));
  return Array.from({ length: n }, (_, i) => i);
}

/** The batches of an epoch: the order cut into batches of `batchSize` (the last may be short). */
export function epochBatches(order: readonly number[], batchSize: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}
