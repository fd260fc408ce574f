/**
 * A lean HTTP/1.1 keep-alive client for the load generator: one socket per
 * closed-loop client and endpoint, one request at a time on it, the request
 * written with one socket write and the response parsed from the socket's
 * chunks by hand. node:http's client (agent, ClientRequest, IncomingMessage,
 * header objects, streams) cost 70–110 µs of generator CPU per operation on
 * this 2-core machine, CPU taken from whichever target runs beside it; every
 * HTTP target (ringkv-http and etcd) goes through this same client.
 *
 * It understands what the targets send: a status line, headers, and a body
 * framed by Content-Length or chunked transfer coding; `Connection: close`
 * ends the socket after the response.
 *
 * A request that gets no answer within `requestTimeoutMs` fails its socket
 * (request-timeouts.ts).
 */
import { connect, type Socket } from 'node:net';
import { requestTimeoutMs } from './driver.ts';
import { unwatch, watch, type Expirable } from './request-timeouts.ts';

export interface HttpResponse {
  status: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
}

/** Response heads larger than this are refused (the targets send a few hundred bytes). */
const maxHeadBytes = 64 * 1024;

interface Waiter {
  resolve(response: HttpResponse): void;
  reject(error: Error): void;
  what: string;
}

const headEnd = Buffer.from('\r\n\r\n');
const crlf = Buffer.from('\r\n');
const empty = Buffer.alloc(0);

function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** One keep-alive connection; `request` must not be called again before the previous one settled. */
export class HttpConnection implements Expirable {
  private buffer: Buffer = empty;
  private waiter: Waiter | undefined;
  /** When the waiting request was written (Date.now()). */
  private sentAtMs = 0;
  private closedError: Error | undefined;
  private keepAlive = true;

