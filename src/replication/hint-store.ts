/**
 * Durable hints for hinted handoff: one append-only queue per destination
 * node, in segment files (docs/formats/hints.md, format version 1).
 *
 * A hint is durable when `append` resolves (its bytes are fdatasync'ed;
 * concurrent appends to one destination share a sync — group commit — and
 * one write: records wait in memory until the sync, a read or an
 * acknowledgement of their segment needs them in the file). An
 * acknowledgement is cumulative ("every hint up to seq was delivered") and
 * is appended without a sync of its own: losing one in a crash only means
 * those hints are replayed again, and replay is an idempotent merge. A
 * segment file is removed once every hint in it is acknowledged.
 *
 * Recovery reads every segment; a record whose length or CRC does not check
 * out ends the segment there (a torn tail from a crash mid-append) and the
 * file is cut back to the last good record.
 */
import { ClosedError, CorruptionError, InvalidArgumentError, OverloadedError, asBuffer, assert, crc32, fromUtf8, toHex, utf8 } from '../core/index.ts';
import type { AppendFile, FileSystem, Logger, NodeId } from '../core/index.ts';

/** Hint segment format version (docs/formats/hints.md). */
export const hintFormatVersion = 1;
const magic = utf8('RKVH');
const recordHeaderBytes = 8;
const typeHint = 1;
const typeAck = 2;
const segmentSuffix = '.hints';

/** Default cap on one destination's backlog in bytes of keys and objects. */
export const defaultMaxBacklogBytes = 64 * 1024 * 1024;
/** Default cap on one destination's backlog in hints. */
export const defaultMaxBacklogHints = 100_000;
/** A segment is closed and a new one started past this size. */
export const defaultSegmentBytes = 4 * 1024 * 1024;
/** Largest key plus object one hint may carry (the engine's value limit plus a key). */
export const maxHintBytes = 16 * 1024 * 1024 + 64 * 1024;

export interface HintStoreOptions {
  maxBacklogBytes?: number;
  maxBacklogHints?: number;
  segmentBytes?: number;
  log?: Logger;
}

/** One hint as the queue hands it back. */
export interface StoredHint {
  /** Position in the destination's queue; acknowledging it drops it and every earlier one. */
  readonly seq: number;
  readonly key: Uint8Array;
  /** The encoded object to apply at the destination. */
  readonly object: Uint8Array;
}

export interface HintBacklogStats {
  hints: number;
  bytes: number;
}

export interface HintStoreStats {
  backlog: Record<NodeId, HintBacklogStats>;
  appended: number;
  /** Appends refused because a destination's backlog was full. */
  refused: number;
  acknowledged: number;
  segmentsRemoved: number;
  /** Records dropped at recovery because their length or checksum was bad (torn tails). */
  recordsDropped: number;
}

interface HintPosition {
  seq: number;
  offset: number;
  keyBytes: number;
  objectBytes: number;
}

interface Segment {
  readonly path: string;
  readonly number: number;
  hints: HintPosition[];
  /** Appended and synced record counts, for group commit. */
  file: AppendFile | undefined;
  size: number;
  appendedMarks: number;
  /** Marks whose records were handed to the file (appendSync); a sync covers these only. */
  writtenMarks: number;
  syncedMarks: number;
  syncing: Promise<void> | undefined;
  /**
   * Records appended since the last write, in order: written together by
   * the next sync (or read, ack, close) with one appendSync, so the hints of
   * one linger window cost one write instead of one each.
   */
  unwritten: Uint8Array[];
  /** Seq of the first hint in `unwritten` (undefined: none). */
  unwrittenFromSeq: number | undefined;
  /** A write of unwritten records failed: they are lost, and so is every later mark of this segment. */
  broken: Error | undefined;
}

interface Queue {
  readonly target: NodeId;
  readonly dir: string;
  segments: Segment[];
  hints: number;
  bytes: number;
  /** Serialises appends, acknowledgements and reads of one destination. */
  chain: Promise<void>;
}

