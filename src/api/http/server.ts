/**
 * The HTTP/JSON front end over node:http (measured fastest here; no
 * framework). Routes: docs/protocol/http.md. Only this layer and the RESP
 * server turn typed errors into protocol replies (errors.ts).
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock, Logger } from '../../core/index.ts';
import type { ClusterView, KvApi, NodeInfo } from '../../replication/index.ts';
import type { Settings } from '../settings.ts';
import { adminPageHtml } from './admin-page.ts';
import { HttpError, errorReply } from './errors.ts';
import { FastConnection, keepAliveTimeoutMs, type FastRequest } from './fast-path.ts';
import { KvRoutes, jsonContentType, type Reply, type RequestDefaults } from './kv-routes.ts';
import type { NodeMetrics } from './metrics.ts';
import { decodeKey, decodeSegment, parseBool, parseQuery } from './request.ts';

/** Default request body limit: the largest value a PUT may carry. */
export const defaultMaxValueBytes = 16 * 1024 * 1024;
/** How long /v1/cluster waits for each peer's /v1/node before showing its load as unknown. */
export const peerLoadTimeoutMs = 500;
/** A request that has not finished arriving by then is cut off (slowloris). */
export const requestTimeoutMs = 30_000;
/** On close, in-flight requests get this long before their sockets are destroyed. */
export const drainTimeoutMs = 5_000;
/** How often fast-path connections are checked for the request and keep-alive timeouts. */
export const fastSweepIntervalMs = 1_000;

/** What this node says about itself on /v1/node (and /v1/cluster for the local row). */
export interface LocalNodeStats {
  keys: number;
  [stat: string]: unknown;
}

export interface HttpServerOptions {
  kv: KvApi;
  cluster: ClusterView;
  clock: Clock;
  log: Logger;
  metrics?: NodeMetrics;
  /** Bearer token; undefined: no authentication. */
  token?: string;
  /** Largest PUT body; a function so a runtime setting change applies at once. */
  maxValueBytes?: () => number;
  /** R, W, strict and timeout for requests that do not name them. */
  defaults?: () => RequestDefaults;
  localStats?: () => LocalNodeStats;
  /** Runtime settings shown and changed by /v1/settings (the registry CONFIG GET/SET uses). */
  settings?: Settings;
  /** Extra health detail; `ok: false` turns /healthz into 503. */
  health?: () => { ok: boolean; detail: Record<string, unknown> };
  /** Serve GET/PUT/DELETE /v1/kv/{key} on the lean reader of fast-path.ts (default true); false: node:http for everything. */
  fastPath?: boolean;
}

export interface ClusterNodeJson extends NodeInfo {
  /** Keys stored on that node (approximate), or null when it did not answer in time. */
  keys: number | null;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class HttpServer {
  private readonly server: http.Server;
  private readonly kvRoutes: KvRoutes;
  private readonly maxValueBytes: () => number;
  private readonly tokenDigest: Buffer | undefined;
  private readonly startedMs: number;
  private inFlight = 0;
  private closing = false;
  /** Connections the fast path (fast-path.ts) still owns. */
  private readonly fastConnections = new Set<FastConnection>();
  private fastSweep: ReturnType<typeof setInterval> | undefined;
  /** node:http's own connection handler: the fast path hands it the connections it does not serve. */
  private readonly nodeConnectionListener: (socket: Socket) => void;
  private dateSecond = -1;
  private dateText = '';

  constructor(private readonly options: HttpServerOptions) {
    this.kvRoutes = new KvRoutes(options.kv, options.clock, options.defaults);
    this.maxValueBytes = options.maxValueBytes ?? (() => defaultMaxValueBytes);
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
    this.startedMs = options.clock.nowMs();
    this.server = http.createServer({ requestTimeout: requestTimeoutMs }, (req, res) => {
      void this.handle(req, res);
    });
    // Every connection starts on the fast path; node:http gets it at the first
    // request the fast path does not handle (fast-path.ts says which).
    const [nodeListener] = this.server.listeners('connection') as Array<(socket: Socket) => void>;
    if (nodeListener === undefined) throw new Error('node:http registered no connection listener');
    this.nodeConnectionListener = nodeListener;
    if (options.fastPath !== false) {
      this.server.removeListener('connection', nodeListener);
      this.server.on('connection', (socket: Socket) => this.acceptFast(socket));
    }
    this.server.on('clientError', (error, socket) => {
      // Malformed HTTP: answer 400 if the socket still can, never crash.
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      options.log.debug('http client error', { error });
    });
  }

  async listen(port: number, host: string): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.fastSweep = setInterval(() => this.sweepFast(), fastSweepIntervalMs);
    this.fastSweep.unref();
    return { host: address.address, port: address.port };
  }

