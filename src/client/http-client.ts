/**
 * A small TypeScript client for ringkv's HTTP API (used by the CLI). Errors
 * come back as the same typed classes the server raised (by their stable
 * code), so callers can match on `code` as they would in-process.
 */
import {
  InvalidArgumentError,
  ProtocolError,
  RingkvError,
  TimeoutError,
  UnavailableError,
  errorFromCode,
  isKnownErrorCode,
} from '../core/index.ts';
import type { NodeInfo, ReplicaInfo, RingInfo } from '../replication/index.ts';

export const defaultClientTimeoutMs = 10_000;

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8379 */
  baseUrl: string;
  token?: string;
  timeoutMs?: number;
}

export interface ClientSibling {
  kind: 'value' | 'counter' | 'tombstone';
  value?: Uint8Array;
  count?: bigint;
  contentType?: string;
  expiresAtMs: number | null;
  timestampMs: number;
  writer: string;
}

export interface ClientGetResult {
  siblings: ClientSibling[];
  /** Base64 causal context; pass it back to put/del to supersede what was read. */
  context: string;
}

export interface KvRequestOptions {
  r?: string;
  w?: string;
  strict?: boolean;
  timeoutMs?: number;
}

export interface ClusterJson {
  self: string;
  nodes: Array<NodeInfo & { keys: number | null }>;
}

interface WireSibling {
  kind: ClientSibling['kind'];
  value?: string;
  count?: string;
  contentType?: string;
  expiresAtMs: number | null;
  timestampMs: number;
  writer: string;
}

/** Rebuilds the server's typed error from its JSON body. */
export function errorFromBody(status: number, body: unknown): RingkvError {
  const error = (body as { error?: { code?: string; message?: string; answered?: number; required?: number; retryAfterMs?: number } } | null)?.error;
  const message = error?.message ?? `HTTP ${status}`;
  if (error !== undefined && isKnownErrorCode(error.code)) {
    return errorFromCode(error.code, message, { ...error, ...(error.code === 'RINGKV_RATE_LIMITED' ? { retryAfterMs: error.retryAfterMs ?? 1000 } : {}) });
  }
  // HTTP-only codes (payload too large, method not allowed, internal) keep their code in the message.
  return new InvalidArgumentError(error?.code === undefined ? message : `${error.code}: ${message}`);
}

function query(options: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(options)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

/** Percent-encodes every byte that is not unreserved, so binary keys survive. */
export function encodeKey(key: string | Uint8Array): string {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export class RingkvHttpClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  private async request(method: string, path: string, init: { body?: Uint8Array; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.token !== undefined) headers['authorization'] = `Bearer ${this.options.token}`;
    try {
      return await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? defaultClientTimeoutMs),
      });
    } catch (cause) {
      const reason = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).name;
      if (reason === 'TimeoutError') throw new TimeoutError(`No answer from ${this.baseUrl} within ${this.options.timeoutMs ?? defaultClientTimeoutMs} ms`, { cause });
      throw new UnavailableError(`Cannot reach ringkv at ${this.baseUrl} (${reason}): is the node running?`, { answered: 0, required: 1 }, { cause });
    }
  }

  private async json<T>(res: Response): Promise<T> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      throw new ProtocolError(`Expected JSON from ${res.url} but got: ${text.slice(0, 200)}`);
    }
    if (!res.ok && res.status !== 300) throw errorFromBody(res.status, body);
    return body as T;
  }

  /** All siblings and the context; `undefined` when the key does not exist. */
  async get(key: string | Uint8Array, options: KvRequestOptions = {}): Promise<ClientGetResult | undefined> {
    const res = await this.request('GET', `/v1/kv/${encodeKey(key)}${query({ r: options.r, strict: options.strict, timeout: options.timeoutMs })}`, {
      headers: { accept: 'application/json' },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    const body = await this.json<{ context: string; siblings: WireSibling[] }>(res);
    return {
      context: body.context,
      siblings: body.siblings.map((s) => ({
        kind: s.kind,
        ...(s.value === undefined ? {} : { value: Buffer.from(s.value, 'base64') }),
        ...(s.count === undefined ? {} : { count: BigInt(s.count) }),
        ...(s.contentType === undefined ? {} : { contentType: s.contentType }),
        expiresAtMs: s.expiresAtMs,
        timestampMs: s.timestampMs,
        writer: s.writer,
      })),
    };
  }

  /** Writes a value; resolves with the context of the new version. */
  async put(key: string | Uint8Array, value: string | Uint8Array, options: KvRequestOptions & { context?: string; ttlSeconds?: number } = {}): Promise<string> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (options.context !== undefined) headers['x-ringkv-context'] = options.context;
    const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const res = await this.request('PUT', `/v1/kv/${encodeKey(key)}${query({ w: options.w, strict: options.strict, ttl: options.ttlSeconds, timeout: options.timeoutMs })}`, { body, headers });
    if (res.status !== 204) await this.json(res);
    return res.headers.get('x-ringkv-context') ?? '';
  }

  async del(key: string | Uint8Array, options: KvRequestOptions & { context?: string } = {}): Promise<void> {
    const headers: Record<string, string> = {};
    if (options.context !== undefined) headers['x-ringkv-context'] = options.context;
    const res = await this.request('DELETE', `/v1/kv/${encodeKey(key)}${query({ w: options.w, strict: options.strict, timeout: options.timeoutMs })}`, { headers });
    if (res.status !== 204) await this.json(res);
  }

  async incr(key: string | Uint8Array, by: bigint = 1n, options: KvRequestOptions = {}): Promise<bigint> {
    const res = await this.request('POST', `/v1/kv/${encodeKey(key)}/incr${query({ by: by.toString(), w: options.w, strict: options.strict, timeout: options.timeoutMs })}`);
    const body = await this.json<{ value: string }>(res);
    return BigInt(body.value);
  }

  async cluster(): Promise<ClusterJson> {
    return this.json(await this.request('GET', '/v1/cluster'));
  }

  async ring(): Promise<RingInfo & { partitionsByNode: Record<string, number> }> {
    return this.json(await this.request('GET', '/v1/ring'));
  }

  async replicas(key: string | Uint8Array): Promise<ReplicaInfo> {
    return this.json(await this.request('GET', `/v1/replicas/${encodeKey(key)}`));
  }

  async health(): Promise<{ status: string; node: string; uptimeMs: number }> {
    const res = await this.request('GET', '/healthz');
    const body = (await res.json()) as { status: string; node: string; uptimeMs: number };
    return body;
  }
}
