/**
 * A small independent RESP2 client for tests: sends commands as multibulk
 * and decodes replies into plain values, so tests compare exactly what a
 * server put on the wire (the same decoder reads ringkv and redis-server).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export type Reply =
  | { t: 'simple'; v: string }
  | { t: 'error'; v: string }
  | { t: 'int'; v: string }
  | { t: 'bulk'; v: string }
  | { t: 'null' }
  | { t: 'array'; v: Reply[] }
  | { t: 'other'; v: string };

/** Decodes one reply at `pos`; undefined when the buffer ends first. */
export function decodeReply(buf: Buffer, pos: number): [Reply, number] | undefined {
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString('utf8', pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return [{ t: 'simple', v: line }, next];
    case '-':
      return [{ t: 'error', v: line }, next];
    case ':':
      return [{ t: 'int', v: line }, next];
    case '_':
      return [{ t: 'null' }, next];
    case '$':
    case '=': {
      const len = Number(line);
      if (len < 0) return [{ t: 'null' }, next];
      if (buf.length < next + len + 2) return undefined;
      return [{ t: 'bulk', v: buf.toString('latin1', next, next + len) }, next + len + 2];
    }
    case '*':
    case '%':
    case '~': {
      const n = Number(line);
      if (n < 0) return [{ t: 'null' }, next];
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < n * (type === '%' ? 2 : 1); i++) {
        const r = decodeReply(buf, at);
        if (r === undefined) return undefined;
        items.push(r[0]);
        at = r[1];
      }
      return [{ t: 'array', v: items }, at];
    }
    default:
      return [{ t: 'other', v: `${type}${line}` }, next];
  }
}

export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private readonly waiting: Array<(r: Reply) => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      for (;;) {
        const r = decodeReply(this.buf, 0);
        if (r === undefined) break;
        this.buf = this.buf.subarray(r[1]);
        this.waiting.shift()?.(r[0]);
      }
    });
    // A closed connection answers every outstanding and later request with a marker, so no test hangs.
    const onClosed = (): void => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w({ t: 'other', v: 'connection closed' });
    };
    socket.on('close', onClosed);
    socket.on('error', onClosed);
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(args: ReadonlyArray<string | Buffer>): Promise<Reply> {
    return this.sendRaw(encodeCommand(args));
  }

  /** Sends every command in one write (a pipeline) and resolves with the replies in order. */
  sendMany(commands: ReadonlyArray<ReadonlyArray<string | Buffer>>): Promise<Reply[]> {
    const replies = commands.map(
      () =>
        new Promise<Reply>((resolve) => {
          if (this.closed) resolve({ t: 'other', v: 'connection closed' });
          else this.waiting.push(resolve);
        }),
    );
    this.socket.write(Buffer.concat(commands.map((c) => encodeCommand(c))));
    return Promise.all(replies);
  }

  /** Sends frames already encoded (`expected` replies) in one write and resolves with the replies in order. */
  sendFrames(frames: readonly Buffer[], expected: number = frames.length): Promise<Reply[]> {
    const replies = Array.from(
      { length: expected },
      () =>
        new Promise<Reply>((resolve) => {
          if (this.closed) resolve({ t: 'other', v: 'connection closed' });
          else this.waiting.push(resolve);
        }),
    );
    this.socket.write(Buffer.concat(frames));
    return Promise.all(replies);
  }

  sendRaw(bytes: Buffer): Promise<Reply> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve({ t: 'other', v: 'connection closed' });
        return;
      }
      this.waiting.push(resolve);
      this.socket.write(bytes);
    });
  }

  /** Waits until the server closes the connection (or `ms` pass); true when it closed. */
  async waitClosed(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
