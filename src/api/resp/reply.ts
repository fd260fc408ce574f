/**
 * Reply encoder for one connection. Replies are appended to a slab and handed
 * to the socket in one write per batch of commands (pipelining), so a burst
 * of 16 GETs costs one syscall. The slab is not reused after a take(): the
 * socket may still hold the previous slice, so later replies go after it and
 * a fresh slab is allocated only when this one is full.
 *
 * RESP3 types (map, null, double, boolean, verbatim, set) degrade to their
 * RESP2 forms when the connection speaks RESP2, as Redis does.
 */

const slabBytes = 64 * 1024;
const smallSlabLeftBytes = 512;

const okBytes = Buffer.from('+OK\r\n');
const nullBulk2 = Buffer.from('$-1\r\n');
const nullArray2 = Buffer.from('*-1\r\n');
const null3 = Buffer.from('_\r\n');
const crlf = Buffer.from('\r\n');

/** Writes a non-negative integer's decimal digits at `pos`; returns the position after them. */
function writeDigits(buf: Buffer, pos: number, value: number): number {
  if (value < 10) {
    buf[pos] = 48 + value;
    return pos + 1;
  }
  let digits = 0;
  for (let v = value; v > 0; v = Math.floor(v / 10)) digits++;
  let end = pos + digits;
  for (let v = value; v > 0; v = Math.floor(v / 10)) buf[--end] = 48 + (v % 10);
  return pos + digits;
}

/** Redis's replies may not contain CR or LF inside simple strings and errors. */
function oneLine(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]/g, ' ') : text;
}

export type ProtocolVersion = 2 | 3;

export class ReplyWriter {
  private slab: Buffer;
  private start = 0;
  private pos = 0;
  /** Full slab slices waiting for the next take(). */
  private done: Buffer[] = [];
  private doneBytes = 0;

  protocol: ProtocolVersion = 2;

  /** `slabSize`: bytes per slab (small for the short-lived writers of concurrent pipelined commands). */
  constructor(private readonly slabSize: number = slabBytes) {
    this.slab = Buffer.allocUnsafe(slabSize);
  }

  /** Moves everything `other` holds to the end of this writer (other is left empty and reusable). */
  appendFrom(other: ReplyWriter): void {
    if (other.done.length === 0) {
      // The common case, a short reply in one slab: copy it without intermediate objects.
      const length = other.pos - other.start;
      if (length === 0) return;
      if (length <= slabBytes) {
        this.reserve(length);
        other.slab.copy(this.slab, this.pos, other.start, other.pos);
        this.pos += length;
        other.start = other.pos;
        return;
      }
    }
    const chunks = other.take();
    if (chunks === undefined) return;
    for (const c of chunks) this.bytes(c);
  }

  /** Bytes written and not yet taken. */
  get pendingBytes(): number {
    return this.doneBytes + this.pos - this.start;
  }

