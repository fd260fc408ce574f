/**
 * A lean HTTP/1.1 reader and writer for the hot routes (GET, PUT and DELETE
 * on /v1/kv/{key}), in front of node:http on the same port.
 *
 * Why: in the cluster benchmark node:http cost ~100 µs of CPU per request
 * more than the RESP front end (parser callbacks, IncomingMessage and
 * ServerResponse objects, stream plumbing, head and body written apart).
 * This reader parses the plain, common shape of a request by hand and writes
 * each response (head and body) with one socket write.
 *
 * Correctness by hand-off: anything else — another route, another method,
 * HTTP/1.0, Transfer-Encoding (chunked bodies), Expect, Upgrade, a body over
 * the value limit, an oversized or unusual head — is handed, with every byte
 * not yet consumed, to node:http's own connection handler, which then owns
 * the connection for good. The hand-off waits until the responses to earlier
 * requests are written, so pipelined responses stay in order.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';

/** Largest request head (request line and headers) read here; node:http's default limit is the same. */
export const maxFastHeadBytes = 16 * 1024;
/** Requests of one connection being answered at once (pipelining); reading pauses beyond it. */
export const maxPipelinedRequests = 64;
/** An idle keep-alive connection is closed after this long, as node:http does by default. */
export const keepAliveTimeoutMs = 5000;

/** The parts of a hot request the routes need. */
export interface FastRequest {
  readonly method: 'GET' | 'PUT' | 'DELETE';
  /** The key's path segment, still percent-encoded. */
  readonly keySegment: string;
  readonly query: string;
  readonly authorization: string | undefined;
  readonly accept: string | undefined;
  /** An array when the header was sent more than once (the route refuses that). */
  readonly context: string | string[] | undefined;
  readonly body: Uint8Array;
}

/** What the fast path answers with: the server's Reply shape. */
export interface FastReply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
}

export interface FastPathHost {
  /** Serves a hot request; never rejects (errors are replies). */
  serve(request: FastRequest): Promise<FastReply>;
  /** Gives the socket to node:http, with `unread` as the first bytes it reads. */
  handOff(socket: Socket, unread: Buffer): void;
  /** Largest body accepted (PUT value limit); a larger one is handed off (node:http answers 413). */
  maxBodyBytes(): number;
  /** RFC 9110 Date header value for now. */
  date(): string;
}

const crlfcrlf = Buffer.from('\r\n\r\n', 'latin1');
const lflf = Buffer.from('\n\n', 'latin1');
/** RFC 9110 tchar: `!#$%&'*+-.^_\`|~`, digits and letters. */
const tchar = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") tchar[c.charCodeAt(0)] = 1;

/** Whether `text[from, to)` is a non-empty token (a header name). */
function isToken(text: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || tchar[c] !== 1) return false;
  }
  return true;
}

/** Optional whitespace around a field value: space or tab. */
function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** Control characters other than tab are not allowed in field values (node:http refuses them too). */
function hasControlChar(value: string, from = 0, to = value.length): boolean {
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return true;
  }
  return false;
}

/** The header names the fast path acts on, lower case. */
const knownHeaders = ['content-length', 'transfer-encoding', 'expect', 'upgrade', 'connection', 'authorization', 'accept', 'x-ringkv-context'] as const;
type KnownHeader = (typeof knownHeaders)[number];

/** The known header named by `text[from, to)` (any case), or undefined; no string is built for the others. */
function knownHeader(text: string, from: number, to: number): KnownHeader | undefined {
  const length = to - from;
  for (const name of knownHeaders) {
    if (name.length !== length) continue;
    let i = 0;
    // Header names are ASCII tokens here (isToken ran first): OR-ing 0x20 lower-cases letters and leaves '-' alone.
    while (i < length && (text.charCodeAt(from + i) | 0x20) === name.charCodeAt(i)) i++;
    if (i === length) return name;
  }
  return undefined;
}
const emptyBody = new Uint8Array(0);
const internalErrorReply: FastReply = {
  status: 500,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: '{"error":{"code":"RINGKV_INTERNAL","message":"Internal error: the response could not be produced"}}',
};

