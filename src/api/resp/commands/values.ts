/**
 * Reading and writing string values through KvApi with Redis's number rules.
 * RESP cannot express siblings, so a read shows the deterministic winner
 * (resolveWinner) and a write carries the context of the read it follows,
 * which supersedes every sibling that read saw.
 */
import { resolveWinner } from '../../../replication/index.ts';
import type { CausalContext, GetResult, WriteOptions } from '../../../replication/index.ts';
import { RespError, notFloatError, notIntegerError } from '../errors.ts';
import { readOptions, writeOptions } from './types.ts';
import type { CommandContext } from './types.ts';

export const int64Max = 9223372036854775807n;
export const int64Min = -9223372036854775808n;

/** Largest string SETRANGE and APPEND may build (Redis's proto-max-bulk-len default). */
export const maxStringBytes = 512 * 1024 * 1024;

/** Redis's string2ll: optional '-', no leading zeros or '+', no spaces, within int64. */
export function parseInt64(bytes: Uint8Array): bigint | undefined {
  const n = bytes.length;
  if (n === 0 || n > 20) return undefined;
  if (n === 1 && bytes[0] === 48) return 0n;
  let i = 0;
  if (bytes[0] === 45) i = 1;
  const first = bytes[i];
  if (first === undefined || first < 49 || first > 57) return undefined;
  for (let j = i + 1; j < n; j++) {
    const c = bytes[j] as number;
    if (c < 48 || c > 57) return undefined;
  }
  const value = BigInt(Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1'));
  return value > int64Max || value < int64Min ? undefined : value;
}

/** An integer argument, or "ERR value is not an integer or out of range". */
export function intArg(arg: Buffer | undefined): bigint {
  const value = arg === undefined ? undefined : parseInt64(arg);
  if (value === undefined) throw notIntegerError();
  return value;
}

/** A small integer argument (counts, indexes) as a number. */
export function numberArg(arg: Buffer | undefined): number {
  return Number(intArg(arg));
}

/** A key's current value as RESP shows it. */
export interface StringValue {
  value: Buffer;
  expiresAtMs: number | null;
  /** The context of the read, to supersede what it saw. */
  context: CausalContext;
  /** True when the value is a CRDT counter (its decimal text is `value`). */
  counter: boolean;
  count: bigint;
}

export async function readString(ctx: CommandContext, key: Uint8Array): Promise<StringValue | undefined> {
  return (await readForWrite(ctx, key)).v;
}

/** A read before a write: the value (if any) and the context that supersedes everything stored, tombstones too. */
export async function readForWrite(ctx: CommandContext, key: Uint8Array): Promise<{ v: StringValue | undefined; context: CausalContext }> {
  const result = await ctx.server.kv.get(key, readOptions(ctx));
  return { v: toStringValue(result), context: result.context };
}

function toStringValue(result: GetResult): StringValue | undefined {
  const winner = resolveWinner(result);
  if (winner === undefined) return undefined;
  if (winner.kind === 'counter') {
    return { value: Buffer.from(winner.count.toString(), 'latin1'), expiresAtMs: winner.expiresAtMs, context: result.context, counter: true, count: winner.count };
  }
  const v = winner.value;
  const value = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return { value, expiresAtMs: winner.expiresAtMs, context: result.context, counter: false, count: 0n };
}

/** Context of what a key holds now (also tombstones), for a write that supersedes it. */
export async function currentContext(ctx: CommandContext, key: Uint8Array): Promise<CausalContext> {
  return (await ctx.server.kv.get(key, readOptions(ctx))).context;
}

/** Replaces whatever the key holds (SET without options, MSET, SETEX). */
export async function replaceString(ctx: CommandContext, key: Uint8Array, value: Uint8Array, expiresAtMs: number | null): Promise<void> {
  checkValueSize(ctx, value);
  const context = await currentContext(ctx, key);
  await writeString(ctx, key, value, expiresAtMs, context);
}

export function checkValueSize(ctx: CommandContext, value: Uint8Array): void {
  const limit = ctx.server.defaults.maxValueBytes;
  if (value.length > limit) {
    throw new RespError(`ERR Cannot write a value of ${value.length} bytes: the limit is ${limit} bytes (max-value-bytes)`);
  }
}

/**
 * Writes a value superseding `context` (what a read just returned). A null
 * context is a blind write, which KvApi keeps beside what exists as a
 * sibling, so RESP writes always pass the context of their read.
 */
export async function writeString(
  ctx: CommandContext,
  key: Uint8Array,
  value: Uint8Array,
  expiresAtMs: number | null,
  context: CausalContext | null,
): Promise<void> {
  checkValueSize(ctx, value);
  const extra: WriteOptions = { expiresAtMs };
  if (context !== null) extra.context = context;
  await ctx.server.kv.put(key, value, writeOptions(ctx, extra));
}

export async function deleteKey(ctx: CommandContext, key: Uint8Array, context: CausalContext | null): Promise<void> {
  await ctx.server.kv.delete(key, writeOptions(ctx, context === null ? {} : { context }));
}

// ---------------------------------------------------------------- floats

/** An exact decimal: mantissa × 10^-scale. */
interface Decimal {
  mantissa: bigint;
  scale: number;
}

const maxFloatChars = 5 * 1024;

/**
 * Parses what Redis's strtold accepts for INCRBYFLOAT in its common forms:
 * [+-]digits[.digits][e[+-]digits]. Hex floats, inf and nan are rejected.
 */
export function parseDecimal(bytes: Uint8Array): Decimal | undefined {
  if (bytes.length === 0 || bytes.length >= maxFloatChars) return undefined;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) return undefined;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  if (intPart.length === 0 && fracPart.length === 0) return undefined;
  const exponent = m[4] === undefined ? 0 : Number(m[4]);
  if (!Number.isFinite(exponent) || Math.abs(exponent) > 4000) return undefined;
  let mantissa = BigInt(`${intPart}${fracPart}` || '0');
  if (m[1] === '-') mantissa = -mantissa;
  let scale = fracPart.length - exponent;
  if (scale < 0) {
    mantissa *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { mantissa, scale };
}

export function floatArg(arg: Buffer | undefined): Decimal {
  const value = arg === undefined ? undefined : parseDecimal(arg);
  if (value === undefined) throw notFloatError();
  return value;
}

// Redis computes INCRBYFLOAT in C's long double (x87 80-bit: a 64-bit
// significand), prints it with "%.17Lf" and trims trailing zeros. The code
// below reproduces that exactly with BigInt arithmetic: each operand is
// rounded to a 64-bit significand (as strtold does), the sum is rounded
// again, and the result is printed by exact decimal expansion.

/** ±sig × 2^exp with a 64-bit significand (sig = 0 for zero). */
interface LongDouble {
  negative: boolean;
  sig: bigint;
  exp: number;
}

const significandBits = 64;
/** Largest binary exponent of an 80-bit long double; beyond it the value is infinite. */
const maxLongDoubleExp = 16383;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Rounds the positive rational num/den to a 64-bit significand, ties to even. */
function roundRational(negative: boolean, num: bigint, den: bigint): LongDouble {
  if (num === 0n) return { negative, sig: 0n, exp: 0 };
  let exp = bitLength(num) - bitLength(den) - significandBits;
  for (;;) {
    const n = exp < 0 ? num << BigInt(-exp) : num;
    const d = exp > 0 ? den << BigInt(exp) : den;
    let q = n / d;
    const r = n - q * d;
    if (q >= 1n << BigInt(significandBits)) {
      exp++;
      continue;
    }
    if (q < 1n << BigInt(significandBits - 1)) {
      exp--;
      continue;
    }
    if (2n * r > d || (2n * r === d && (q & 1n) === 1n)) q++;
    if (q === 1n << BigInt(significandBits)) {
      q >>= 1n;
      exp++;
    }
    return { negative, sig: q, exp };
  }
}

function toLongDouble(d: Decimal): LongDouble {
  const negative = d.mantissa < 0n;
  const m = negative ? -d.mantissa : d.mantissa;
  return roundRational(negative, m, 10n ** BigInt(d.scale));
}

function addLongDoubles(a: LongDouble, b: LongDouble): LongDouble {
  const e = Math.min(a.exp, b.exp);
  const av = (a.negative ? -a.sig : a.sig) << BigInt(a.exp - e);
  const bv = (b.negative ? -b.sig : b.sig) << BigInt(b.exp - e);
  const sum = av + bv;
  const negative = sum < 0n;
  const abs = negative ? -sum : sum;
  return e >= 0 ? roundRational(negative, abs << BigInt(e), 1n) : roundRational(negative, abs, 1n << BigInt(-e));
}

/** printf("%.17Lf") with Redis's trailing-zero trimming. */
function formatLongDouble(x: LongDouble): string {
  const digits = 17;
  let scaled: bigint;
  if (x.exp >= 0) {
    scaled = (x.sig << BigInt(x.exp)) * 10n ** BigInt(digits);
  } else {
    const shift = BigInt(-x.exp);
    const full = x.sig * 10n ** BigInt(digits);
    scaled = full >> shift;
    const rem = full - (scaled << shift);
    const half = 1n << (shift - 1n);
    if (rem > half || (rem === half && (scaled & 1n) === 1n)) scaled++;
  }
  const text = scaled.toString().padStart(digits + 1, '0');
  const intPart = text.slice(0, text.length - digits);
  const frac = text.slice(text.length - digits).replace(/0+$/, '');
  const body = frac.length > 0 ? `${intPart}.${frac}` : intPart;
  return x.negative && body !== '0' ? `-${body}` : body;
}

/** a + b as Redis's INCRBYFLOAT computes and prints it. */
export function addDecimals(a: Decimal, b: Decimal): string {
  const sum = addLongDoubles(toLongDouble(a), toLongDouble(b));
  if (sum.sig !== 0n && sum.exp + significandBits > maxLongDoubleExp) throw new RespError('ERR increment would produce NaN or Infinity');
  return formatLongDouble(sum);
}