function u32(v: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function segmentName(n: number): string {
  return `${String(n).padStart(16, '0')}${segmentSuffix}`;
}

function encodeHeader(target: NodeId): Uint8Array {
  const dest = utf8(target);
  const head = Buffer.alloc(8 + dest.length);
  head.set(magic, 0);
  head[4] = hintFormatVersion;
  head[5] = 0;
  head.writeUInt16LE(dest.length, 6);
  head.set(dest, 8);
  return Buffer.concat([head, u32(crc32(head))]);
}

function encodeRecord(body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(recordHeaderBytes + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt32LE(crc32(body), 4);
  out.set(body, recordHeaderBytes);
  return out;
}

function hintBody(seq: number, key: Uint8Array, object: Uint8Array): Uint8Array {
  const body = Buffer.allocUnsafe(1 + 8 + 4 + key.length + object.length);
  body[0] = typeHint;
  body.writeBigUInt64LE(BigInt(seq), 1);
  body.writeUInt32LE(key.length, 9);
  body.set(key, 13);
  body.set(object, 13 + key.length);
  return body;
}

function ackBody(seq: number): Uint8Array {
  const body = Buffer.allocUnsafe(9);
  body[0] = typeAck;
  body.writeBigUInt64LE(BigInt(seq), 1);
  return body;
}

export class HintStore {
  private readonly queues = new Map<NodeId, Queue>();
  private nextSeq = 1;
  private readonly maxBacklogBytes: number;
  private readonly maxBacklogHints: number;
  private readonly segmentBytes: number;
  private readonly counters = { appended: 0, refused: 0, acknowledged: 0, segmentsRemoved: 0, recordsDropped: 0 };
  private closed = false;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    options: HintStoreOptions,
    private readonly log: Logger | undefined,
  ) {
    this.maxBacklogBytes = options.maxBacklogBytes ?? defaultMaxBacklogBytes;
    this.maxBacklogHints = options.maxBacklogHints ?? defaultMaxBacklogHints;
    this.segmentBytes = options.segmentBytes ?? defaultSegmentBytes;
  }

  /** Opens (creating if needed) the hint directory and recovers every destination's queue. */
  static async open(fs: FileSystem, dir: string, options: HintStoreOptions = {}): Promise<HintStore> {
    const store = new HintStore(fs, dir, options, options.log);
    await fs.mkdirp(dir);
    for (const name of await fs.list(dir)) {
      if (!/^[0-9a-f]+$/.test(name)) continue;
      await store.recover(name);
    }
    return store;
  }

  private queueDir(target: NodeId): string {
    // Hex keeps any node id a safe file name.
    return `${this.dir}/${toHex(utf8(target))}`;
  }

  private async recover(dirName: string): Promise<void> {
    const target = fromUtf8(Buffer.from(dirName, 'hex'));
    const dir = `${this.dir}/${dirName}`;
    const queue: Queue = { target, dir, segments: [], hints: 0, bytes: 0, chain: Promise.resolve() };
    let acked = 0;
    const names = (await this.fs.list(dir)).filter((n) => n.endsWith(segmentSuffix)).sort();
    for (const name of names) {
      const path = `${dir}/${name}`;
      const number = Number(name.slice(0, -segmentSuffix.length));
      const bytes = asBuffer(await this.fs.readFile(path));
      const header = encodeHeader(target);
      if (bytes.length < header.length || !asBuffer(header).equals(bytes.subarray(0, header.length))) {
        // A segment whose header never became durable holds nothing durable either.
        this.log?.warn('hint segment without a valid header removed', { path });
        await this.fs.remove(path);
        continue;
      }
      const segment: Segment = { path, number, hints: [], file: undefined, size: bytes.length, appendedMarks: 0, writtenMarks: 0, syncedMarks: 0, syncing: undefined, unwritten: [], unwrittenFromSeq: undefined, broken: undefined };
      let pos = header.length;
      while (pos < bytes.length) {
        const record = this.readRecord(bytes, pos);
        if (record === undefined) {
          this.counters.recordsDropped++;
          this.log?.warn('torn or corrupt hint record: segment cut back to its last good record', { path, offset: pos, size: bytes.length });
          await this.fs.truncate(path, pos);
          segment.size = pos;
          break;
        }
        const body = record.body;
        if (body[0] === typeHint && body.length >= 13) {
          const seq = Number(body.readBigUInt64LE(1));
          const keyBytes = body.readUInt32LE(9);
          if (13 + keyBytes <= body.length) segment.hints.push({ seq, offset: pos, keyBytes, objectBytes: body.length - 13 - keyBytes });
          this.nextSeq = Math.max(this.nextSeq, seq + 1);
        } else if (body[0] === typeAck && body.length >= 9) {
          const seq = Number(body.readBigUInt64LE(1));
          acked = Math.max(acked, seq);
          this.nextSeq = Math.max(this.nextSeq, seq + 1);
        }
        // Other record types are from a newer minor format: skipped, their CRC already checked.
        pos = record.end;
      }
      queue.segments.push(segment);
    }
    for (const s of queue.segments) s.hints = s.hints.filter((h) => h.seq > acked);
    for (const s of queue.segments) for (const h of s.hints) this.count(queue, h, +1);
    this.queues.set(target, queue);
    await this.dropReplayed(queue);
  }

  private readRecord(bytes: Buffer, pos: number): { body: Buffer; end: number } | undefined {
    if (pos + recordHeaderBytes > bytes.length) return undefined;
    const length = bytes.readUInt32LE(pos);
    if (length < 1 || length > maxHintBytes + 16) return undefined;
    const end = pos + recordHeaderBytes + length;
    if (end > bytes.length) return undefined;
    const body = bytes.subarray(pos + recordHeaderBytes, end);
    if (crc32(body) !== bytes.readUInt32LE(pos + 4)) return undefined;
    return { body, end };
  }

  private count(queue: Queue, h: HintPosition, sign: 1 | -1): void {
    queue.hints += sign;
    queue.bytes += sign * (h.keyBytes + h.objectBytes);
  }

  private queueFor(target: NodeId): Queue {
    let queue = this.queues.get(target);
    if (queue === undefined) {
      queue = { target, dir: this.queueDir(target), segments: [], hints: 0, bytes: 0, chain: Promise.resolve() };
      this.queues.set(target, queue);
    }
    return queue;
  }

  private serial<T>(queue: Queue, fn: () => Promise<T>): Promise<T> {
    const run = queue.chain.then(fn);
    queue.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private check(): void {
    if (this.closed) throw new ClosedError('The hint store is closed');
  }

  /**
   * Appends a hint durably. Throws OverloadedError when the destination's
   * backlog is at its limit (the write then cannot count this replica).
   * `linger`: when no sync is running, wait for it before starting one, so
   * the hints appended meanwhile share that fdatasync (for hints nobody
   * waits on for a reply; still durable before this resolves).
   */
  async append(target: NodeId, key: Uint8Array, object: Uint8Array, linger?: Promise<void>): Promise<void> {
    this.check();
    const size = key.length + object.length;
    if (size > maxHintBytes) throw new InvalidArgumentError(`Cannot keep a hint of ${size} bytes for ${target}: the limit is ${maxHintBytes}`);
    const queue = this.queueFor(target);
    const { segment, mark } = await this.serial(queue, async () => {
      if (queue.hints + 1 > this.maxBacklogHints || queue.bytes + size > this.maxBacklogBytes) {
        this.counters.refused++;
        throw new OverloadedError(
          `Cannot keep another hint for ${target}: its backlog holds ${queue.hints} hints and ${queue.bytes} bytes, the limits are ${this.maxBacklogHints} hints and ${this.maxBacklogBytes} bytes; it will catch up through hint replay or anti-entropy`,
        );
      }
      const seg = await this.activeSegment(queue, size);
      const seq = this.nextSeq++;
      const position: HintPosition = { seq, offset: seg.size, keyBytes: key.length, objectBytes: object.length };
      const record = encodeRecord(hintBody(seq, key, object));
      seg.unwritten.push(record);
      seg.unwrittenFromSeq ??= seq;
      seg.size += record.length;
      seg.hints.push(position);
      this.count(queue, position, +1);
      this.counters.appended++;
      return { segment: seg, mark: ++seg.appendedMarks };
    });
    await this.syncUpTo(queue, segment, mark, linger);
  }

  /**
   * Group commit: one fdatasync covers every record appended before it
   * started. Appends already queued behind this one go in first, so a burst
   * of concurrent appends costs one sync, not one each.
   */
  private async syncUpTo(queue: Queue, segment: Segment, mark: number, linger?: Promise<void>): Promise<void> {
    if (segment.syncing === undefined) await queue.chain;
    if (linger !== undefined && segment.syncing === undefined && segment.syncedMarks < mark) await linger;
    while (segment.syncedMarks < mark) {
      if (segment.syncing === undefined) {
        const file = segment.file;
        // Closed by rotation, which wrote and synced it first (unless a write failed).
        if (file === undefined) {
          if (segment.broken !== undefined && mark > segment.writtenMarks) throw segment.broken;
          return;
        }
        if (mark > segment.writtenMarks) this.writeOut(segment);
        const target = segment.writtenMarks;
        segment.syncing = file.sync().then(
          () => {
            segment.syncedMarks = Math.max(segment.syncedMarks, target);
            segment.syncing = undefined;
          },
          (error: unknown) => {
            segment.syncing = undefined;
            throw error;
          },
        );
      }
      await segment.syncing;
    }
  }

  private async activeSegment(queue: Queue, incomingBytes: number): Promise<Segment> {
    const last = queue.segments[queue.segments.length - 1];
    if (last !== undefined && last.file !== undefined && last.broken === undefined && (last.size + incomingBytes <= this.segmentBytes || last.hints.length === 0)) return last;
    if (last !== undefined && last.file !== undefined) await this.closeSegment(last);
    const number = (last?.number ?? 0) + 1;
    const path = `${queue.dir}/${segmentName(number)}`;
    if (queue.segments.length === 0) {
      await this.fs.mkdirp(queue.dir);
      await this.fs.syncDir(this.dir);
    }
    const file = await this.fs.openAppend(path, { truncate: true });
    const header = encodeHeader(queue.target);
    file.appendSync(header);
    await file.sync();
    await this.fs.syncDir(queue.dir);
    const segment: Segment = { path, number, hints: [], file, size: header.length, appendedMarks: 0, writtenMarks: 0, syncedMarks: 0, syncing: undefined, unwritten: [], unwrittenFromSeq: undefined, broken: undefined };
    queue.segments.push(segment);
    return segment;
  }

  /**
   * Hands the segment's unwritten records to the file in one write. A failed
   * write breaks the segment: the appends whose records it held (and any
   * later ones) reject, nothing else in the queue is affected, and the next
   * append starts a new segment.
   */
  private writeOut(segment: Segment): void {
    if (segment.broken !== undefined) throw segment.broken;
    const records = segment.unwritten;
    if (records.length === 0 || segment.file === undefined) return;
    const lostFromSeq = segment.unwrittenFromSeq;
    segment.unwritten = [];
    segment.unwrittenFromSeq = undefined;
    try {
      segment.file.appendSync(records.length === 1 ? (records[0] as Uint8Array) : Buffer.concat(records));
    } catch (error) {
      segment.broken = error as Error;
      if (lostFromSeq !== undefined) this.dropUnwritten(segment, lostFromSeq);
      throw error;
    }
    segment.writtenMarks = segment.appendedMarks;
  }

  /** Forgets the hints of a broken segment whose records never reached the file. */
  private dropUnwritten(segment: Segment, lostFromSeq: number): void {
    const queue = [...this.queues.values()].find((q) => q.segments.includes(segment));
    const kept: HintPosition[] = [];
    for (const h of segment.hints) {
      if (h.seq < lostFromSeq) kept.push(h);
      else if (queue !== undefined) this.count(queue, h, -1);
    }
    segment.hints = kept;
  }

  private async closeSegment(segment: Segment): Promise<void> {
    const file = segment.file;
    if (file === undefined) return;
    while (segment.syncing !== undefined) await segment.syncing.catch(() => undefined);
    try {
      this.writeOut(segment);
    } catch {
      // The failed appends were told; the records before them are synced below.
    }
    await file.sync();
    segment.syncedMarks = segment.writtenMarks;
    segment.file = undefined;
    await file.close();
  }

  /** Up to `max` of the destination's oldest hints, oldest first. */
  async peek(target: NodeId, max: number): Promise<StoredHint[]> {
    this.check();
    const queue = this.queues.get(target);
    if (queue === undefined || queue.hints === 0 || max < 1) return [];
    return this.serial(queue, async () => {
      const out: StoredHint[] = [];
      for (const segment of queue.segments) {
        if (out.length >= max) break;
        if (segment.hints.length === 0) continue;
        // Hints still in memory are read from the file like the others.
        if (segment.broken === undefined) this.writeOut(segment);
        const reader = await this.fs.openRead(segment.path);
        try {
          for (const h of segment.hints) {
            if (out.length >= max) break;
            const bytes = asBuffer(reader.readSync(h.offset, recordHeaderBytes + 13 + h.keyBytes + h.objectBytes));
            const record = this.readRecord(bytes, 0);
            if (record === undefined) throw new CorruptionError(`Hint ${h.seq} for ${target} fails its checksum`, { file: segment.path, offset: h.offset });
            const key = Uint8Array.prototype.slice.call(record.body, 13, 13 + h.keyBytes);
            const object = Uint8Array.prototype.slice.call(record.body, 13 + h.keyBytes);
            out.push({ seq: h.seq, key, object });
          }
        } finally {
          await reader.close();
        }
      }
      return out;
    });
  }

  /** Drops every hint of `target` up to and including `seq`; removes segments left empty. */
  async acknowledge(target: NodeId, seq: number): Promise<void> {
    this.check();
    const queue = this.queues.get(target);
    if (queue === undefined) return;
    await this.serial(queue, async () => {
      let dropped = 0;
      for (const segment of queue.segments) {
        const kept: HintPosition[] = [];
        for (const h of segment.hints) {
          if (h.seq <= seq) {
            this.count(queue, h, -1);
            dropped++;
          } else {
            kept.push(h);
          }
        }
        segment.hints = kept;
      }
      if (dropped === 0) return;
      this.counters.acknowledged += dropped;
      const active = queue.segments[queue.segments.length - 1];
      if (active?.file !== undefined && active.broken === undefined && queue.hints > 0) {
        // Not synced on its own: if it is lost, the hints are replayed again, harmlessly.
        // Written after the hints still in memory, so every record sits at the offset it was given.
        const record = encodeRecord(ackBody(seq));
        active.unwritten.push(record);
        active.size += record.length;
        this.writeOut(active);
      }
      await this.dropReplayed(queue);
    });
  }

  /** Removes every segment whose hints were all delivered (the active one too when the queue is empty). */
  private async dropReplayed(queue: Queue): Promise<void> {
    const keep: Segment[] = [];
    let removed = false;
    for (const segment of queue.segments) {
      if (segment.hints.length > 0) {
        keep.push(segment);
        continue;
      }
      const isActive = segment === queue.segments[queue.segments.length - 1] && queue.hints > 0;
      if (isActive) {
        keep.push(segment);
        continue;
      }
      await this.closeSegment(segment);
      await this.fs.remove(segment.path);
      this.counters.segmentsRemoved++;
      removed = true;
    }
    queue.segments = keep;
    if (removed) await this.fs.syncDir(queue.dir);
    if (queue.segments.length === 0) assert(queue.hints === 0 && queue.bytes === 0, 'an empty hint queue has no backlog');
  }

  /** Destinations that have hints waiting. */
  destinations(): NodeId[] {
    return [...this.queues.values()].filter((q) => q.hints > 0).map((q) => q.target).sort();
  }

  backlog(target: NodeId): HintBacklogStats {
    const queue = this.queues.get(target);
    return { hints: queue?.hints ?? 0, bytes: queue?.bytes ?? 0 };
  }

  stats(): HintStoreStats {
    const backlog: Record<NodeId, HintBacklogStats> = {};
    for (const target of this.destinations()) backlog[target] = this.backlog(target);
    return { backlog, ...this.counters };
  }

  /** Drops every hint of every destination. */
  async clear(): Promise<void> {
    this.check();
    for (const queue of this.queues.values()) {
      await this.serial(queue, async () => {
        for (const segment of queue.segments) {
          await this.closeSegment(segment);
          await this.fs.remove(segment.path);
        }
        queue.segments = [];
        queue.hints = 0;
        queue.bytes = 0;
        await this.fs.syncDir(queue.dir);
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const queue of this.queues.values()) {
      await this.serial(queue, async () => {
        for (const segment of queue.segments) await this.closeSegment(segment);
      });
    }
    this.closed = true;
  }
}