  private constructor(
    private readonly socket: Socket,
    private readonly hostHeader: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(failure('socket hang up', 'ECONNRESET')));
    watch(this);
  }

  /** Fails the socket when its request has waited longer than the timeout (the sweep's check). */
  expireIfLate(nowMs: number): void {
    if (this.waiter !== undefined && nowMs - this.sentAtMs > requestTimeoutMs) this.socket.destroy(failure(`no answer within ${requestTimeoutMs} ms`, 'ETIMEDOUT'));
  }

  static open(host: string, port: number): Promise<HttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const onError = (error: Error): void => reject(error);
      socket.once('error', onError);
      socket.setTimeout(requestTimeoutMs, () => socket.destroy(failure(`connect to ${host}:${port} timed out`, 'ETIMEDOUT')));
      socket.once('connect', () => {
        socket.off('error', onError);
        socket.setTimeout(0);
        resolve(new HttpConnection(socket, `${host}:${port}`));
      });
    });
  }

  get usable(): boolean {
    return this.closedError === undefined && this.keepAlive;
  }

  /** `headers`: extra header lines, each ending in CRLF (Host, Content-Length and keep-alive are added here). */
  request(method: string, path: string, headers: string, body?: Buffer | string): Promise<HttpResponse> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    if (this.waiter !== undefined) return Promise.reject(new Error('HttpConnection: one request at a time'));
    const what = `${method} ${path} on ${this.hostHeader}`;
    return new Promise<HttpResponse>((resolve, reject) => {
      this.waiter = { resolve, reject, what };
      const bodyBytes = body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n${headers}${body === undefined && method === 'GET' ? '' : `content-length: ${bodyBytes}\r\n`}\r\n`;
      this.sentAtMs = Date.now();
      if (body === undefined || bodyBytes === 0) this.socket.write(head, 'latin1');
      else if (typeof body === 'string') this.socket.write(head + body, 'utf8');
      else {
        // One write, so the request leaves in one segment.
        const out = Buffer.allocUnsafe(head.length + body.length);
        out.write(head, 0, 'latin1');
        body.copy(out, head.length);
        this.socket.write(out);
      }
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let parsed: { response: HttpResponse; end: number } | undefined;
    try {
      parsed = this.parse();
    } catch (error) {
      this.socket.destroy(error as Error);
      return;
    }
    if (parsed === undefined) return;
    const waiter = this.waiter;
    if (waiter === undefined) {
      this.socket.destroy(new Error(`An HTTP response from ${this.hostHeader} arrived with no request waiting`));
      return;
    }
    this.waiter = undefined;
    this.buffer = parsed.end >= this.buffer.length ? empty : this.buffer.subarray(parsed.end);
    if (!this.keepAlive) this.socket.end();
    waiter.resolve(parsed.response);
  }

  /** The response at the start of the buffer, once whole; undefined while bytes are missing. */
  private parse(): { response: HttpResponse; end: number } | undefined {
    const buf = this.buffer;
    const end = buf.indexOf(headEnd);
    if (end < 0) {
      if (buf.length > maxHeadBytes) throw new Error(`The HTTP response head from ${this.hostHeader} exceeds ${maxHeadBytes} bytes`);
      return undefined;
    }
    // Scanned in place rather than split into lines: this parse was ~9 % of the generator's CPU.
    const head = buf.toString('latin1', 0, end);
    const lineEnd = head.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
    const status = Number(statusLine.slice(9, 12));
    if (!statusLine.startsWith('HTTP/1.') || !Number.isInteger(status)) throw new Error(`Not an HTTP/1.x status line from ${this.hostHeader}: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const headers: Record<string, string> = {};
    for (let at = lineEnd < 0 ? head.length : lineEnd + 2; at < head.length; ) {
      let next = head.indexOf('\r\n', at);
      if (next < 0) next = head.length;
      const colon = head.indexOf(':', at);
      if (colon > at && colon < next) {
        let name = head.slice(at, colon);
        if (/[A-Z\s]/.test(name)) name = name.trim().toLowerCase();
        let from = colon + 1;
        while (from < next && (head.charCodeAt(from) === 32 || head.charCodeAt(from) === 9)) from++;
        let to = next;
        while (to > from && (head.charCodeAt(to - 1) === 32 || head.charCodeAt(to - 1) === 9)) to--;
        headers[name] = head.slice(from, to);
      }
      at = next + 2;
    }
    this.keepAlive = (headers.connection ?? '').toLowerCase() !== 'close' && statusLine.startsWith('HTTP/1.1');
    const start = end + 4;
    const length = headers['content-length'];
    if (length !== undefined) {
      const n = Number(length);
      if (!Number.isInteger(n) || n < 0) throw new Error(`Bad Content-Length ${JSON.stringify(length)} from ${this.hostHeader}`);
      if (buf.length < start + n) return undefined;
      return { response: { status, headers, body: buf.subarray(start, start + n) }, end: start + n };
    }
    if ((headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) return this.parseChunked(buf, start, status, headers);
    // 204/304 carry no body; anything else without framing runs to the close, which these targets never send.
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { response: { status, headers, body: empty }, end: start };
    throw new Error(`HTTP ${status} from ${this.hostHeader} has neither Content-Length nor chunked coding`);
  }

  private parseChunked(buf: Buffer, from: number, status: number, headers: Record<string, string>): { response: HttpResponse; end: number } | undefined {
    const parts: Buffer[] = [];
    let at = from;
    for (;;) {
      const lineEnd = buf.indexOf(crlf, at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
      if (!Number.isInteger(size) || size < 0) throw new Error(`Bad chunk size from ${this.hostHeader}`);
      const dataStart = lineEnd + 2;
      if (size === 0) {
        // No trailers from these targets: the last chunk is followed by one empty line.
        if (buf.length < dataStart + 2) return undefined;
        const body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
        return { response: { status, headers, body }, end: dataStart + 2 };
      }
      if (buf.length < dataStart + size + 2) return undefined;
      parts.push(buf.subarray(dataStart, dataStart + size));
      at = dataStart + size + 2;
    }
  }

  private fail(error: Error): void {
    if (this.closedError === undefined) this.closedError = error;
    unwatch(this);
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter !== undefined) {
      const reason = error.message.includes(waiter.what) ? error : Object.assign(new Error(`${waiter.what}: ${error.message}`, { cause: error }), { code: (error as { code?: unknown }).code });
      waiter.reject(reason);
    }
  }
}

/**
 * Each closed-loop client's connection to its current endpoint, opened on
 * first use and again after its socket closed (a killed node: the reconnect
 * is refused, and the driver moves the client on).
 */
/** A client's connection to endpoint `index`; `ready` once it opened, so a request on it skips an await. */
interface ClientConnection {
  index: number;
  connection: Promise<HttpConnection>;
  ready?: HttpConnection;
}

export class HttpClients {
  private readonly connections = new Map<number, ClientConnection>();

  constructor(private readonly endpoints: ReadonlyArray<{ host: string; port: number }>) {}

  request(client: number, index: number, method: string, path: string, headers: string, body?: Buffer | string): Promise<HttpResponse> {
    const existing = this.connections.get(client);
    if (existing?.index === index && existing.ready?.usable === true) return existing.ready.request(method, path, headers, body);
    return this.connection(client, index).then((connection) => connection.request(method, path, headers, body));
  }

  close(): void {
    for (const { connection } of this.connections.values()) connection.then((c) => c.close(), () => undefined);
    this.connections.clear();
  }

  private async connection(client: number, index: number): Promise<HttpConnection> {
    const existing = this.connections.get(client);
    if (existing !== undefined && existing.index === index) {
      const connection = await existing.connection.catch(() => undefined);
      if (connection?.usable === true) return connection;
    }
    if (existing !== undefined) {
      void existing.connection.then((c) => c.close(), () => undefined);
      this.connections.delete(client);
    }
    const endpoint = this.endpoints[index];
    if (endpoint === undefined) throw new Error(`No endpoint ${index}`);
    const opening = HttpConnection.open(endpoint.host, endpoint.port);
    const entry: ClientConnection = { index, connection: opening };
    this.connections.set(client, entry);
    opening.then((connection) => {
      entry.ready = connection;
    }, () => {
      if (this.connections.get(client)?.connection === opening) this.connections.delete(client);
    });
    return opening;
  }
}

/** An error carrying the response, so the generator can report what the target said. */
export function statusError(target: string, what: string, res: HttpResponse): Error {
  const text = res.body.toString('utf8').slice(0, 300);
  return new Error(`${target} ${what}: HTTP ${res.status} ${text}`);
}
