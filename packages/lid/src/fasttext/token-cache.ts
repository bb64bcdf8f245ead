// The input rows of tokens seen before. A token's rows (the word, its char n-grams) depend on its bytes alone,
// so remembering them changes nothing in the result; the C++ remembers them for vocabulary words only. Stored in
// flat typed arrays (no object per token) and emptied when full, so memory stays bounded.

const EMPTY = -1;

export class TokenCache {
  private table: Int32Array;
  private readonly mask: number;
  private readonly hashes: Int32Array;
  private readonly byteOff: Int32Array;
  private readonly rowOff: Int32Array;
  bytes: Uint8Array;
  rows: Int32Array;
  private count = 0;

  constructor(readonly capacity = 1 << 16) {
    this.table = new Int32Array(capacity * 2).fill(EMPTY);
    this.mask = capacity * 2 - 1;
    this.hashes = new Int32Array(capacity);
    this.byteOff = new Int32Array(capacity + 1);
    this.rowOff = new Int32Array(capacity + 1);
    this.bytes = new Uint8Array(1 << 16);
    this.rows = new Int32Array(1 << 16);
  }

  /** Entry id of bytes[s, e) with hash h, or −1. */
  find(h: number, bytes: Uint8Array, s: number, e: number): number {
    const table = this.table;
    const len = e - s;
    let at = h & this.mask;
    for (;;) {
      const id = table[at]!;
      if (id === EMPTY) return -1;
      if (this.hashes[id] === (h | 0)) {
        const b0 = this.byteOff[id]!;
        if (this.byteOff[id + 1]! - b0 === len) {
          const pool = this.bytes;
          let k = 0;
          while (k < len && pool[b0 + k] === bytes[s + k]) k++;
          if (k === len) return id;
        }
      }
      at = (at + 1) & this.mask;
    }
  }

  rowStart(id: number): number {
    return this.rowOff[id]!;
  }

  rowEnd(id: number): number {
    return this.rowOff[id + 1]!;
  }

  /** Remembers bytes[s, e) (hash h) with rows[rs, re). */
  add(h: number, bytes: Uint8Array, s: number, e: number, rows: Int32Array, rs: number, re: number): void {
    if (this.count === this.capacity) {
      this.table.fill(EMPTY);
      this.count = 0;
    }
    const id = this.count++;
    const b0 = this.byteOff[id]!;
    const r0 = this.rowOff[id]!;
    const len = e - s;
    const nrows = re - rs;
    if (b0 + len > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, b0 + len));
      bigger.set(this.bytes.subarray(0, b0));
      this.bytes = bigger;
    }
    if (r0 + nrows > this.rows.length) {
      const bigger = new Int32Array(Math.max(this.rows.length * 2, r0 + nrows));
      bigger.set(this.rows.subarray(0, r0));
      this.rows = bigger;
    }
    const pool = this.bytes;
    for (let k = 0; k < len; k++) pool[b0 + k] = bytes[s + k]!;
    const rp = this.rows;
    for (let k = 0; k < nrows; k++) rp[r0 + k] = rows[rs + k]!;
    this.byteOff[id + 1] = b0 + len;
    this.rowOff[id + 1] = r0 + nrows;
    this.hashes[id] = h | 0;
    let at = h & this.mask;
    while (this.table[at] !== EMPTY) at = (at + 1) & this.mask;
    this.table[at] = id;
  }
}
