/**
 * The bench:engine workload, shared by every engine's worker: N random
 * 16-byte keys with 100-byte values (seeded, so every engine sees the same
 * bytes), a random read order, and N absent keys for read-miss. Keys and
 * values live in flat arenas and are handed out as views on demand, so the
 * workload itself adds little to each engine's peak RSS.
 */
export const keyBytes = 16;
export const valueBytes = 100;
const valuePoolBytes = 1 << 20;

/** A seeded 32-bit xorshift generator: the same bytes for every engine and run. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

function fill(buf: Buffer, next: () => number): void {
  for (let i = 0; i + 4 <= buf.length; i += 4) buf.writeUInt32LE(next(), i);
}

export class Workload {
  private readonly keyArena: Buffer;
  private readonly missingArena: Buffer;
  private readonly pool: Buffer;
  private readonly valueAt: Uint32Array;
  /** A permutation of 0..n-1: the read order. */
  readonly order: Uint32Array;

  constructor(readonly n: number) {
    const next = xorshift(0x5eed);
    this.keyArena = Buffer.alloc(n * keyBytes);
    fill(this.keyArena, next);
    this.missingArena = Buffer.alloc(n * keyBytes);
    fill(this.missingArena, next);
    // Present keys have the first bit clear, absent ones set: no absent key is present.
    for (let i = 0; i < n; i++) {
      this.keyArena[i * keyBytes] = (this.keyArena[i * keyBytes] as number) & 0x7f;
      this.missingArena[i * keyBytes] = (this.missingArena[i * keyBytes] as number) | 0x80;
    }
    this.pool = Buffer.alloc(valuePoolBytes + valueBytes);
    fill(this.pool, next);
    this.valueAt = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.valueAt[i] = next() % valuePoolBytes;
    this.order = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = next() % (i + 1);
      const t = this.order[i] as number;
      this.order[i] = this.order[j] as number;
      this.order[j] = t;
    }
  }

  key(i: number): Buffer {
    return this.keyArena.subarray(i * keyBytes, (i + 1) * keyBytes);
  }

  missing(i: number): Buffer {
    return this.missingArena.subarray(i * keyBytes, (i + 1) * keyBytes);
  }

  value(i: number): Buffer {
    const at = this.valueAt[i] as number;
    return this.pool.subarray(at, at + valueBytes);
  }
}