  private acceptFast(socket: Socket): void {
    const conn = new FastConnection(
      socket,
      {
        serve: (request) => this.serveFast(request),
        handOff: (s, unread) => {
          if (unread.length > 0) s.unshift(unread);
          this.nodeConnectionListener.call(this.server, s);
          s.resume();
        },
        maxBodyBytes: this.maxValueBytes,
        date: () => this.date(),
      },
      () => this.options.clock.nowMs(),
      (c) => this.fastConnections.delete(c),
    );
    this.fastConnections.add(conn);
  }

  /** Request timeout (slowloris) and keep-alive timeout for fast-path connections, as node:http applies to its own. */
  private sweepFast(): void {
    const now = this.options.clock.nowMs();
    for (const conn of this.fastConnections) {
      if (conn.partialSinceMs >= 0 && now - conn.partialSinceMs > requestTimeoutMs) conn.destroy();
      else if (conn.idle && now - conn.idleSinceMs > keepAliveTimeoutMs) conn.destroy();
    }
  }

  /** The Date header, rebuilt once per second. */
  private date(): string {
    const ms = this.options.clock.wallMs();
    const second = Math.floor(ms / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateText = new Date(second * 1000).toUTCString();
    }
    return this.dateText;
  }

  /**
   * A hot request from the fast path: the same checks, routes, metrics and
   * errors as handle(). A promise chain, not an async function: nothing but
   * the request and its start time waits across the write's group commit.
   */
  private serveFast(request: FastRequest): Promise<Reply> {
    const started = performance.now();
    this.inFlight++;
    const { method } = request;
    let pending: Promise<Reply>;
    try {
      if (!this.authorizedHeader(request.authorization)) throw unauthorized();
      const key = decodeKey(request.keySegment);
      if (method === 'GET') pending = this.kvRoutes.get(key, request.query, request.accept);
      else if (method === 'DELETE') pending = this.kvRoutes.delete(key, request.query, request.context);
      else pending = this.kvRoutes.put(key, request.query, request.context, request.body);
    } catch (error) {
      pending = Promise.reject(error as Error);
    }
    return pending.then(
      (reply) => this.fastDone(method, started, reply),
      (error: unknown) => this.fastDone(method, started, this.errorToReply(error, method, `/v1/kv/${request.keySegment}`)),
    );
  }

  private fastDone(method: string, started: number, reply: Reply): Reply {
    this.inFlight--;
    const command = method === 'PUT' ? 'kv.put' : method === 'DELETE' ? 'kv.delete' : 'kv.get';
    this.options.metrics?.observe('http', command, performance.now() - started, reply.status < 500);
    if (this.closing) reply.headers['connection'] = 'close';
    return reply;
  }

  private errorToReply(error: unknown, method: string | undefined, url: string | undefined): Reply {
    const e = errorReply(error);
    if (e.status >= 500) this.options.log.warn('http request failed', { method, url, status: e.status, error });
    return { status: e.status, headers: { 'content-type': jsonContentType, ...e.headers }, body: JSON.stringify(e.body) };
  }