/** One queued response slot: filled when the route answers, written in request order. */
interface Slot {
  out: Buffer | undefined;
  close: boolean;
  /** PUT or DELETE: not safe, so not run alongside the requests around it. */
  write: boolean;
  /** Settles once the route has answered. */
  done: Promise<void> | undefined;
}

type Parsed =
  /** `needBytes`: the request is complete once this many bytes are buffered (known once the head is read). */
  | { kind: 'wait'; needBytes: number }
  | { kind: 'handOff' }
  | { kind: 'request'; request: FastRequest; consumed: number; close: boolean };

/**
 * Parses the request at the start of `buf`. `wait`: more bytes needed;
 * `handOff`: not a hot request or not one this reader handles.
 */
export function parseFastRequest(buf: Buffer, maxBodyBytes: number): Parsed {
  let headEnd = buf.indexOf(crlfcrlf);
  if (headEnd < 0) {
    // A bare-LF head, or one too large: node:http decides what it is.
    if (buf.length > maxFastHeadBytes || buf.indexOf(lflf) >= 0) return { kind: 'handOff' };
    return { kind: 'wait', needBytes: buf.length + 1 };
  }
  if (headEnd > maxFastHeadBytes) return { kind: 'handOff' };
  const head = buf.toString('latin1', 0, headEnd);
  headEnd += 4;
  const lineEnd = head.indexOf('\r\n');
  const requestLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = requestLine.indexOf(' ', sp1 + 1);
  if (sp1 < 0 || sp2 < 0 || requestLine.slice(sp2 + 1) !== 'HTTP/1.1') return { kind: 'handOff' };
  const method = requestLine.slice(0, sp1);
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') return { kind: 'handOff' };
  const target = requestLine.slice(sp1 + 1, sp2);
  if (!target.startsWith('/v1/kv/')) return { kind: 'handOff' };
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const keySegment = path.slice(7);
  // /v1/kv/{key}/incr and anything deeper belong to the full router.
  if (keySegment.includes('/') || target.includes('#') || target.includes(' ')) return { kind: 'handOff' };

  let contentLength = -1;
  let authorization: string | undefined;
  let accept: string | undefined;
  let context: string | string[] | undefined;
  let close = false;
  let at = lineEnd < 0 ? head.length : lineEnd + 2;
  // Header lines are read in place: only the values of the headers used here
  // become strings (a request carries host, content-type and the like too).
  while (at < head.length) {
    let end = head.indexOf('\r\n', at);
    if (end < 0) end = head.length;
    const colon = head.indexOf(':', at);
    if (colon <= at || colon >= end || !isToken(head, at, colon)) return { kind: 'handOff' };
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isOws(head.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isOws(head.charCodeAt(valueEnd - 1))) valueEnd--;
    if (hasControlChar(head, valueStart, valueEnd)) return { kind: 'handOff' };
    const name = knownHeader(head, at, colon);
    at = end + 2;
    if (name === undefined) continue;
    const value = head.slice(valueStart, valueEnd);
    switch (name) {
      case 'content-length':
        if (contentLength >= 0 || !/^\d{1,15}$/.test(value)) return { kind: 'handOff' };
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return { kind: 'handOff' };
      case 'connection': {
        const tokens = value.toLowerCase();
        if (tokens.includes('upgrade')) return { kind: 'handOff' };
        if (tokens.split(',').some((t) => t.trim() === 'close')) close = true;
        break;
      }
      case 'authorization':
        if (authorization !== undefined) return { kind: 'handOff' };
        authorization = value;
        break;
      case 'accept':
        accept = accept === undefined ? value : `${accept}, ${value}`;
        break;
      case 'x-ringkv-context':
        context = context === undefined ? value : Array.isArray(context) ? [...context, value] : [context, value];
        break;
    }
  }
  const bodyBytes = contentLength < 0 ? 0 : contentLength;
  if (bodyBytes > maxBodyBytes) return { kind: 'handOff' };
  if (buf.length < headEnd + bodyBytes) return { kind: 'wait', needBytes: headEnd + bodyBytes };
  // A copy: the value may be kept (memtable, caches) and must not pin the read chunk.
  const body = bodyBytes === 0 ? emptyBody : new Uint8Array(buf.subarray(headEnd, headEnd + bodyBytes));
  return {
    kind: 'request',
    request: { method, keySegment, query: q < 0 ? '' : target.slice(q + 1), authorization, accept, context, body },
    consumed: headEnd + bodyBytes,
    close,
  };
}

