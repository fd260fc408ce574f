/**
 * /v1/kv/{key}: reads return raw bytes when there is one version, or every
 * sibling as JSON with 300 Multiple Choices (as Riak does); writes take the
 * causal context back in X-Ringkv-Context. Shapes: docs/protocol/http.md.
 */
import type { Clock } from '../../core/index.ts';
import type { Consistency, GetResult, KvApi, PutResult, ReadOptions, Sibling, WriteOptions } from '../../replication/index.ts';
import { HttpError } from './errors.ts';
import {
  maxTimeoutMs,
  maxTtlSeconds,
  parseBigIntParam,
  parseBool,
  parseConsistency,
  parseContext,
  parseIntParam,
  parseQuery,
} from './request.ts';

/** What a handler returns; the server writes it and records metrics. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
}

/** Values have no stored content type yet (the KvApi holds bytes only): see docs/protocol/http.md. */
export const valueContentType = 'application/octet-stream';
export const jsonContentType = 'application/json; charset=utf-8';

export interface SiblingJson {
  kind: Sibling['kind'];
  /** Base64 of the bytes (kind "value"). */
  value?: string;
  contentType?: string;
  /** Decimal string, exact for any 64-bit count (kind "counter"). */
  count?: string;
  expiresAtMs: number | null;
  timestampMs: number;
  writer: string;
}

export interface SiblingsJson {
  context: string;
  siblings: SiblingJson[];
}

export function siblingToJson(s: Sibling): SiblingJson {
  const base = { expiresAtMs: s.expiresAtMs, timestampMs: s.timestampMs, writer: s.writer };
  switch (s.kind) {
    case 'value':
      return { kind: 'value', value: Buffer.from(s.value.buffer, s.value.byteOffset, s.value.byteLength).toString('base64'), contentType: valueContentType, ...base };
    case 'counter':
      return { kind: 'counter', count: s.count.toString(), ...base };
    case 'tombstone':
      return { kind: 'tombstone', ...base };
  }
}

export function encodeContext(context: Uint8Array): string {
  return Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString('base64');
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': jsonContentType, ...headers }, body: JSON.stringify(value) };
}

function wantsJson(accept: string | undefined): boolean {
  // Only an explicit JSON preference: curl and browsers send */* and get the raw value.
  return accept !== undefined && /(^|,)\s*application\/json\s*(;|,|$)/.test(accept);
}

/** What a request gets for the options it does not name (from the node's runtime settings). */
export interface RequestDefaults {
  r?: Consistency;
  w?: Consistency;
  strict?: boolean;
  timeoutMs?: number;
}

export class KvRoutes {
  constructor(
    private readonly kv: KvApi,
    private readonly clock: Clock,
    private readonly defaults: () => RequestDefaults = () => ({}),
  ) {}

  // Each request reads the defaults once: they come from the runtime settings registry.
  private timeout(params: Map<string, string>, defaults: RequestDefaults): number | undefined {
    return parseIntParam('timeout', params.get('timeout'), 1, maxTimeoutMs, 'milliseconds') ?? defaults.timeoutMs;
  }

  private consistency(params: Map<string, string>, name: 'r' | 'w', defaults: RequestDefaults): Consistency | undefined {
    return parseConsistency(name, params.get(name)) ?? defaults[name];
  }

  private strict(params: Map<string, string>, defaults: RequestDefaults): boolean | undefined {
    return parseBool('strict', params.get('strict')) ?? defaults.strict;
  }

  private expiry(params: Map<string, string>): number | null {
    const ttl = parseIntParam('ttl', params.get('ttl'), 1, maxTtlSeconds, 'seconds');
    return ttl === undefined ? null : this.clock.wallMs() + ttl * 1000;
  }

