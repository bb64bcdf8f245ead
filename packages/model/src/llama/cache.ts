/**
 * Key/value caches. A cache belongs to one batch: `length` cache slots are filled, the same slot index in every row
 * (left padding keeps all rows aligned), `keyMask[b][slot]` says whether that slot of row b holds a real token, and
 * `nextPos[b]` is the position id the next real token of row b gets (`cumsum(mask) - 1`, as transformers'
 * `generate` computes it).
 *
 * Two storages, one per attention implementation:
 * - {@link HostKVCache}: preallocated host buffers `[batch, kvHeads, capacity, headDim]` per layer, written in place
 *   at the new slots (O(new tokens) per step; capacity doubles when full). Used with the fused attention kernel on
 *   the in-process backends (wasm, cpu), whose tensors live in this process's memory.
 * - {@link TensorKVCache}: per layer `[batch, kvHeads, length, headDim]` tensors on the backend, extended by one
 *   concat per step (a device-side copy, nothing re-uploaded). Used by the tensor-op attention, for GPU backends.
 */
import * as tf from '@tensorflow/tfjs';

export abstract class KVCacheBase {
  readonly batch: number;
  /** Filled cache slots (per row, pads included). */
  length = 0;
  /** Per row: 1 where the slot holds a real token, 0 for padding. */
  readonly keyMask: Uint8Array[];
  /** Per row: the position id of the row's next real token. */
  readonly nextPos: number[];
  protected disposed = false;

  constructor(batch: number, capacity: number) {
    this.batch = batch;
    this.keyMask = Array.from({ length: batch }, () => new Uint8Array(Math.max(capacity, 1)));
    this.nextPos = new Array<number>(batch).fill(0);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Records T new slots per row (mask rows of length T) and grows the mask storage. */
  appendMask(mask: ArrayLike<number>[], t: number): void {
    const need = this.length + t;
    for (let b = 0; b < this.batch; b++) {
      let row = this.keyMask[b];
      if (row.length < need) {
        const grown = new Uint8Array(Math.max(need, 2 * row.length));
        grown.set(row);
        row = grown;
        this.keyMask[b] = row;
      }
      for (let j = 0; j < t; j++) row[this.length + j] = mask[b][j] ? 1 : 0;
    }
  }

  abstract dispose(): void;
}

export class HostKVCache extends KVCacheBase {
  readonly kind = 'host' as const;
  capacity: number;
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(layers: number, batch: number, kvHeads: number, headDim: number, capacity: number) {
    super(batch, capacity);
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.capacity = Math.max(1, capacity);
    const size = batch * kvHeads * this.capacity * headDim;
    this.k = Array.from({ length: layers }, () => new Float32Array(size));
    this.v = Array.from({ length: layers }, () => new Float32Array(size));
  }

  /** Makes room for `need` slots, doubling the capacity (one copy, amortised O(1) per token). */
  reserve(need: number): void {
    if (need <= this.capacity) return;
    const cap = Math.max(need, 2 * this.capacity);
    const rows = this.batch * this.kvHeads;
    const hd = this.headDim;
    for (const buffers of [this.k, this.v]) {
      for (let l = 0; l < buffers.length; l++) {
        const old = buffers[l];
        const grown = new Float32Array(rows * cap * hd);
        for (let r = 0; r < rows; r++) {
          grown.set(
            old.subarray(r * this.capacity * hd, (r * this.capacity + this.length) * hd),
            r * cap * hd,
          );
        }
        buffers[l] = grown;
      }
    }
    this.capacity = cap;
  }

  dispose(): void {
    this.disposed = true;
    this.k.length = 0;
    this.v.length = 0;
  }
}

export class TensorKVCache extends KVCacheBase {
  readonly kind = 'tensor' as const;
  readonly k: (tf.Tensor4D | null)[];
  readonly v: (tf.Tensor4D | null)[];

  constructor(layers: number, batch: number, capacity: number) {
    super(batch, capacity);
    this.k = new Array(layers).fill(null);
    this.v = new Array(layers).fill(null);
  }

  /** Replaces layer l's tensors by the extended ones (kept out of the caller's tidy), disposing the old. */
  set(l: number, k: tf.Tensor4D, v: tf.Tensor4D): void {
    const oldK = this.k[l];
    const oldV = this.v[l];
    this.k[l] = tf.keep(k);
    this.v[l] = tf.keep(v);
    oldK?.dispose();
    oldV?.dispose();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.k, ...this.v]) t?.dispose();
    this.k.fill(null);
    this.v.fill(null);
  }
}

export type KVCache = HostKVCache | TensorKVCache;

/** Rows of one cache to carry into a combined cache (see {@link combineCaches}). */
export interface CacheRows {
  cache: KVCache;
  /** Row indices of `cache`, in the order they take in the result. */
  rows: readonly number[];
}