/** The response bytes: head and body in one buffer, so one socket write sends both. */
export function serializeReply(reply: FastReply, close: boolean, date: string): Buffer {
  let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Unknown'}\r\n`;
  for (const name in reply.headers) {
    const value = reply.headers[name] as string;
    if (name === 'connection' || name === 'content-length') continue;
    // Values are ringkv's own (base64, numbers, fixed text); refuse rather than split a header.
    if (hasControlChar(value)) throw new Error(`Header ${name} has a control character`);
    head += `${name}: ${value}\r\n`;
  }
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
  const bodyBytes = body === undefined ? 0 : body.length;
  // 204 carries neither a body nor Content-Length (RFC 9110 §8.6).
  if (reply.status !== 204) head += `content-length: ${bodyBytes}\r\n`;
  head += `date: ${date}\r\n`;
  head += close ? 'connection: close\r\n\r\n' : `connection: keep-alive\r\nkeep-alive: timeout=${keepAliveTimeoutMs / 1000}\r\n\r\n`;
  const sendBody = reply.status !== 204 && body !== undefined && bodyBytes > 0;
  const out = Buffer.allocUnsafe(head.length + (sendBody ? bodyBytes : 0));
  out.write(head, 0, 'latin1');
  if (sendBody) out.set(body, head.length);
  return out;
}

/** One client connection while the fast path owns it. */
export class FastConnection {
  private pending: Buffer = Buffer.alloc(0);
  /**
   * Chunks received after `pending` while a body is known to be incomplete:
   * joined once the request is whole, not on every chunk (a 16 MiB body in
   * 64 KiB reads would otherwise be copied ~256 times).
   */
  private more: Buffer[] = [];
  private moreBytes = 0;
  private needBytes = 0;
  private readonly slots: Slot[] = [];
  private handingOff = false;
  private ended = false;
  private paused = false;
  /** When the bytes of an unfinished request started waiting (ms, host clock), or -1. */
  partialSinceMs = -1;
  /** When the connection last had nothing in flight (ms), for the keep-alive timeout. */
  idleSinceMs: number;
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onEnd = (): void => this.peerEnded();
  private readonly onError = (): void => {
    this.socket.destroy();
  };

  constructor(
    readonly socket: Socket,
    private readonly host: FastPathHost,
    private readonly nowMs: () => number,
    private readonly onDone: (conn: FastConnection) => void,
  ) {
    this.idleSinceMs = nowMs();
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.once('close', () => this.onDone(this));
  }