  /** Everything written since the last take, or undefined when nothing was. */
  take(): Buffer[] | undefined {
    if (this.pos > this.start) {
      this.done.push(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
    }
    if (this.slab.length - this.pos < Math.min(smallSlabLeftBytes, this.slabSize / 4)) this.newSlab(this.slabSize);
    if (this.done.length === 0) return undefined;
    const out = this.done;
    this.done = [];
    this.doneBytes = 0;
    return out;
  }

  /** take() for a socket write: a lone slice (one batch in one slab, the usual case) comes back as itself, without an array. */
  takeForWrite(): Buffer | Buffer[] | undefined {
    if (this.done.length > 0) return this.take();
    if (this.pos === this.start) return undefined;
    const slice = this.slab.subarray(this.start, this.pos);
    this.start = this.pos;
    if (this.slab.length - this.pos < Math.min(smallSlabLeftBytes, this.slabSize / 4)) this.newSlab(this.slabSize);
    return slice;
  }

  private newSlab(size: number): void {
    this.slab = Buffer.allocUnsafe(size);
    this.start = 0;
    this.pos = 0;
  }

  private reserve(bytes: number): void {
    if (this.slab.length - this.pos >= bytes) return;
    if (this.pos > this.start) {
      const slice = this.slab.subarray(this.start, this.pos);
      this.done.push(slice);
      this.doneBytes += slice.length;
    }
    this.newSlab(Math.max(this.slabSize, bytes));
  }

  private ascii(text: string): void {
    this.reserve(text.length);
    this.pos += this.slab.write(text, this.pos, 'latin1');
  }

  private bytes(data: Uint8Array): void {
    if (data.length > slabBytes) {
      // Large values go to the socket as they are, without a copy.
      if (this.pos > this.start) {
        const slice = this.slab.subarray(this.start, this.pos);
        this.done.push(slice);
        this.doneBytes += slice.length;
        this.start = this.pos;
      }
      const big = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.done.push(big);
      this.doneBytes += big.length;
      return;
    }
    this.reserve(data.length);
    this.slab.set(data, this.pos);
    this.pos += data.length;
  }

  /**
   * Replaces `length` bytes at `offset` (counted from the oldest byte not
   * yet taken) with an error reply; returns how many bytes longer that made
   * the output. A rare repair (a write that failed after its +OK was
   * written), so it simply copies everything pending.
   */
  replaceWithError(offset: number, length: number, text: string): number {
    const all = Buffer.concat(this.take() ?? []);
    const line = Buffer.from(`-${oneLine(text)}\r\n`, 'utf8');
    const patched = Buffer.concat([all.subarray(0, offset), line, all.subarray(offset + length)]);
    this.done.push(patched);
    this.doneBytes += patched.length;
    return line.length - length;
  }

  ok(): void {
    this.bytes(okBytes);
  }

  simple(text: string): void {
    const line = oneLine(text);
    this.reserve(Buffer.byteLength(line) + 3);
    this.slab[this.pos++] = 43;
    this.pos += this.slab.write(line, this.pos, 'utf8');
    this.slab[this.pos++] = 13;
    this.slab[this.pos++] = 10;
  }

  /** `text` starts with the error code: "ERR syntax error", "NOAUTH …". */
  error(text: string): void {
    const line = oneLine(text);
    this.reserve(Buffer.byteLength(line) + 3);
    this.slab[this.pos++] = 45;
    this.pos += this.slab.write(line, this.pos, 'utf8');
    this.slab[this.pos++] = 13;
    this.slab[this.pos++] = 10;
  }

  integer(value: number | bigint): void {
    this.ascii(`:${value}\r\n`);
  }

  /**
   * `lent`: the value is valid only during this call (a view of the
   * engine's memory, KvApi.winnerNow), so a large one is copied too: the
   * socket may hold what it is given long after this turn (a client reading
   * slowly), while the engine writes over or recycles those bytes (an
   * overwrite in place, a block cache buffer reused for another block).
   */
  bulk(value: Uint8Array | string, lent = false): void {
    if (typeof value === 'string') {
      const length = Buffer.byteLength(value);
      this.reserve(length + 16);
      this.pos += this.slab.write(`$${length}\r\n`, this.pos, 'latin1');
      this.pos += this.slab.write(value, this.pos, 'utf8');
      this.slab[this.pos++] = 13;
      this.slab[this.pos++] = 10;
      return;
    }
    const length = value.length;
    if (length > slabBytes) {
      this.ascii(`$${length}\r\n`);
      this.bytes(lent ? Buffer.from(value) : value);
      this.bytes(crlf);
      return;
    }
    // The common small bulk, written straight into the slab: header digits, value, CRLF.
    this.reserve(length + 24);
    const slab = this.slab;
    let pos = this.pos;
    slab[pos++] = 36;
    pos = writeDigits(slab, pos, length);
    slab[pos++] = 13;
    slab[pos++] = 10;
    slab.set(value, pos);
    pos += length;
    slab[pos++] = 13;
    slab[pos++] = 10;
    this.pos = pos;
  }

  /** A missing bulk string: `$-1` (RESP2) or `_` (RESP3). */
  nullBulk(): void {
    this.bytes(this.protocol === 3 ? null3 : nullBulk2);
  }

  /** A missing array: `*-1` (RESP2) or `_` (RESP3). */
  nullArray(): void {
    this.bytes(this.protocol === 3 ? null3 : nullArray2);
  }

  array(length: number): void {
    this.ascii(`*${length}\r\n`);
  }

  /** A map of `pairs` entries; RESP2 gets a flat array of 2 × pairs. */
  map(pairs: number): void {
    this.ascii(this.protocol === 3 ? `%${pairs}\r\n` : `*${pairs * 2}\r\n`);
  }

  set(length: number): void {
    this.ascii(this.protocol === 3 ? `~${length}\r\n` : `*${length}\r\n`);
  }

  /** A double; RESP2 gets it as a bulk string in `text` (Redis's own formatting). */
  double(value: number, text: string): void {
    if (this.protocol === 3) this.ascii(`,${Number.isNaN(value) ? 'nan' : value === Infinity ? 'inf' : value === -Infinity ? '-inf' : text}\r\n`);
    else this.bulk(text);
  }

  boolean(value: boolean): void {
    if (this.protocol === 3) this.ascii(value ? '#t\r\n' : '#f\r\n');
    else this.ascii(value ? ':1\r\n' : ':0\r\n');
  }

  /** Human-readable text (INFO, CLIENT INFO): verbatim `txt` in RESP3, bulk in RESP2. */
  verbatim(text: string): void {
    if (this.protocol === 3) this.bulkWithPrefix('=', `txt:${text}`);
    else this.bulk(text);
  }

  private bulkWithPrefix(prefix: string, text: string): void {
    const length = Buffer.byteLength(text);
    this.ascii(`${prefix}${length}\r\n`);
    this.reserve(length + 2);
    this.pos += this.slab.write(text, this.pos, 'utf8');
    this.slab[this.pos++] = 13;
    this.slab[this.pos++] = 10;
  }

  /** An array of bulk strings (or nulls). */
  bulkArray(values: ReadonlyArray<Uint8Array | string | null>): void {
    this.array(values.length);
    for (const v of values) {
      if (v === null) this.nullBulk();
      else this.bulk(v);
    }
  }
}
