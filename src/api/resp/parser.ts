/**
 * Incremental RESP request parser. Bytes arrive in chunks split anywhere; each
 * `next()` returns one complete command (its arguments as fresh Buffers) or
 * undefined when more bytes are needed. State survives between calls, so a
 * large bulk string split over many chunks is concatenated once, not re-scanned
 * on every chunk. Requests are either multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
 * or inline (`GET k\r\n`), as in Redis (networking.c processMultibulkBuffer /
 * processInlineBuffer), with the same error texts.
 *
 * Every limit is enforced before bytes are buffered past it, so a client
 * cannot make the parser hold more than about one maximal command.
 */
import { ProtocolError } from '../../core/index.ts';

export interface ParserLimits {
  /** Largest bulk string (one argument). */
  maxBulkBytes: number;
  /** Most arguments in one multibulk command. */
  maxArrayLength: number;
  /** Longest inline command, and longest `*N` / `$N` header line. */
  maxInlineBytes: number;
  /** Most bytes of arguments in one command. */
  maxCommandBytes: number;
}

export const defaultParserLimits: Readonly<ParserLimits> = {
  maxBulkBytes: 64 * 1024 * 1024,
  maxArrayLength: 1024 * 1024,
  maxInlineBytes: 64 * 1024,
  maxCommandBytes: 512 * 1024 * 1024,
};

/** What an unauthenticated client may send (Redis: 10 arguments, 16 KiB bulks). */
export const unauthenticatedMaxArrayLength = 10;
export const unauthenticatedMaxBulkBytes = 16 * 1024;

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const empty = Buffer.alloc(0);

/**
 * Parses the ASCII integer in buf[start, end) like Redis's string2ll: an
 * optional '-', digits, no spaces, no leading '+'. NaN when it is not one.
 */
function parseHeaderInt(buf: Buffer, start: number, end: number): number {
  let i = start;
  let negative = false;
  if (i < end && buf[i] === 45) {
    negative = true;
    i++;
  }
  if (i >= end || end - i > 15) return Number.NaN;
  let n = 0;
  for (; i < end; i++) {
    const c = (buf[i] as number) - 48;
    if (c < 0 || c > 9) return Number.NaN;
    n = n * 10 + c;
  }
  return negative ? -n : n;
}

/** Arguments up to this long are copied byte by byte (Buffer.copy makes a view of its source per call). */
const loopCopyMaxBytes = 128;

/** A copy of `length` bytes at `at`, so that a stored value does not pin the whole socket chunk. */
export function copyArg(source: Buffer, at: number, length: number): Buffer {
  const arg = Buffer.allocUnsafe(length);
  if (length <= loopCopyMaxBytes) {
    for (let i = 0; i < length; i++) arg[i] = source[at + i] as number;
  } else {
    source.copy(arg, 0, at, at + length);
  }
  return arg;
}

/** Header lines (`*N`, `$N`) are searched for their CR by a loop over this many bytes first. */
const shortHeaderBytes = 24;

/** Multibulk counts up to this get an argument array of exactly their size. */
const presizedArgs = 16;
/** Between commands: never written to (a multibulk header replaces it first). */
const noArgs: Buffer[] = [];

/** What `peekPlain` found at the parser's position: nothing it handles, */
export const plainNone = 0;
/** `*2 $3 GET $n key` (the name in any case), */
export const plainGet = 1;
/** or `*3 $3 SET $n key $m value` (the name in any case). */
export const plainSet = 2;
export type PlainCommand = typeof plainNone | typeof plainGet | typeof plainSet;

/** Lower-case ASCII of the bytes `PlainCommand` matches (a byte ORed with 0x20). */
const lowerG = 0x67;
const lowerS = 0x73;
const lowerE = 0x65;
const lowerT = 0x74;
const digit2 = 50;
const digit3 = 51;
/** Bytes of `*N\r\n$3\r\nXXX\r\n`, the frame up to the key's header. */
const plainNameFrameBytes = 13;
/** Digits of a bulk length `peekPlain` reads; anything longer takes `next`. */
const plainMaxLengthDigits = 9;

export class RespParser {
  private buf: Buffer = empty;
  private pos = 0;
  /** Chunks received while waiting for `need` more bytes. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;
  /** Arguments still expected in the current multibulk; -1 when between commands. */
  private argsLeft = -1;
  private args: Buffer[] = noArgs;
  /** Arguments the current multibulk declared. */
  private argCount = 0;
  private commandBytes = 0;
  /** Length of the bulk string being read; -1 while its `$N` header is not read. */
  private bulkLen = -1;

  /** Unauthenticated clients get Redis's small limits until they authenticate. */
  restricted = false;

  /** Where `peekPlain`'s command has its name, key and value in `input` (valid until the next feed or next). */
  plainNameAt = 0;
  plainKeyAt = 0;
  plainKeyBytes = 0;
  plainValueAt = 0;
  plainValueBytes = 0;
  private plainEnd = 0;

  constructor(private readonly limits: ParserLimits = defaultParserLimits) {}

