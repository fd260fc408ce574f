/**
 * A minimal RESP2 client: one TCP connection, commands answered in order
 * (FIFO), replies parsed incrementally so any chunk split works. It parses
 * the reply types a RESP2 server sends (+ - : $ *); RESP3 is never asked for
 * (no HELLO 3). Smaller and cheaper per command than ioredis, so the load
 * generator's own CPU stays low on a 2-core machine.
 */
import { connect, type Socket } from 'node:net';
import { requestTimeoutMs } from './driver.ts';
import { unwatch, watch, type Expirable } from './request-timeouts.ts';

export type RespReply = string | number | Buffer | null | RespError | RespReply[];

export class RespError extends Error {}

interface Pending {
  resolve(reply: RespReply): void;
  reject(error: Error): void;
  /** When the command was written (Date.now()). */
  sentAtMs: number;
}

const crlf = Buffer.from('\r\n');
const incomplete = Symbol('incomplete');
type Parsed = { reply: RespReply; end: number } | typeof incomplete;

function lineEnd(buf: Buffer, from: number): number {
  return buf.indexOf(crlf, from);
}

function parseReply(buf: Buffer, start: number): Parsed {
  if (start >= buf.length) return incomplete;
  const end = lineEnd(buf, start);
  if (end < 0) return incomplete;
  const type = buf[start];
  const line = buf.toString('latin1', start + 1, end);
  switch (type) {
    case 0x2b: // +
      return { reply: line, end: end + 2 };
    case 0x2d: // -
      return { reply: new RespError(line), end: end + 2 };
    case 0x3a: // :
      return { reply: Number(line), end: end + 2 };
    case 0x24: {
      // $
      const length = Number(line);
      if (length < 0) return { reply: null, end: end + 2 };
      const dataEnd = end + 2 + length;
      if (dataEnd + 2 > buf.length) return incomplete;
      return { reply: buf.subarray(end + 2, dataEnd), end: dataEnd + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count < 0) return { reply: null, end: end + 2 };
      const items: RespReply[] = [];
      let at = end + 2;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (item === incomplete) return incomplete;
        items.push(item.reply);
        at = item.end;
      }
      return { reply: items, end: at };
    }
    default:
      throw new Error(`RESP reply starts with an unknown type byte 0x${(type ?? 0).toString(16)}`);
  }
}

export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, crlf);
  }
  return Buffer.concat(parts);
}

export class RespConnection implements Expirable {
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(Object.assign(new Error('RESP connection closed'), { code: 'ECONNRESET' })));
    watch(this);
  }

  /** Fails the socket when its oldest command has waited longer than the timeout (the sweep's check). */
  expireIfLate(nowMs: number): void {
    const oldest = this.pending[0];
    if (oldest !== undefined && nowMs - oldest.sentAtMs > requestTimeoutMs) {
      this.socket.destroy(Object.assign(new Error(`RESP: no answer within ${requestTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }
  }

  static open(host: string, port: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const onError = (error: Error): void => reject(error);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        // Only the connect is timed: a socket timeout left armed is re-armed on every read and write.
        socket.setTimeout(0);
        resolve(new RespConnection(socket));
      });
      socket.setTimeout(requestTimeoutMs, () => socket.destroy(Object.assign(new Error(`RESP connect to ${host}:${port} timed out`), { code: 'ETIMEDOUT' })));
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Sends one command; an error reply resolves as a RespError value (callers decide). */
  command(args: ReadonlyArray<string | Buffer>): Promise<RespReply> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, sentAtMs: Date.now() });
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let at = 0;
    while (at < this.buffer.length) {
      let parsed: Parsed;
      try {
        parsed = parseReply(this.buffer, at);
      } catch (error) {
        this.socket.destroy(error as Error);
        return;
      }
      if (parsed === incomplete) break;
      at = parsed.end;
      const waiter = this.pending.shift();
      if (waiter === undefined) {
        this.socket.destroy(new Error('RESP reply without a pending command'));
        return;
      }
      waiter.resolve(parsed.reply);
    }
    this.buffer = at >= this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(at);
  }

  private fail(error: Error): void {
    if (this.closedError === undefined) this.closedError = error;
    unwatch(this);
    for (const waiter of this.pending.splice(0)) waiter.reject(error);
  }
}
