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