  /** Bytes received and not yet returned as commands. */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + this.pendingBytes + this.commandBytes;
  }

  feed(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pos >= this.buf.length && this.pendingBytes === 0) {
      this.buf = chunk;
      this.pos = 0;
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  /** The next complete command, or undefined. Throws ProtocolError on a violation; the parser is then unusable. */
  next(): Buffer[] | undefined {
    if (this.pendingBytes > 0) {
      if (this.pendingBytes < this.need) return undefined;
      this.pending.unshift(this.buf.subarray(this.pos));
      this.buf = Buffer.concat(this.pending);
      this.pos = 0;
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.need = 0;
    for (;;) {
      if (this.argsLeft < 0) {
        if (this.pos >= this.buf.length) return undefined;
        if (this.buf[this.pos] !== STAR) {
          const inline = this.parseInline();
          if (inline === undefined) return undefined;
          if (inline.length === 0) continue;
          return inline;
        }
        const count = this.readHeader('mbulk count');
        if (count === undefined) return undefined;
        if (Number.isNaN(count) || count > this.limits.maxArrayLength) throw new ProtocolError('Protocol error: invalid multibulk length');
        if (this.restricted && count > unauthenticatedMaxArrayLength) throw new ProtocolError('Protocol error: unauthenticated multibulk length');
        if (count <= 0) continue;
        this.argsLeft = count;
        this.argCount = count;
        // Sized up front only when small: a declared count is not yet backed by any bytes.
        this.args = count <= presizedArgs ? new Array<Buffer>(count) : [];
        this.commandBytes = 0;
      }
      while (this.argsLeft > 0) {
        if (this.bulkLen < 0) {
          if (this.pos >= this.buf.length) return undefined;
          const first = this.buf[this.pos] as number;
          if (first !== DOLLAR) throw new ProtocolError(`Protocol error: expected '$', got '${String.fromCharCode(first)}'`);
          const len = this.readHeader('bulk count');
          if (len === undefined) return undefined;
          if (Number.isNaN(len) || len < 0 || len > this.limits.maxBulkBytes) throw new ProtocolError('Protocol error: invalid bulk length');
          if (this.restricted && len > unauthenticatedMaxBulkBytes) throw new ProtocolError('Protocol error: unauthenticated bulk length');
          if (this.commandBytes + len > this.limits.maxCommandBytes) {
            throw new ProtocolError(`Protocol error: command larger than ${this.limits.maxCommandBytes} bytes`);
          }
          this.bulkLen = len;
        }
        const available = this.buf.length - this.pos;
        if (available < this.bulkLen + 2) {
          this.need = this.bulkLen + 2 - available;
          return undefined;
        }
        // Filled in order, so on an array not sized up front this appends.
        this.args[this.argCount - this.argsLeft] = copyArg(this.buf, this.pos, this.bulkLen);
        this.commandBytes += this.bulkLen;
        this.pos += this.bulkLen + 2;
        this.bulkLen = -1;
        this.argsLeft--;
      }
      const command = this.args;
      this.args = noArgs;
      this.argsLeft = -1;
      this.commandBytes = 0;
      return command;
    }
  }

  /** The bytes `peekPlain`'s positions refer to. */
  get input(): Buffer {
    return this.buf;
  }

  /**
   * Recognises a complete plain GET or SET at the current position, in one
   * chunk, within every limit, without consuming it or allocating: the
   * caller reads the key and value at `plainKeyAt`/`plainValueAt` of
   * `input` and calls `consumePlain` once it has answered, or leaves it to
   * `next`. Anything else (another command, options, a frame split across
   * chunks, an unauthenticated client, a malformed header) is `None`, and
   * `next` parses it exactly as it would have.
   */
  peekPlain(): PlainCommand {
    if (this.argsLeft >= 0 || this.pendingBytes > 0 || this.restricted) return plainNone;
    const buf = this.buf;
    const at = this.pos;
    if (buf.length - at < plainNameFrameBytes + 4) return plainNone;
    // `*2` or `*3`, then `$3`; CR checked where `next` would look for it, LF skipped as `next` skips it.
    if (buf[at] !== STAR || buf[at + 2] !== CR || buf[at + 4] !== DOLLAR || buf[at + 5] !== digit3 || buf[at + 6] !== CR) return plainNone;
    if (((buf[at + 9] as number) | 0x20) !== lowerE || ((buf[at + 10] as number) | 0x20) !== lowerT) return plainNone;
    const argc = buf[at + 1];
    const first = (buf[at + 8] as number) | 0x20;
    let kind: PlainCommand;
    if (first === lowerG && argc === digit2) kind = plainGet;
    else if (first === lowerS && argc === digit3) kind = plainSet;
    else return plainNone;
    let p = this.readPlainBulk(at + plainNameFrameBytes);
    if (p < 0) return plainNone;
    this.plainKeyAt = this.plainBulkAt;
    this.plainKeyBytes = this.plainBulkBytes;
    if (kind === plainSet) {
      p = this.readPlainBulk(p);
      if (p < 0 || this.plainKeyBytes + this.plainBulkBytes > this.limits.maxCommandBytes) return plainNone;
      this.plainValueAt = this.plainBulkAt;
      this.plainValueBytes = this.plainBulkBytes;
    }
    this.plainNameAt = at + 8;
    this.plainEnd = p;
    return kind;
  }

  /** Moves past the command `peekPlain` recognised. */
  consumePlain(): void {
    this.pos = this.plainEnd;
  }

  private plainBulkAt = 0;
  private plainBulkBytes = 0;

  /** Reads a complete `$N\r\n<N bytes>\r\n` at `at` into plainBulkAt/Bytes; returns the position after it, or -1. */
  private readPlainBulk(at: number): number {
    const buf = this.buf;
    const end = buf.length;
    if (at >= end || buf[at] !== DOLLAR) return -1;
    let p = at + 1;
    const digitsEnd = Math.min(end, p + plainMaxLengthDigits + 1);
    let n = 0;
    while (p < digitsEnd) {
      const c = (buf[p] as number) - 48;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
      p++;
    }
    // No digits, too many, or the line (or its LF) not here yet: `next` decides.
    if (p === at + 1 || p + 1 >= end || buf[p] !== CR || n > this.limits.maxBulkBytes) return -1;
    p += 2;
    if (end - p < n + 2) return -1;
    this.plainBulkAt = p;
    this.plainBulkBytes = n;
    return p + n + 2;
  }

  /** Reads `*N\r\n` or `$N\r\n` at pos; undefined when the line is incomplete. */
  private readHeader(what: string): number | undefined {
    const buf = this.buf;
    // Header lines are a few bytes: a loop beats Buffer.indexOf's native call,
    // which is kept for longer lines (a client sending junk).
    const end = buf.length;
    const near = Math.min(end, this.pos + shortHeaderBytes);
    let cr = this.pos;
    while (cr < near && buf[cr] !== CR) cr++;
    if (cr === near && near < end) {
      const found = buf.indexOf(CR, near);
      cr = found < 0 ? end : found;
    }
    if (cr + 1 >= end) {
      if (buf.length - this.pos > this.limits.maxInlineBytes) throw new ProtocolError(`Protocol error: too big ${what} string`);
      this.need = 1;
      return undefined;
    }
    const value = parseHeaderInt(buf, this.pos + 1, cr);
    this.pos = cr + 2;
    return value;
  }

  /** An inline command; [] for an empty line, undefined when the line is incomplete. */
  private parseInline(): Buffer[] | undefined {
    const buf = this.buf;
    const lf = buf.indexOf(LF, this.pos);
    if (lf < 0) {
      if (buf.length - this.pos > this.limits.maxInlineBytes) throw new ProtocolError('Protocol error: too big inline request');
      this.need = 1;
      return undefined;
    }
    let end = lf;
    if (end > this.pos && buf[end - 1] === CR) end--;
    if (end - this.pos > this.limits.maxInlineBytes) throw new ProtocolError('Protocol error: too big inline request');
    const args = splitArgs(buf.subarray(this.pos, end));
    this.pos = lf + 1;
    if (args === undefined) throw new ProtocolError('Protocol error: unbalanced quotes in request');
    if (this.restricted && args.length > unauthenticatedMaxArrayLength) throw new ProtocolError('Protocol error: unauthenticated multibulk length');
    return args;
  }
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

function hexValue(c: number): number {
  if (c <= 57) return c - 48;
  if (c >= 97) return c - 87;
  return c - 55;
}

function isSpace(c: number | undefined): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
}

/**
 * Splits an inline command line like Redis's sdssplitargs: spaces separate
 * arguments; "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes;
 * 'single quotes' take \' only. A closing quote must be followed by a space or
 * the end. Undefined for unbalanced quotes.
 */
export function splitArgs(line: Buffer): Buffer[] | undefined {
  const args: Buffer[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) return args;
    const bytes: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      const c = line[i];
      if (inDouble) {
        if (c === undefined) return undefined;
        if (c === 92 && line[i + 1] === 120 && isHex(line[i + 2] ?? 0) && isHex(line[i + 3] ?? 0)) {
          bytes.push(hexValue(line[i + 2] as number) * 16 + hexValue(line[i + 3] as number));
          i += 3;
        } else if (c === 92 && i + 1 < n) {
          i++;
          const e = line[i] as number;
          const map: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7 };
          bytes.push(map[e] ?? e);
        } else if (c === 34) {
          if (i + 1 < n && !isSpace(line[i + 1])) return undefined;
          i++;
          break;
        } else {
          bytes.push(c);
        }
      } else if (inSingle) {
        if (c === undefined) return undefined;
        if (c === 92 && line[i + 1] === 39) {
          i++;
          bytes.push(39);
        } else if (c === 39) {
          if (i + 1 < n && !isSpace(line[i + 1])) return undefined;
          i++;
          break;
        } else {
          bytes.push(c);
        }
      } else {
        if (c === undefined || isSpace(c)) break;
        if (c === 34) inDouble = true;
        else if (c === 39) inSingle = true;
        else bytes.push(c);
      }
      i++;
    }
    args.push(Buffer.from(bytes));
  }
}