  // get and put are every request's path: promise chains, not async frames held across the wait.
  get(key: Uint8Array, query: string, accept: string | undefined): Promise<Reply> {
    let options: ReadOptions;
    try {
      const params = parseQuery(query, ['r', 'strict', 'timeout']);
      const defaults = this.defaults();
      options = {
        r: this.consistency(params, 'r', defaults),
        strict: this.strict(params, defaults),
        timeoutMs: this.timeout(params, defaults),
      };
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.kv.get(key, options).then(wantsJson(accept) ? renderJson : renderRaw);
  }

  put(key: Uint8Array, query: string, contextHeader: string | string[] | undefined, body: Uint8Array): Promise<Reply> {
    let options: WriteOptions;
    try {
      const params = parseQuery(query, ['w', 'strict', 'ttl', 'timeout']);
      const defaults = this.defaults();
      options = {
        w: this.consistency(params, 'w', defaults),
        strict: this.strict(params, defaults),
        timeoutMs: this.timeout(params, defaults),
        context: parseContext(contextHeader) ?? null,
        expiresAtMs: this.expiry(params),
      };
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.kv.put(key, body, options).then(putReply);
  }

  async delete(key: Uint8Array, query: string, contextHeader: string | string[] | undefined): Promise<Reply> {
    const params = parseQuery(query, ['w', 'strict', 'timeout']);
    const defaults = this.defaults();
    await this.kv.delete(key, {
      w: this.consistency(params, 'w', defaults),
      strict: this.strict(params, defaults),
      timeoutMs: this.timeout(params, defaults),
      context: parseContext(contextHeader) ?? null,
    });
    return { status: 204, headers: {}, body: undefined };
  }

  async incr(key: Uint8Array, query: string): Promise<Reply> {
    const params = parseQuery(query, ['by', 'w', 'strict', 'ttl', 'timeout']);
    const by = parseBigIntParam('by', params.get('by'), 1n);
    const defaults = this.defaults();
    const value = await this.kv.incrBy(key, by, {
      w: this.consistency(params, 'w', defaults),
      strict: this.strict(params, defaults),
      timeoutMs: this.timeout(params, defaults),
      // Without ttl the counter keeps its expiry (KvApi.incrBy contract).
      ...(params.has('ttl') ? { expiresAtMs: this.expiry(params) } : {}),
    });
    return json(200, { value: value.toString() });
  }
}

const renderJson = (result: GetResult): Reply => renderGet(result, true);
const renderRaw = (result: GetResult): Reply => renderGet(result, false);

function putReply(result: PutResult): Reply {
  return { status: 204, headers: { 'x-ringkv-context': encodeContext(result.context) }, body: undefined };
}

export function renderGet(result: GetResult, asJson: boolean): Reply {
  const context = encodeContext(result.context);
  // The common single live value needs no filtered copy.
  const live = result.siblings.length === 1 && result.siblings[0]?.kind !== 'tombstone' ? result.siblings : result.siblings.filter((s) => s.kind !== 'tombstone');
  if (live.length === 0) {
    // Deleted keys still have a context: a write carrying it supersedes the tombstone.
    const headers: Record<string, string> = result.siblings.length > 0 ? { 'x-ringkv-context': context } : {};
    throw new HttpError(404, 'RINGKV_NOT_FOUND', 'The key does not exist', headers);
  }
  // The JSON shape (base64 of every value) only when it is sent, not for the common raw read.
  const shape = (): SiblingsJson => ({ context, siblings: result.siblings.map(siblingToJson) });
  if (result.siblings.length > 1) return json(300, shape(), { 'x-ringkv-context': context });
  if (asJson) return json(200, shape(), { 'x-ringkv-context': context });
  const only = live[0] as Sibling;
  if (only.kind === 'tombstone') throw new HttpError(404, 'RINGKV_NOT_FOUND', 'The key does not exist');
  // One headers object per read (this is every GET's path): no spread copy.
  const headers: Record<string, string> = { 'x-ringkv-context': context, 'x-ringkv-kind': only.kind, 'content-type': only.kind === 'counter' ? 'text/plain; charset=utf-8' : valueContentType };
  if (only.expiresAtMs !== null) headers['x-ringkv-expires-at'] = String(only.expiresAtMs);
  return { status: 200, headers, body: only.kind === 'counter' ? only.count.toString() : only.value };
}