/** The first slot of `mask` (among `length`) that holds a token; `length` when none does. */
function firstToken(mask: Uint8Array, length: number): number {
  for (let j = 0; j < length; j++) if (mask[j] !== 0) return j;
  return length;
}

/**
 * A new cache holding the listed rows of every part, in order (continuous batching: rows of sequences that have
 * finished are left out, rows of newly prefilled ones are added). Each part's slots are aligned at the end — the
 * last filled slot of every row becomes the last slot of the result — so that all rows keep taking the same slot
 * index per step; slots before a row's own are masked padding. Leading slots that no kept row of a part uses are
 * dropped, so the result is no longer than its longest kept row needs. Keys, values, masks and next positions are
 * copied: a row attends to exactly the keys it attended to before (with host attention its logits stay bitwise the
 * same, padding adds only exact zeros). The parts are left as they were (the caller disposes them).
 */
export function combineCaches(parts: readonly CacheRows[], headroom = 64): KVCache {
  if (parts.length === 0) throw new Error('combineCaches: no parts');
  const kind = parts[0].cache.kind;
  for (const { cache, rows } of parts) {
    if (cache.isDisposed) throw new Error('combineCaches: a part was disposed');
    if (cache.kind !== kind) throw new Error('combineCaches: host and tensor caches cannot be combined');
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= cache.batch) {
        throw new Error(`combineCaches: row ${r} is outside a batch of ${cache.batch}`);
      }
    }
  }
  // Per part: the first slot any kept row uses, and the slots from there to the end.
  const spans = parts.map(({ cache, rows }) => {
    const start = rows.reduce(
      (m, r) => Math.min(m, firstToken(cache.keyMask[r], cache.length)),
      cache.length,
    );
    return { start, size: cache.length - start };
  });
  const L = Math.max(0, ...spans.map((s) => s.size));
  const B = parts.reduce((n, p) => n + p.rows.length, 0);
  let out: KVCache;
  if (kind === 'host') {
    const first = parts[0].cache as HostKVCache;
    const layers = first.k.length;
    const { kvHeads, headDim: hd } = first;
    for (const { cache } of parts) {
      const c = cache as HostKVCache;
      if (c.k.length !== layers || c.kvHeads !== kvHeads || c.headDim !== hd) {
        throw new Error('combineCaches: the parts come from different model shapes');
      }
    }
    const host = new HostKVCache(layers, B, kvHeads, hd, L + headroom);
    let b = 0;
    parts.forEach(({ cache, rows }, i) => {
      const c = cache as HostKVCache;
      const { start, size } = spans[i];
      const offset = L - size;
      for (const r of rows) {
        for (let l = 0; l < layers; l++) {
          for (const [src, dst] of [
            [c.k[l], host.k[l]],
            [c.v[l], host.v[l]],
          ]) {
            for (let kh = 0; kh < kvHeads; kh++) {
              const from = ((r * kvHeads + kh) * c.capacity + start) * hd;
              dst.set(
                src.subarray(from, from + size * hd),
                ((b * kvHeads + kh) * host.capacity + offset) * hd,
              );
            }
          }
        }
        b++;
      }
    });
    out = host;
  } else {
    const first = parts[0].cache as TensorKVCache;
    const layers = first.k.length;
    const tensor = new TensorKVCache(layers, B, L + headroom);
    if (L > 0) {
      for (let l = 0; l < layers; l++) {
        const [k, v] = tf.tidy(() => {
          const pick = (which: 'k' | 'v'): tf.Tensor4D => {
            const pieces = parts
              .map(({ cache, rows }, i): tf.Tensor4D | null => {
                if (rows.length === 0) return null;
                const c = cache as TensorKVCache;
                const { start, size } = spans[i];
                const all = c[which][l];
                if (all === null) throw new Error('combineCaches: a part has no keys/values');
                const kept = tf.gather(all, tf.tensor1d(rows as number[], 'int32'), 0);
                const sliced = tf.slice(kept, [0, 0, start, 0], [-1, -1, size, -1]);
                return L > size
                  ? tf.pad(sliced, [
                      [0, 0],
                      [0, 0],
                      [L - size, 0],
                      [0, 0],
                    ])
                  : sliced;
              })
              .filter((t): t is tf.Tensor4D => t !== null);
            return pieces.length === 1 ? pieces[0] : tf.concat(pieces, 0);
          };
          return [pick('k'), pick('v')];
        });
        tensor.set(l, k, v);
      }
    }
    out = tensor;
  }
  let b = 0;
  parts.forEach(({ cache, rows }, i) => {
    const { start, size } = spans[i];
    const offset = L - size;
    for (const r of rows) {
      out.keyMask[b].set(cache.keyMask[r].subarray(start, start + size), offset);
      out.nextPos[b] = cache.nextPos[r];
      b++;
    }
  });
  out.length = L;
  return out;
}