  /** Stops accepting, lets in-flight requests finish (bounded), then closes every socket. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.fastSweep !== undefined) clearInterval(this.fastSweep);
    this.server.closeIdleConnections();
    for (const conn of this.fastConnections) if (conn.idle) conn.destroy();
    const deadline = this.options.clock.nowMs() + drainTimeoutMs;
    while (this.inFlight > 0 && this.options.clock.nowMs() < deadline) await this.options.clock.sleep(10);
    this.server.closeAllConnections();
    for (const conn of this.fastConnections) conn.destroy();
    await closed;
  }

  private authorized(req: http.IncomingMessage): boolean {
    return this.authorizedHeader(req.headers.authorization);
  }

  private authorizedHeader(header: string | undefined): boolean {
    if (this.tokenDigest === undefined) return true;
    if (header === undefined || !header.startsWith('Bearer ')) return false;
    // Compare digests so the comparison is constant-time whatever the lengths.
    return timingSafeEqual(digest(header.slice(7).trim()), this.tokenDigest);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    this.inFlight++;
    let command = 'unknown';
    let reply: Reply;
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const query = q < 0 ? '' : url.slice(q + 1);
      const routed = this.route(req, path, query);
      command = routed.command;
      if (routed.open !== true && !this.authorized(req)) throw unauthorized();
      reply = await routed.run();
    } catch (error) {
      reply = this.errorToReply(error, req.method, req.url);
    } finally {
      this.inFlight--;
    }
    this.options.metrics?.observe('http', command, performance.now() - started, reply.status < 500);
    if (this.closing) reply.headers['connection'] = 'close';
    if (!req.complete) {
      // We answered before reading the whole body (e.g. 413): do not reuse the socket.
      reply.headers['connection'] = 'close';
    }
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
    if (!req.complete) req.resume();
  }

  private route(req: http.IncomingMessage, path: string, query: string): { command: string; open?: boolean; run: () => Promise<Reply> } {
    const method = req.method ?? 'GET';
    const segments = path.split('/').slice(1);
    const only = (allowed: string, command: string, open: boolean, run: () => Promise<Reply>) => {
      const methods = allowed.split(',');
      if (!methods.includes(method)) {
        return {
          command,
          open: true,
          run: () => Promise.reject(new HttpError(405, 'RINGKV_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}: use ${methods.join(' or ')}`, { allow: allowed })),
        };
      }
      return { command, open, run };
    };

    if (path === '/' || path === '/admin') {
      return only('GET', 'admin', true, async () => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body: adminPageHtml }));
    }
    if (path === '/healthz') return only('GET', 'healthz', true, async () => this.healthz(query));
    if (path === '/metrics') return only('GET', 'metrics', false, async () => this.metrics(query));
    if (segments[0] === 'v1') {
      const [, resource, keySegment, action, ...rest] = segments;
      if (resource === 'kv' && keySegment !== undefined && rest.length === 0) {
        if (action === undefined) {
          const command = method === 'PUT' ? 'kv.put' : method === 'DELETE' ? 'kv.delete' : 'kv.get';
          return only('GET,PUT,DELETE', command, false, async () => {
            const key = decodeKey(keySegment);
            if (method === 'GET') return this.kvRoutes.get(key, query, req.headers.accept);
            if (method === 'DELETE') return this.kvRoutes.delete(key, query, req.headers['x-ringkv-context']);
            const body = await this.readBody(req);
            return this.kvRoutes.put(key, query, req.headers['x-ringkv-context'], body);
          });
        }
        if (action === 'incr') return only('POST', 'kv.incr', false, async () => this.kvRoutes.incr(decodeKey(keySegment), query));
      }
      if (resource === 'cluster' && keySegment === undefined) return only('GET', 'cluster', false, async () => this.clusterJson(query));
      if (resource === 'ring' && keySegment === undefined) return only('GET', 'ring', false, async () => this.ringJson(query));
      if (resource === 'node' && keySegment === undefined) return only('GET', 'node', false, async () => this.nodeJson(query));
      if (resource === 'settings' && rest.length === 0 && action === undefined) {
        if (keySegment === undefined) return only('GET', 'settings.list', false, async () => this.settingsJson(query));
        return only('PUT', 'settings.set', false, async () => this.setSetting(keySegment, query, await this.readBody(req)));
      }
      if (resource === 'replicas' && keySegment !== undefined && action === undefined) {
        return only('GET', 'replicas', false, async () => {
          parseQuery(query, []);
          return jsonReply(200, this.options.cluster.replicasOf(decodeKey(keySegment)));
        });
      }
    }
    return {
      command: 'not_found',
      open: true,
      run: () => Promise.reject(new HttpError(404, 'RINGKV_NOT_FOUND', `No route ${method} ${path}: see docs/protocol/http.md for the API`)),
    };
  }

  /**
   * The request body, refused past the value limit. Plain 'data'/'end'
   * listeners rather than `for await`: the async iterator costs several
   * objects and promises per request, and a small PUT body is one chunk.
   */
  private readBody(req: http.IncomingMessage): Promise<Uint8Array> {
    const limit = this.maxValueBytes();
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      return Promise.reject(new HttpError(413, 'RINGKV_PAYLOAD_TOO_LARGE', `Cannot write value as it is ${declared} bytes: the limit is ${limit}`));
    }
    return new Promise((resolve, reject) => {
      let first: Buffer | undefined;
      let more: Buffer[] | undefined;
      let total = 0;
      const finish = (error: HttpError | undefined): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('aborted', onAborted);
        if (error !== undefined) reject(error);
        else if (more === undefined) resolve(first ?? Buffer.alloc(0));
        else resolve(Buffer.concat(more, total));
      };
      const onData = (chunk: Buffer): void => {
        total += chunk.length;
        if (total > limit) {
          // Stop taking bytes; handle() answers 413 and closes the connection.
          req.pause();
          finish(new HttpError(413, 'RINGKV_PAYLOAD_TOO_LARGE', `Cannot write value as it is more than ${limit} bytes: the limit is ${limit}`));
          return;
        }
        if (first === undefined) first = chunk;
        else (more ??= [first]).push(chunk);
      };
      const onEnd = (): void => finish(undefined);
      // The client went away mid-body: nothing was written, and it is not a server fault.
      const cutOff = (why: string): HttpError => new HttpError(400, 'RINGKV_PROTOCOL', `The request body was cut off after ${total} bytes (${why})`);
      const onError = (error: Error): void => finish(cutOff(error.message));
      const onAborted = (): void => finish(cutOff('aborted'));
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('aborted', onAborted);
    });
  }

  private healthz(query: string): Reply {
    parseQuery(query, []);
    const extra = this.options.health?.() ?? { ok: true, detail: {} };
    const ok = extra.ok && !this.closing;
    return jsonReply(ok ? 200 : 503, {
      status: ok ? 'ok' : this.closing ? 'stopping' : 'degraded',
      node: this.options.cluster.localId,
      uptimeMs: Math.round(this.options.clock.nowMs() - this.startedMs),
      ...extra.detail,
    });
  }

  private async metrics(query: string): Promise<Reply> {
    parseQuery(query, []);
    const metrics = this.options.metrics;
    if (metrics === undefined) throw new HttpError(404, 'RINGKV_NOT_FOUND', 'Metrics are not enabled on this node');
    return { status: 200, headers: { 'content-type': metrics.contentType }, body: await metrics.render() };
  }

  private nodeJson(query: string): Reply {
    parseQuery(query, []);
    return jsonReply(200, { id: this.options.cluster.localId, uptimeMs: Math.round(this.options.clock.nowMs() - this.startedMs), ...(this.options.localStats?.() ?? {}) });
  }

  private async clusterJson(query: string): Promise<Reply> {
    parseQuery(query, []);
    const { cluster } = this.options;
    const nodes = await Promise.all(
      cluster.nodes().map(async (node): Promise<ClusterNodeJson> => ({ ...node, keys: await this.loadOf(node) })),
    );
    return jsonReply(200, { self: cluster.localId, nodes });
  }

  /** Key count of a node: local stats for this node, a short /v1/node call for peers. */
  private async loadOf(node: NodeInfo): Promise<number | null> {
    if (node.id === this.options.cluster.localId) return this.options.localStats?.().keys ?? null;
    if (node.httpAddress === null || node.liveness === 'down') return null;
    try {
      const headers: Record<string, string> = this.options.token === undefined ? {} : { authorization: `Bearer ${this.options.token}` };
      const res = await fetch(`http://${node.httpAddress}/v1/node`, { headers, signal: AbortSignal.timeout(peerLoadTimeoutMs) });
      if (!res.ok) return null;
      const body = (await res.json()) as { keys?: unknown };
      return typeof body.keys === 'number' ? body.keys : null;
    } catch {
      return null;
    }
  }

  private requireSettings(): Settings {
    if (this.options.settings === undefined) throw new HttpError(404, 'RINGKV_NOT_FOUND', 'This node has no runtime settings');
    return this.options.settings;
  }

  private settingsJson(query: string): Reply {
    parseQuery(query, []);
    // Secrets are listed (so users know they exist) but never shown.
    const settings = this.requireSettings()
      .list()
      .map((s) => ({ name: s.name, value: s.secret === true ? (s.value === '' ? '' : '(set)') : s.value, defaultValue: s.secret === true ? '' : s.defaultValue, type: s.type, mutable: s.mutable, description: s.description, ...(s.values ? { values: s.values } : {}) }));
    return jsonReply(200, { settings });
  }

  private setSetting(segment: string, query: string, body: Uint8Array): Reply {
    parseQuery(query, []);
    const settings = this.requireSettings();
    const name = Buffer.from(decodeSegment(segment, 'setting name')).toString('utf8');
    if (!settings.has(name)) throw new HttpError(404, 'RINGKV_NOT_FOUND', `Unknown setting "${name}": GET /v1/settings lists them`);
    // Same validation and listeners as CONFIG SET; fixed settings answer 409 RINGKV_CONFLICT.
    settings.set(name, Buffer.from(body).toString('utf8').trim());
    const info = settings.list().find((s) => s.name === name.toLowerCase());
    return jsonReply(200, { name: info?.name ?? name, value: info?.secret === true ? '(set)' : (info?.value ?? '') });
  }

  private ringJson(query: string): Reply {
    // A balanced ring has up to 16384 ranges (about 1 MB of JSON): pollers ask for the summary.
    const summary = parseBool('summary', parseQuery(query, ['summary']).get('summary')) === true;
    const ring = this.options.cluster.ring();
    const partitionsByNode: Record<string, number> = {};
    for (const range of ring.ranges) {
      const primary = range.replicas[0];
      if (primary !== undefined) partitionsByNode[primary] = (partitionsByNode[primary] ?? 0) + (range.end - range.start + 1);
    }
    if (summary) {
      const { ranges, ...rest } = ring;
      return jsonReply(200, { ...rest, rangeCount: ranges.length, partitionsByNode });
    }
    return jsonReply(200, { ...ring, rangeCount: ring.ranges.length, partitionsByNode });
  }
}

function unauthorized(): HttpError {
  return new HttpError(401, 'RINGKV_UNAUTHORIZED', 'This node requires a bearer token: send "Authorization: Bearer <token>"', {
    'www-authenticate': 'Bearer realm="ringkv"',
  });
}

function jsonReply(status: number, value: unknown): Reply {
  return { status, headers: { 'content-type': jsonContentType }, body: JSON.stringify(value) };
}
