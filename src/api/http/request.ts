/**
 * Parsing of what arrives in a URL and headers: keys (percent-encoded bytes),
 * query options (r, w, strict, ttl, timeout, by) and the causal context header.
 * Every rejection is an HttpError 400 naming the parameter and the value seen.
 */
import type { Consistency } from '../../replication/index.ts';
import { HttpError } from './errors.ts';

/** Keys longer than this are refused before they reach the store. */
export const maxKeyBytes = 8192;
/** Contexts are encoded vector clocks; far below this in practice. */
export const maxContextBytes = 65536;
/** `ttl` is in seconds; ten years is more than any cache wants. */
export const maxTtlSeconds = 10 * 365 * 24 * 3600;
export const maxTimeoutMs = 60_000;

export const contextHeader = 'x-ringkv-context';

function badRequest(message: string): HttpError {
  return new HttpError(400, 'RINGKV_INVALID_ARGUMENT', message);
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 65 && code <= 70) return code - 55;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/**
 * Decodes a percent-encoded path segment to raw bytes, so any binary key can
 * be addressed (decodeURIComponent would reject bytes that are not UTF-8).
 */
export function decodeSegment(segment: string, what: string): Uint8Array {
  const raw = Buffer.from(segment, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i] as number;
    if (byte !== 37 /* % */) {
      out[n++] = byte;
      continue;
    }
    const hi = hexValue(raw[i + 1] ?? 0);
    const lo = hexValue(raw[i + 2] ?? 0);
    if (hi < 0 || lo < 0) throw badRequest(`Cannot decode the ${what} "${segment}": "%" must be followed by two hex digits`);
    out[n++] = hi * 16 + lo;
    i += 2;
  }
  return out.subarray(0, n);
}

export function decodeKey(segment: string): Uint8Array {
  const key = decodeSegment(segment, 'key');
  if (key.length === 0) throw badRequest('The key is empty: use /v1/kv/{key} with a URL-encoded key');
  if (key.length > maxKeyBytes) throw badRequest(`Cannot use key as it is ${key.length} bytes: the limit is ${maxKeyBytes}`);
  return key;
}

/** Query parameters, each given at most once; names the route does not accept are an error (typos). */
export function parseQuery(query: string, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  if (query === '') return params;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    let value = raw;
    // Most values (r=2, w=quorum) have nothing to decode.
    if (raw.includes('%') || raw.includes('+')) {
      try {
        value = decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        throw badRequest(`Cannot decode the value of query parameter "${name}"`);
      }
    }
    if (!allowed.includes(name)) {
      throw badRequest(`Unknown query parameter "${name}"${allowed.length > 0 ? `: this route accepts ${allowed.join(', ')}` : ': this route takes none'}`);
    }
    if (params.has(name)) throw badRequest(`Query parameter "${name}" is given twice`);
    params.set(name, value);
  }
  return params;
}

const namedLevels = ['one', 'quorum', 'all', 'local_quorum'] as const;

export function parseConsistency(name: string, value: string | undefined): Consistency | undefined {
  if (value === undefined) return undefined;
  if ((namedLevels as readonly string[]).includes(value)) return value as Consistency;
  if (/^[1-9]\d{0,2}$/.test(value)) return Number(value);
  throw badRequest(`Invalid ${name}=${JSON.stringify(value)}: use one, quorum, all, local_quorum or a number of replicas from 1`);
}

export function parseBool(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw badRequest(`Invalid ${name}=${JSON.stringify(value)}: use true or false`);
}

export function parseIntParam(name: string, value: string | undefined, min: number, max: number, unit: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw badRequest(`Invalid ${name}=${JSON.stringify(value)}: use a whole number of ${unit} from ${min} to ${max}`);
  }
  return Number(value);
}

/** A signed 64-bit integer (counter increments). */
export function parseBigIntParam(name: string, value: string | undefined, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  if (!/^-?\d{1,19}$/.test(value)) throw badRequest(`Invalid ${name}=${JSON.stringify(value)}: use a whole number such as 1 or -5`);
  const n = BigInt(value);
  if (n > 9223372036854775807n || n < -9223372036854775808n) throw badRequest(`Invalid ${name}=${value}: it does not fit in a signed 64-bit integer`);
  return n;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The causal context from the X-Ringkv-Context header (standard base64), or undefined. */
export function parseContext(header: string | string[] | undefined): Uint8Array | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw badRequest('X-Ringkv-Context is given more than once: send the one context from your last read');
  const text = header.trim();
  if (text === '') return undefined;
  if (!base64Pattern.test(text)) throw badRequest('X-Ringkv-Context is not standard base64: send back exactly the value a GET returned');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length > maxContextBytes) throw badRequest(`X-Ringkv-Context is ${bytes.length} bytes: the limit is ${maxContextBytes}`);
  return bytes;
}