  /** Nothing in flight and no partial request: safe to close for idleness or shutdown. */
  get idle(): boolean {
    return this.slots.length === 0 && this.pending.length === 0 && this.moreBytes === 0 && !this.handingOff;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.handingOff || this.ended) return;
    if (this.pending.length + this.moreBytes + chunk.length < this.needBytes) {
      this.more.push(chunk);
      this.moreBytes += chunk.length;
      return;
    }
    this.pending = this.pending.length === 0 && this.moreBytes === 0 ? chunk : Buffer.concat([this.pending, ...this.more, chunk]);
    this.more = [];
    this.moreBytes = 0;
    this.parse();
  }

  private parse(): void {
    while (this.pending.length > 0 && !this.handingOff && !this.ended) {
      if (this.slots.length >= maxPipelinedRequests) {
        this.pause();
        return;
      }
      const parsed = parseFastRequest(this.pending, this.host.maxBodyBytes());
      if (parsed.kind === 'wait') {
        this.needBytes = parsed.needBytes;
        if (this.partialSinceMs < 0) this.partialSinceMs = this.nowMs();
        return;
      }
      this.needBytes = 0;
      this.partialSinceMs = -1;
      if (parsed.kind === 'handOff') {
        this.handingOff = true;
        this.pause();
        this.maybeHandOff();
        return;
      }
      this.pending = parsed.consumed === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(parsed.consumed);
      const request = parsed.request;
      const slot: Slot = { out: undefined, close: parsed.close, write: request.method !== 'GET', done: undefined };
      // RFC 9112 §9.3.2: only safe requests may run in parallel. A write waits
      // for every earlier request, a read for the last earlier write; a lone
      // request (the usual case, no pipelining) starts at once.
      const before = this.predecessor(slot.write);
      const run = (): Promise<void> =>
        this.host.serve(request).then(
          (reply) => this.answer(slot, reply),
          // serve() turns errors into replies; should one escape, the slot must still be answered or the connection stalls.
          () => this.answer(slot, internalErrorReply),
        );
      this.slots.push(slot);
      if (parsed.close) this.ended = true;
      slot.done = before === undefined ? run() : before.then(run);
    }
  }

  private predecessor(write: boolean): Promise<unknown> | undefined {
    if (this.slots.length === 0) return undefined;
    if (write) return Promise.all(this.slots.map((s) => s.done));
    for (let i = this.slots.length - 1; i >= 0; i--) {
      const s = this.slots[i] as Slot;
      if (s.write) return s.done;
    }
    return undefined;
  }

  private answer(slot: Slot, reply: FastReply): void {
    if (reply.headers['connection'] === 'close') slot.close = true;
    try {
      slot.out = serializeReply(reply, slot.close, this.host.date());
    } catch {
      slot.out = serializeReply(internalErrorReply, slot.close, this.host.date());
    }
    this.writeReady();
  }

  /** Writes the finished responses at the head of the queue, in request order. */
  private writeReady(): void {
    const socket = this.socket;
    let first = this.slots[0];
    if (first?.out === undefined) return;
    const many = this.slots.length > 1 && this.slots[1]?.out !== undefined;
    if (many) socket.cork();
    while (first !== undefined && first.out !== undefined) {
      this.slots.shift();
      if (!socket.destroyed) socket.write(first.out);
      if (first.close) {
        this.ended = true;
        this.slots.length = 0;
        socket.end();
        break;
      }
      first = this.slots[0];
    }
    if (many) socket.uncork();
    if (this.slots.length === 0) this.idleSinceMs = this.nowMs();
    if (this.ended) return;
    if (this.handingOff) {
      this.maybeHandOff();
      return;
    }
    if (this.paused && this.slots.length < maxPipelinedRequests) {
      this.paused = false;
      this.socket.resume();
      this.parse();
    }
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /** Gives the connection to node:http once every earlier response is written. */
  private maybeHandOff(): void {
    if (this.slots.length > 0 || this.socket.destroyed) return;
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('error', this.onError);
    this.onDone(this);
    const unread = this.moreBytes === 0 ? this.pending : Buffer.concat([this.pending, ...this.more]);
    this.pending = Buffer.alloc(0);
    this.more = [];
    this.moreBytes = 0;
    this.host.handOff(socket, unread);
  }

  /** The client finished sending: answer what is in flight, then close. */
  private peerEnded(): void {
    this.ended = true;
    const last = this.slots[this.slots.length - 1];
    if (last === undefined) this.socket.end();
    else last.close = true;
  }
}
