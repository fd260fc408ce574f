/**
 * The workload every target gets: YCSB workload A's shape (50 % reads, 50 %
 * updates) over a fixed key space with 100-byte values. Keys are
 * `user<record number>`; which record an operation touches is drawn
 * uniformly (default) or from YCSB's scrambled zipfian (θ = 0.99), where the
 * popular records are scattered over the key space by FNV-1a-64 as in YCSB.
 * Randomness is seeded (a xorshift generator per client) so two targets see
 * the same sequence of operations.
 */
import { randomBytes } from 'node:crypto';

export type KeyDistribution = 'uniform' | 'zipfian';

export const zipfianTheta = 0.99;
/** Distinct values handed out; updates cycle through them so the generator does no per-op allocation. */
const valuePoolSize = 1024;

export function keyName(record: number): string {
  return `user${record}`;
}

/** xorshift128+, seeded per client: cheap, and reproducible across targets. */
export class ClientRandom {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    this.s1 = (BigInt(seed) ^ 0xdeadbeefn) * 0xbf58476d1ce4e5b9n + 7n;
    this.s0 &= 0xffffffffffffffffn;
    this.s1 &= 0xffffffffffffffffn;
    for (let i = 0; i < 8; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number((this.s1 + y) & 0x1fffffffffffffn) / 2 ** 53;
  }
}

const fnvOffset64 = 0xcbf29ce484222325n;
const fnvPrime64 = 0x100000001b3n;

/** FNV-1a-64 of the record number's 8 little-endian bytes, as YCSB's scrambled zipfian uses. */
function fnv1a64(n: number): bigint {
  let h = fnvOffset64;
  let v = BigInt(n);
  for (let i = 0; i < 8; i++) {
    h ^= v & 0xffn;
    h = (h * fnvPrime64) & 0xffffffffffffffffn;
    v >>= 8n;
  }
  return h;
}

/** Draws record numbers in [0, keys). */
export interface KeyChooser {
  next(random: ClientRandom): number;
}

export function uniformKeys(keys: number): KeyChooser {
  return { next: (random) => Math.floor(random.next() * keys) };
}

/**
 * Gray et al.'s zipfian generator ("Quickly generating billion-record
 * synthetic databases", 1994), as YCSB's ZipfianGenerator implements it; the
 * drawn rank is then scrambled over the key space.
 */
export function zipfianKeys(keys: number, theta = zipfianTheta): KeyChooser {
  let zetan = 0;
  for (let i = 1; i <= keys; i++) zetan += 1 / i ** theta;
  const zeta2 = 1 + 1 / 2 ** theta;
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / keys) ** (1 - theta)) / (1 - zeta2 / zetan);
  const scramble = new Uint32Array(keys);
  for (let i = 0; i < keys; i++) scramble[i] = Number(fnv1a64(i) % BigInt(keys));
  return {
    next(random) {
      const u = random.next();
      const uz = u * zetan;
      let rank: number;
      if (uz < 1) rank = 0;
      else if (uz < zeta2) rank = 1;
      else rank = Math.min(keys - 1, Math.floor(keys * (eta * u - eta + 1) ** alpha));
      return scramble[rank] ?? 0;
    },
  };
}

export function keyChooser(distribution: KeyDistribution, keys: number): KeyChooser {
  return distribution === 'uniform' ? uniformKeys(keys) : zipfianKeys(keys);
}

/** Random 100-byte (by default) values, fixed for the run. */
export class ValuePool {
  readonly values: Buffer[];
  constructor(valueBytes: number, count = valuePoolSize) {
    this.values = Array.from({ length: count }, () => randomBytes(valueBytes));
  }

  pick(n: number): Buffer {
    return this.values[n % this.values.length] as Buffer;
  }
}
