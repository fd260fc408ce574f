/**
 * The versioned object: what one replica stores for one key.
 *
 * An object is a causal context (a vector clock of every write this replica
 * has seen for the key) plus the versions still standing (siblings), each
 * identified by its dot — the write that created it. This is the "dotted
 * version vector" model (Preguiça et al., 2012; Riak 2.0's fix for sibling
 * explosion): a version is superseded exactly when another object's context
 * has seen its dot but no longer holds it. The merge
 *
 *   (s1, c1) ⊔ (s2, c2) = (s1 ∩ s2) ∪ (s1 \ c2) ∪ (s2 \ c1),  c1 ⊔ c2
 *
 * is commutative, associative and idempotent, so replicas converge whatever
 * order replication, read repair, hints and anti-entropy deliver objects in.
 * docs/consistency.md has the rules, docs/formats/object.md the bytes.
 */
import { CorruptionError, compareBytes } from '../core/index.ts';
import type { NodeId } from '../core/index.ts';
import { counterValue, emptyCounter, mergeCounters } from './counter.ts';
import type { CounterLane, CounterState } from './counter.ts';
import { contextCovers, coversDot, dominates, emptyClock, mergeClocks, withDots } from './vclock.ts';
import type { ClockEntry, Dot, VClock, WriteContext } from './vclock.ts';
import type { Winner } from './api.ts';

export type VersionKind = 'value' | 'counter' | 'tombstone';

export interface Version {
  /** The write that created this version; `dot.node` is the coordinating replica (the writer). */
  readonly dot: Dot;
  readonly kind: VersionKind;
  /** The bytes of a 'value' version; empty for the other kinds. */
  readonly value: Uint8Array;
  /** The state of a 'counter' version; empty for the other kinds. */
  readonly counter: CounterState;
  /** Absolute expiry (epoch ms) or null. */
  readonly expiresAtMs: number | null;
  /** Hybrid-logical-clock time of the write (hlc.ts). */
  readonly timestampMs: number;
  /** When a tombstone was written (epoch ms); null for other kinds. */
  readonly deletedAtMs: number | null;
}

export interface StoredObject {
  /** Every write seen for the key; covers the dot of each version. */
  readonly context: VClock;
  /** Sorted by (dot.node, dot.counter); no two share a dot. */
  readonly versions: readonly Version[];
}

export const emptyObject: StoredObject = Object.freeze({ context: emptyClock, versions: Object.freeze([]) as readonly Version[] });

function cmpDot(a: Dot, b: Dot): number {
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.counter - b.counter;
}

function sameDot(a: Dot, b: Dot): boolean {
  return a.node === b.node && a.counter === b.counter;
}

/** True while a version counts as present: not expired at `nowWallMs`. */
export function isLive(version: Version, nowWallMs: number): boolean {
  return version.expiresAtMs === null || version.expiresAtMs > nowWallMs;
}

/**
 * When one dot carries two different versions (only after a node lost its
 * disk and reused an id), both replicas must still pick the same one: the
 * larger encoding wins, a total and order-independent choice.
 */
function pickSameDot(a: Version, b: Version): Version {
  // The common case is one version decoded twice (stored and incoming): equal fields encode alike, and a tie keeps `a`.
  if (a === b || sameVersion(a, b)) return a;
  const c = compareBytes(encodeVersionForTie(a), encodeVersionForTie(b));
  return c >= 0 ? a : b;
}

/** The merge above; returns `a` itself when `b` adds nothing (cheap idempotence check). */
export function mergeObjects(a: StoredObject, b: StoredObject): StoredObject {
  // A replica mostly merges a newer object into an older one, or one it has: one side is the result.
  if (mergeKeeps(a, b)) return a;
  if (mergeKeeps(b, a)) return b;
  const out: Version[] = [];
  let i = 0;
  let j = 0;
  const av = a.versions;
  const bv = b.versions;
  while (i < av.length || j < bv.length) {
    const x = av[i];
    const y = bv[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : cmpDot(x.dot, y.dot);
    if (c === 0) {
      out.push(pickSameDot(x as Version, y as Version));
      i++;
      j++;
    } else if (c < 0) {
      const v = x as Version;
      if (!coversDot(b.context, v.dot)) out.push(v);
      i++;
    } else {
      const v = y as Version;
      if (!coversDot(a.context, v.dot)) out.push(v);
      j++;
    }
  }
  return { context: mergeClocks(a.context, b.context), versions: out };
}

/** True when merging `other` into `keep` gives `keep`'s context and versions (field for field), checked without building anything. */
function mergeKeeps(keep: StoredObject, other: StoredObject): boolean {
  if (!dominates(keep.context, other.context)) return false;
  const kv = keep.versions;
  const ov = other.versions;
  let i = 0;
  let j = 0;
  while (i < kv.length || j < ov.length) {
    const x = kv[i];
    const y = ov[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : cmpDot(x.dot, y.dot);
    if (c === 0) {
      if (!sameVersion(x as Version, y as Version)) return false;
      i++;
      j++;
    } else if (c < 0) {
      // Kept only if `other` has not superseded it.
      if (coversDot(other.context, (x as Version).dot)) return false;
      i++;
    } else {
      // Would be added unless `keep` has superseded it.
      if (!coversDot(keep.context, (y as Version).dot)) return false;
      j++;
    }
  }
  return true;
}

/** Versions the write context `seen` has not superseded. */
export function survivorsOf(object: StoredObject, seen: WriteContext): Version[] {
  return object.versions.filter((v) => !contextCovers(seen, v.dot));
}

/** True when `versions` are strictly ordered by dot and `context` covers every one (what makeObject would leave as it is). */
function isNormalized(context: VClock, versions: readonly Version[]): boolean {
  let prev: Version | undefined;
  for (const v of versions) {
    if (prev !== undefined && cmpDot(prev.dot, v.dot) >= 0) return false;
    if (!coversDot(context, v.dot)) return false;
    prev = v;
  }
  return true;
}

/** Builds an object, normalising order and making the context cover every version. */
export function makeObject(context: VClock, versions: readonly Version[]): StoredObject {
  // Decoded and freshly written objects are normalized already: no copy, sort or merge.
  if (isNormalized(context, versions)) return { context, versions };
  const sorted = [...versions].sort((x, y) => cmpDot(x.dot, y.dot));
  const unique: Version[] = [];
  for (const v of sorted) {
    const last = unique[unique.length - 1];
    if (last !== undefined && sameDot(last.dot, v.dot)) unique[unique.length - 1] = pickSameDot(last, v);
    else unique.push(v);
  }
  let ctx = context;
  for (const v of unique) {
    if (!coversDot(ctx, v.dot)) ctx = mergeClocks(ctx, [{ node: v.dot.node, counter: v.dot.counter, lastWallMs: Math.floor(v.timestampMs) }]);
  }
  return { context: ctx, versions: unique };
}

/** The object itself when normalized (makeObject would only copy it), else makeObject's normalization of it. */
export function normalizeObject(object: StoredObject): StoredObject {
  return isNormalized(object.context, object.versions) ? object : makeObject(object.context, object.versions);
}

/** True when `have` already holds everything `want` carries (merging `want` into it would change nothing). */
export function objectCovers(have: StoredObject | undefined, want: StoredObject): boolean {
  if (have === undefined) return want.versions.length === 0;
  return sameObject(mergeObjects(have, normalizeObject(want)), have);
}

export function objectsEqual(a: StoredObject, b: StoredObject): boolean {
  return a === b || compareBytes(encodeObject(a), encodeObject(b)) === 0;
}

/**
 * Field by field what objectsEqual decides by encoding both, without the two
 * encodes: read repair asks it after every read, and a replica after every
 * merge it applies. True implies equal encodings. False for objects that
 * encode alike is possible only when one is not normalized (makeObject), and
 * costs the caller redundant work (a repair, a rewrite of the same bytes),
 * never a lost version.
 */
export function sameObject(a: StoredObject, b: StoredObject): boolean {
  if (a === b) return true;
  if (a.context.length !== b.context.length || a.versions.length !== b.versions.length) return false;
  for (let i = 0; i < a.context.length; i++) {
    const x = a.context[i] as StoredObject['context'][number];
    const y = b.context[i] as StoredObject['context'][number];
    if (x.node !== y.node || x.counter !== y.counter || x.lastWallMs !== y.lastWallMs) return false;
  }
  for (let i = 0; i < a.versions.length; i++) {
    if (!sameVersion(a.versions[i] as Version, b.versions[i] as Version)) return false;
  }
  return true;
}

/** Field by field equality of two versions (true implies equal encodings). */
function sameVersion(x: Version, y: Version): boolean {
  if (x === y) return true;
  if (x.dot.node !== y.dot.node || x.dot.counter !== y.dot.counter || x.kind !== y.kind) return false;
  // Object.is: 0 and -0 encode differently.
  if (!Object.is(x.expiresAtMs, y.expiresAtMs) || !Object.is(x.timestampMs, y.timestampMs) || !Object.is(x.deletedAtMs, y.deletedAtMs)) return false;
  if (x.value.length !== y.value.length || Buffer.compare(x.value, y.value) !== 0) return false;
  if (x.counter.length !== y.counter.length) return false;
  for (let j = 0; j < x.counter.length; j++) {
    const p = x.counter[j] as Version['counter'][number];
    const q = y.counter[j] as Version['counter'][number];
    if (p.node !== q.node || p.epoch !== q.epoch || p.p !== q.p || p.n !== q.n) return false;
  }
  return true;
}

/** The counter the live counter versions add up to (lane-wise maximum of them all). */
export function mergedCounter(versions: readonly Version[]): CounterState {
  let state: CounterState = [];
  for (const v of versions) if (v.kind === 'counter') state = mergeCounters(state, v.counter);
  return state;
}

export function mergedCounterValue(versions: readonly Version[]): bigint {
  return counterValue(mergedCounter(versions));
}

/**
 * The instant after which every version is dead (each one a tombstone or
 * expiring), or null when some version lives forever. Stored as engine
 * metadata so a compaction filter can drop dead objects after the grace period.
 */
export function deadAfterMs(object: StoredObject): number | null {
  let latest = -Infinity;
  for (const v of object.versions) {
    const end = v.kind === 'tombstone' ? (v.deletedAtMs ?? v.timestampMs) : v.expiresAtMs;
    if (end === null) return null;
    if (end > latest) latest = end;
  }
  return latest === -Infinity ? null : latest;
}

// ---------------------------------------------------------------- bytes

/** Format version of an encoded object (docs/formats/object.md). */
export const objectFormatVersion = 1;
/** Format version of an encoded causal context handed to clients. */
export const contextFormatVersion = 1;
/** Format version of the engine metadata bytes. */
export const metaFormatVersion = 1;

const kindCodes: Record<VersionKind, number> = { value: 1, counter: 2, tombstone: 3 };
const kindsByCode: Array<VersionKind | undefined> = [undefined, 'value', 'counter', 'tombstone'];
const flagExpires = 1;
const flagDeleted = 2;

/** A growable buffer; varints are LEB128 over safe integers (≤ 2^53). */
class ByteWriter {
  buf: Buffer;
  pos = 0;

  constructor(initial = 128) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    this.ensure(8);
    this.pos = putVarint(this.buf, this.pos, v);
  }

  bigVarint(v: bigint): void {
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  text(s: string): void {
    // Node ids are short ASCII: copied char by char, without the UTF-8 encoder's call overhead.
    const length = s.length;
    if (length < 0x80) {
      this.ensure(length + 1);
      const buf = this.buf;
      const start = this.pos;
      let ascii = true;
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        buf[start + 1 + i] = c;
      }
      if (ascii) {
        buf[start] = length;
        this.pos = start + 1 + length;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }

  finish(): Uint8Array {
    // Sized exactly (encodeObject): the buffer itself, no second view.
    return this.pos === this.buf.length ? this.buf : this.buf.subarray(0, this.pos);
  }
}

class ByteReader {
  private buf: Buffer;
  pos = 0;

  constructor(
    bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.buf = asBuffer(bytes);
  }

  /** Starts over on `bytes`: one reader serves every object decode (decoding never re-enters itself). */
  reset(bytes: Uint8Array): this {
    this.buf = asBuffer(bytes);
    this.pos = 0;
    return this;
  }

  fail(reason: string): never {
    throw new CorruptionError(`Cannot decode ${this.what}: ${reason} at byte ${this.pos} of ${this.buf.length}`, { offset: this.pos });
  }

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('unexpected end');
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    const buf = this.buf;
    const first = buf[this.pos];
    if (first !== undefined && first < 0x80) {
      this.pos++;
      return first;
    }
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) this.fail('integer too large');
        return result;
      }
      scale *= 0x80;
    }
    return this.fail('varint longer than 8 bytes');
  }

  bigVarint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
    return this.fail('varint longer than 10 bytes');
  }

  f64(): number {
    if (this.pos + 8 > this.buf.length) this.fail('unexpected end');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view into the input, for a caller that uses the object at once and keeps nothing. */
  bytesView(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) this.fail(`length ${n} past the end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`length ${n} past the end`);
    this.pos += n;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) this.fail(`length ${n} past the end`);
    // A copy, so a stored object never pins the engine's larger buffer.
    // ArrayBuffer.slice copies without creating an intermediate Buffer view (the costly part).
    const buf = this.buf;
    const out = new Uint8Array(buf.buffer.slice(buf.byteOffset + this.pos, buf.byteOffset + this.pos + n));
    this.pos += n;
    return out;
  }

  text(): string {
    const n = this.varint();
    const start = this.pos;
    if (start + n > this.buf.length) this.fail(`length ${n} past the end`);
    this.pos += n;
    return textAt(this.buf, start, n);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  // Engine values and socket arguments are Buffers already: no second view per decode.
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The UTF-8 text of `n` bytes at `start`. Node ids are short ASCII and the
 * same few recur in every object: the last ones decoded are compared in
 * place and reused (no string built).
 */
function textAt(buf: Buffer, start: number, n: number): string {
  if (n <= maxInternedTextBytes) {
    for (let k = 0; k < internedTexts.length; k++) {
      const known = internedTexts[k] as string;
      if (known.length !== n) continue;
      let same = true;
      for (let i = 0; i < n; i++) {
        if (known.charCodeAt(i) !== buf[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return known;
    }
    let s = '';
    for (let i = start; i < start + n; i++) {
      const c = buf[i] as number;
      if (c >= 0x80) return buf.toString('utf8', start, start + n);
      s += String.fromCharCode(c);
    }
    internedTexts[internedNext] = s;
    internedNext = (internedNext + 1) % maxInternedTexts;
    return s;
  }
  return buf.toString('utf8', start, start + n);
}

/** Short ASCII texts (node ids) ByteReader.text hands out again instead of rebuilding. */
const maxInternedTexts = 8;
const maxInternedTextBytes = 32;
const internedTexts: string[] = [];
let internedNext = 0;

/** Node ids appear many times in one object; a table sends each once. */
function nodeTable(object: StoredObject): NodeId[] {
  // A handful of names: linear scans instead of a Set. The context is sorted
  // and names the writers of the versions, so the table is usually in order
  // already and needs no sort.
  if (object.context.length + object.versions.length > maxScannedNames) return nodeTableBySet(object);
  const names = scratchNames;
  names.length = 0;
  for (const e of object.context) addName(names, e.node);
  for (const v of object.versions) {
    addName(names, v.dot.node);
    for (const lane of v.counter) addName(names, lane.node);
  }
  for (let i = 1; i < names.length; i++) {
    if ((names[i - 1] as NodeId) > (names[i] as NodeId)) {
      names.sort();
      break;
    }
  }
  return names;
}

/** Past this many clock entries and versions nodeTable dedupes with a Set (its scans grow quadratically). */
const maxScannedNames = 16;

function nodeTableBySet(object: StoredObject): NodeId[] {
  const names = new Set<NodeId>();
  for (const e of object.context) names.add(e.node);
  for (const v of object.versions) {
    names.add(v.dot.node);
    for (const lane of v.counter) names.add(lane.node);
  }
  return [...names].sort();
}

/** nodeTable's result, reused (encoding never re-enters itself and keeps nothing of it). */
const scratchNames: NodeId[] = [];

function addName(names: NodeId[], name: NodeId): void {
  for (let i = names.length - 1; i >= 0; i--) if (names[i] === name) return;
  names.push(name);
}

function writeClock(w: ByteWriter, clock: VClock, index: ReadonlyMap<NodeId, number>): void {
  w.varint(clock.length);
  for (const e of clock) {
    w.varint(index.get(e.node) as number);
    w.varint(e.counter);
    w.varint(Math.max(0, Math.floor(e.lastWallMs)));
  }
}

function writeVersion(w: ByteWriter, v: Version, index: ReadonlyMap<NodeId, number>): void {
  w.u8(kindCodes[v.kind]);
  w.u8((v.expiresAtMs !== null ? flagExpires : 0) | (v.deletedAtMs !== null ? flagDeleted : 0));
  w.varint(index.get(v.dot.node) as number);
  w.varint(v.dot.counter);
  w.f64(v.timestampMs);
  if (v.expiresAtMs !== null) w.f64(v.expiresAtMs);
  if (v.deletedAtMs !== null) w.f64(v.deletedAtMs);
  if (v.kind === 'value') w.bytes(v.value);
  if (v.kind === 'counter') {
    w.varint(v.counter.length);
    for (const lane of v.counter) {
      w.varint(index.get(lane.node) as number);
      w.varint(lane.epoch);
      w.bigVarint(lane.p);
      w.bigVarint(lane.n);
    }
  }
}

const emptyBytes = new Uint8Array(0);

/** encodeObject's node index, reused (encoding never re-enters itself). */
const scratchIndex = new Map<NodeId, number>();

/** The node table when one node wrote everything and is all the context names (a key written on one node): no set and no sort. */
function soleNode(object: StoredObject): NodeId | undefined {
  const context = object.context;
  if (context.length !== 1) return undefined;
  const node = (context[0] as ClockEntry).node;
  for (const v of object.versions) {
    if (v.dot.node !== node) return undefined;
    for (const lane of v.counter) if (lane.node !== node) return undefined;
  }
  return node;
}

/** The node table of `object` in scratchNames and its index in scratchIndex. */
function indexNodes(object: StoredObject): NodeId[] {
  const sole = soleNode(object);
  let nodes: NodeId[];
  if (sole === undefined) nodes = nodeTable(object);
  else {
    nodes = scratchNames;
    nodes.length = 0;
    nodes.push(sole);
  }
  const index = scratchIndex;
  index.clear();
  for (let i = 0; i < nodes.length; i++) index.set(nodes[i] as NodeId, i);
  return nodes;
}

/** The length of `encodeObject(object)`, computed without encoding. */
export function encodedObjectBytes(object: StoredObject): number {
  return encodedBytes(object, indexNodes(object), scratchIndex);
}

export function encodeObject(object: StoredObject): Uint8Array {
  const nodes = indexNodes(object);
  const index = scratchIndex;
  const w = new ByteWriter(encodedBytes(object, nodes, index));
  w.u8(objectFormatVersion);
  w.varint(nodes.length);
  for (const n of nodes) w.text(n);
  writeClock(w, object.context, index);
  w.varint(object.versions.length);
  for (const v of object.versions) writeVersion(w, v, index);
  return w.finish();
}

/** The exact length encodeObject writes (a larger or smaller guess would only cost a copy or a second view). */
function encodedBytes(object: StoredObject, nodes: readonly NodeId[], index: ReadonlyMap<NodeId, number>): number {
  let n = 1 + varintBytes(nodes.length);
  for (const name of nodes) n += textBytes(name);
  const context = object.context;
  n += varintBytes(context.length);
  for (const e of context) n += varintBytes(index.get(e.node) as number) + varintBytes(e.counter) + varintBytes(Math.max(0, Math.floor(e.lastWallMs)));
  n += varintBytes(object.versions.length);
  for (const v of object.versions) {
    n += 2 + varintBytes(index.get(v.dot.node) as number) + varintBytes(v.dot.counter) + 8;
    if (v.expiresAtMs !== null) n += 8;
    if (v.deletedAtMs !== null) n += 8;
    if (v.kind === 'value') n += varintBytes(v.value.length) + v.value.length;
    if (v.kind === 'counter') {
      n += varintBytes(v.counter.length);
      for (const lane of v.counter) n += varintBytes(index.get(lane.node) as number) + varintBytes(lane.epoch) + bigVarintBytes(lane.p) + bigVarintBytes(lane.n);
    }
  }
  return n;
}

/** ByteWriter.text's length for `s`. */
function textBytes(s: string): number {
  const length = s.length;
  if (length < 0x80) {
    let ascii = true;
    for (let i = 0; i < length; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return 1 + length;
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  return varintBytes(bytes) + bytes;
}

function bigVarintBytes(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function encodeVersionForTie(v: Version): Uint8Array {
  const index = new Map<NodeId, number>();
  const names = [...new Set([v.dot.node, ...v.counter.map((l) => l.node)])].sort();
  names.forEach((n, i) => index.set(n, i));
  const w = new ByteWriter();
  for (const n of names) w.text(n);
  writeVersion(w, v, index);
  return w.finish();
}

function readNode(r: ByteReader, nodes: readonly NodeId[]): NodeId {
  const i = r.varint();
  const node = nodes[i];
  if (node === undefined) r.fail(`node index ${i} outside a table of ${nodes.length}`);
  return node;
}

function readClock(r: ByteReader, nodes: readonly NodeId[]): VClock {
  const n = r.varint();
  if (n > nodes.length) r.fail(`clock of ${n} entries with ${nodes.length} nodes`);
  // Exact size: a pushed-to empty array grows to 17 slots at its first push.
  const out = new Array<ClockEntry>(n);
  let prev: NodeId | undefined;
  for (let i = 0; i < n; i++) {
    const node = readNode(r, nodes);
    if (prev !== undefined && prev >= node) r.fail('clock entries out of order');
    const counter = r.varint();
    if (counter < 1) r.fail('clock counter 0');
    out[i] = { node, counter, lastWallMs: r.varint() };
    prev = node;
  }
  return out;
}

function readFinite(r: ByteReader, what: string): number {
  const v = r.f64();
  if (!Number.isFinite(v)) r.fail(`${what} is not a finite number`);
  return v;
}

function readVersion(r: ByteReader, nodes: readonly NodeId[], viewValues = false): Version {
  const kind = kindsByCode[r.u8()];
  if (kind === undefined) r.fail('unknown version kind');
  const flags = r.u8();
  if ((flags & ~(flagExpires | flagDeleted)) !== 0) r.fail(`unknown flags ${flags}`);
  const node = readNode(r, nodes);
  const counter = r.varint();
  if (counter < 1) r.fail('dot counter 0');
  const timestampMs = readFinite(r, 'timestamp');
  const expiresAtMs = flags & flagExpires ? readFinite(r, 'expiry') : null;
  const deletedAtMs = flags & flagDeleted ? readFinite(r, 'deletion time') : null;
  let value: Uint8Array = emptyBytes;
  let state: CounterState = emptyCounter;
  if (kind === 'value') value = viewValues ? r.bytesView() : r.bytes();
  if (kind === 'counter') {
    const lanes = r.varint();
    if (lanes > r.remaining()) r.fail(`${lanes} counter lanes cannot fit`);
    const out: CounterLane[] = [];
    for (let i = 0; i < lanes; i++) {
      const lane: CounterLane = { node: readNode(r, nodes), epoch: r.varint(), p: r.bigVarint(), n: r.bigVarint() };
      const prev = out[out.length - 1];
      if (prev !== undefined && (prev.node > lane.node || (prev.node === lane.node && prev.epoch >= lane.epoch))) r.fail('counter lanes out of order');
      out.push(lane);
    }
    state = out;
  }
  return { dot: { node, counter }, kind, value, counter: state, expiresAtMs, timestampMs, deletedAtMs };
}

/** What readHead read; one, reused (decoding never re-enters itself and keeps neither the reader nor the node table). */
interface Head {
  readonly r: ByteReader;
  readonly nodes: NodeId[];
  context: VClock;
  versionCount: number;
}

const head: Head = { r: new ByteReader(emptyBytes, 'a stored object'), nodes: [], context: emptyClock, versionCount: 0 };

/** An object's head (format version, node table, context, version count), leaving the reader at its first version. */
function readHead(bytes: Uint8Array): Head {
  const r = head.r.reset(bytes);
  const version = r.u8();
  if (version !== objectFormatVersion) r.fail(`unknown format version ${version} (this build reads ${objectFormatVersion})`);
  const count = r.varint();
  if (count > bytes.length) r.fail(`node table of ${count} entries cannot fit`);
  const nodes = head.nodes;
  nodes.length = 0;
  for (let i = 0; i < count; i++) nodes.push(r.text());
  head.context = readClock(r, nodes);
  const versionCount = r.varint();
  if (versionCount > bytes.length) r.fail(`${versionCount} versions cannot fit`);
  head.versionCount = versionCount;
  return head;
}

/**
 * Decodes an object; any malformed input throws CorruptionError. Values are
 * copies unless `viewValues`: then they are views of `bytes`, for a caller
 * that uses the object at once and keeps nothing of it.
 */
export function decodeObject(bytes: Uint8Array, viewValues = false): StoredObject {
  const { r, nodes, context, versionCount } = readHead(bytes);
  // Exact size (versionCount is at most the byte count, checked): no 17-slot backing store for one version.
  const versions = new Array<Version>(versionCount);
  let prev: Version | undefined;
  for (let i = 0; i < versionCount; i++) {
    const v = readVersion(r, nodes, viewValues);
    if (prev !== undefined && cmpDot(prev.dot, v.dot) >= 0) r.fail('versions out of order');
    if (!coversDot(context, v.dot)) r.fail('a version outside the object context');
    versions[i] = v;
    prev = v;
  }
  if (!r.done) r.fail('trailing bytes');
  return { context, versions };
}

/**
 * The object with every value that is a view of a buffer larger than itself
 * by more than `slackBytes` copied, so an object kept for long (a cache) does
 * not pin a socket chunk, a pool slab or an engine buffer. The object itself
 * when nothing needs copying.
 */
export function ownedObject(object: StoredObject, slackBytes: number): StoredObject {
  if (!object.versions.some((v) => v.value.buffer.byteLength > v.value.length + slackBytes)) return object;
  return {
    context: object.context,
    versions: object.versions.map((v) => (v.value.buffer.byteLength > v.value.length + slackBytes ? { ...v, value: Uint8Array.prototype.slice.call(v.value) } : v)),
  };
}

/**
 * What a write superseding a whole stored object needs of it: its context
 * and its newest version's timestamp (so the new version is stamped later),
 * read without building the versions. Malformed bytes throw CorruptionError.
 */
export function decodeSupersededBase(bytes: Uint8Array): { context: VClock; newestTimestampMs: number } {
  const { r, nodes, context, versionCount } = readHead(bytes);
  let newestTimestampMs = -Infinity;
  for (let i = 0; i < versionCount; i++) {
    const kind = kindsByCode[r.u8()];
    if (kind === undefined) r.fail('unknown version kind');
    const flags = r.u8();
    if ((flags & ~(flagExpires | flagDeleted)) !== 0) r.fail(`unknown flags ${flags}`);
    readNode(r, nodes);
    r.varint();
    const timestampMs = readFinite(r, 'timestamp');
    if (timestampMs > newestTimestampMs) newestTimestampMs = timestampMs;
    if (flags & flagExpires) r.skip(8);
    if (flags & flagDeleted) r.skip(8);
    if (kind === 'value') r.skip(r.varint());
    if (kind === 'counter') {
      const lanes = r.varint();
      if (lanes > r.remaining()) r.fail(`${lanes} counter lanes cannot fit`);
      for (let j = 0; j < lanes; j++) {
        readNode(r, nodes);
        r.varint();
        r.bigVarint();
        r.bigVarint();
      }
    }
  }
  if (!r.done) r.fail('trailing bytes');
  return { context, newestTimestampMs };
}

/** Where encodedHasExpired copies an f64 to read it without a view per call. */
const scratch8 = Buffer.alloc(8);

/**
 * True when the encoded object holds a version expired at `nowWallMs`, read
 * without decoding (no allocation): a replica answering with the bytes as
 * stored needs to know only this. Malformed bytes answer true, so the caller
 * decodes them and reports the corruption.
 */
export function encodedHasExpired(bytes: Uint8Array, nowWallMs: number): boolean {
  const n = bytes.length;
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10 && pos < n; i++) {
      const b = bytes[pos++] as number;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 0x80;
    }
    pos = n + 1;
    return 0;
  };
  if (n === 0 || bytes[0] !== objectFormatVersion) return true;
  pos = 1;
  const nodes = varint();
  for (let i = 0; i < nodes && pos <= n; i++) {
    const length = varint();
    pos += length;
  }
  const clockEntries = varint();
  for (let i = 0; i < clockEntries * 3 && pos <= n; i++) varint();
  const versions = varint();
  for (let i = 0; i < versions; i++) {
    if (pos + 2 > n) return true;
    const kind = bytes[pos] as number;
    const flags = bytes[pos + 1] as number;
    pos += 2;
    varint();
    varint();
    pos += 8;
    if ((flags & flagExpires) !== 0) {
      if (pos + 8 > n) return true;
      for (let j = 0; j < 8; j++) scratch8[j] = bytes[pos + j] as number;
      const expiresAtMs = scratch8.readDoubleLE(0);
      if (!(expiresAtMs > nowWallMs)) return true;
      pos += 8;
    }
    if ((flags & flagDeleted) !== 0) pos += 8;
    if (kind === kindCodes.value) {
      const length = varint();
      pos += length;
    } else if (kind === kindCodes.counter) {
      const lanes = varint();
      for (let j = 0; j < lanes * 4 && pos <= n; j++) varint();
    }
    if (pos > n) return true;
  }
  return pos !== n;
}

// ---------------------------------------------------------------- the winner

/** resolveWinner's order: later timestamp, then the larger writer id. */
function newer(a: Version, b: Version): boolean {
  return a.timestampMs > b.timestampMs || (a.timestampMs === b.timestampMs && a.dot.node > b.dot.node);
}

/**
 * `resolveWinner(toGetResult(object, now))` without building the result:
 * the newest live value or tombstone by (timestamp, writer), against the
 * newest live counter carrying the merged count of all live counters;
 * undefined when nothing live or the winner is a tombstone.
 */
export function winnerOf(object: StoredObject | undefined, nowWallMs: number): Winner | undefined {
  if (object === undefined) return undefined;
  let best: Version | undefined;
  let newestCounter: Version | undefined;
  let counters = 0;
  let anyLiveData = false;
  for (const v of object.versions) {
    if (!isLive(v, nowWallMs)) continue;
    if (v.kind === 'counter') {
      counters++;
      anyLiveData = true;
      if (newestCounter === undefined || newer(v, newestCounter)) newestCounter = v;
      continue;
    }
    if (v.kind === 'value') anyLiveData = true;
    if (best === undefined || newer(v, best)) best = v;
  }
  if (!anyLiveData) return undefined;
  // The counter sibling comes last in toGetResult: it wins only when strictly newer.
  if (newestCounter !== undefined && (best === undefined || newer(newestCounter, best))) {
    const count = counterValue(counters === 1 ? newestCounter.counter : mergedCounter(object.versions.filter((v) => v.kind === 'counter' && isLive(v, nowWallMs))));
    return { kind: 'counter', count, expiresAtMs: newestCounter.expiresAtMs, timestampMs: newestCounter.timestampMs, writer: newestCounter.dot.node };
  }
  if (best === undefined || best.kind !== 'value') return undefined;
  return { kind: 'value', value: best.value, expiresAtMs: best.expiresAtMs, timestampMs: best.timestampMs, writer: best.dot.node };
}

/** What peekWinner answers when only a decode can tell (several versions, a counter, anything unexpected). */
export const mustDecode: unique symbol = Symbol('ringkv.mustDecode');
export type MustDecode = typeof mustDecode;

/** Node tables peekWinner reads in place; larger ones are decoded. */
const maxPeekNodes = 8;
/** Where peekWinner notes the node table's text offsets and the clock's counters (one peek at a time). */
const peekTextStart = new Int32Array(maxPeekNodes);
const peekTextLength = new Int32Array(maxPeekNodes);
const peekClockCounter = new Float64Array(maxPeekNodes);
/** peekWinner's read position (module state: no closure or reader object per peek). */
let peekPos = 0;

/** A varint at peekPos as ByteReader.varint reads it; -1 where ByteReader would throw. */
function peekVarint(bytes: Uint8Array): number {
  const first = bytes[peekPos];
  if (first !== undefined && first < 0x80) {
    peekPos++;
    return first;
  }
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    const b = bytes[peekPos++];
    if (b === undefined) return -1;
    result += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return result > Number.MAX_SAFE_INTEGER ? -1 : result;
    scale *= 0x80;
  }
  return -1;
}

/** The little-endian f64 at peekPos (the caller checked 8 bytes remain); NaN for a non-finite one. */
function peekFinite(bytes: Uint8Array): number {
  for (let j = 0; j < 8; j++) scratch8[j] = bytes[peekPos + j] as number;
  peekPos += 8;
  const v = scratch8.readDoubleLE(0);
  return Number.isFinite(v) ? v : NaN;
}

/**
 * `winnerOf(decodeObject(bytes, true), nowWallMs)` read in place for the
 * common object of one version that is a plain value or a tombstone: the
 * value is a view of `bytes` and nothing else is built. `mustDecode` for any
 * other shape, and for bytes decodeObject would reject (so the caller's
 * decode reports the corruption).
 */
export function peekWinner(bytes: Uint8Array, nowWallMs: number): Winner | undefined | MustDecode {
  const n = bytes.length;
  if (n === 0 || bytes[0] !== objectFormatVersion) return mustDecode;
  peekPos = 1;
  const nodeCount = peekVarint(bytes);
  if (nodeCount < 0 || nodeCount > maxPeekNodes) return mustDecode;
  for (let i = 0; i < nodeCount; i++) {
    const length = peekVarint(bytes);
    if (length < 0 || peekPos + length > n) return mustDecode;
    // ASCII only, and each name after the previous: the order decodeObject's clock check relies on.
    for (let j = peekPos; j < peekPos + length; j++) if ((bytes[j] as number) >= 0x80) return mustDecode;
    if (i > 0) {
      const before = peekTextStart[i - 1] as number;
      if (compareBytes(bytes.subarray(before, before + (peekTextLength[i - 1] as number)), bytes.subarray(peekPos, peekPos + length)) >= 0) return mustDecode;
    }
    peekTextStart[i] = peekPos;
    peekTextLength[i] = length;
    peekClockCounter[i] = 0;
    peekPos += length;
  }
  const clockEntries = peekVarint(bytes);
  if (clockEntries < 0 || clockEntries > nodeCount) return mustDecode;
  let previous = -1;
  for (let i = 0; i < clockEntries; i++) {
    const node = peekVarint(bytes);
    if (node <= previous || node >= nodeCount) return mustDecode;
    previous = node;
    const counter = peekVarint(bytes);
    if (counter < 1 || peekVarint(bytes) < 0) return mustDecode;
    peekClockCounter[node] = counter;
  }
  const versionCount = peekVarint(bytes);
  if (versionCount === 0) return peekPos === n ? undefined : mustDecode;
  if (versionCount !== 1 || peekPos + 2 > n) return mustDecode;
  const kind = bytes[peekPos] as number;
  const flags = bytes[peekPos + 1] as number;
  peekPos += 2;
  if ((kind !== kindCodes.value && kind !== kindCodes.tombstone) || (flags & ~(flagExpires | flagDeleted)) !== 0) return mustDecode;
  const node = peekVarint(bytes);
  const counter = peekVarint(bytes);
  // The version's dot must be inside the object's context, as decodeObject checks.
  if (node < 0 || node >= nodeCount || counter < 1 || (peekClockCounter[node] as number) < counter) return mustDecode;
  const fixedBytes = 8 * (1 + (flags & flagExpires) + ((flags & flagDeleted) >>> 1));
  if (peekPos + fixedBytes > n) return mustDecode;
  const timestampMs = peekFinite(bytes);
  const expiresAtMs = (flags & flagExpires) !== 0 ? peekFinite(bytes) : null;
  const deletedAtMs = (flags & flagDeleted) !== 0 ? peekFinite(bytes) : 0;
  if (Number.isNaN(timestampMs) || Number.isNaN(expiresAtMs) || Number.isNaN(deletedAtMs)) return mustDecode;
  if (kind === kindCodes.tombstone) return peekPos === n ? undefined : mustDecode;
  const length = peekVarint(bytes);
  if (length < 0 || peekPos + length !== n) return mustDecode;
  if (expiresAtMs !== null && expiresAtMs <= nowWallMs) return undefined;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const writer = textAt(buf, peekTextStart[node] as number, peekTextLength[node] as number);
  return { kind: 'value', value: buf.subarray(peekPos, n), expiresAtMs, timestampMs, writer };
}

// ---------------------------------------------------------------- a single node's overwrite

/**
 * `encodeObject` of the object a plain overwrite on a single node builds:
 * one value version written by `node`, the context that node's entry alone.
 * Written straight into one buffer of the exact size (no writer, no node
 * index). `node` is the node id's bytes, ASCII and shorter than 128 bytes
 * (soleNodeBytes gives them, or undefined when encodeObject must be used).
 */
export function encodeSoleValue(node: Uint8Array, counter: number, lastWallMs: number, timestampMs: number, value: Uint8Array, expiresAtMs: number | null): Uint8Array {
  const wall = Math.max(0, Math.floor(lastWallMs));
  const counterBytes = varintBytes(counter);
  const size = 5 + node.length + 2 * counterBytes + varintBytes(wall) + 4 + 8 + (expiresAtMs === null ? 0 : 8) + varintBytes(value.length) + value.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = objectFormatVersion;
  out[1] = 1;
  out[2] = node.length;
  let pos = 3;
  for (let i = 0; i < node.length; i++) out[pos++] = node[i] as number;
  out[pos++] = 1;
  out[pos++] = 0;
  pos = putVarint(out, pos, counter);
  pos = putVarint(out, pos, wall);
  out[pos++] = 1;
  out[pos++] = kindCodes.value;
  out[pos++] = expiresAtMs === null ? 0 : flagExpires;
  out[pos++] = 0;
  pos = putVarint(out, pos, counter);
  out.writeDoubleLE(timestampMs, pos);
  pos += 8;
  if (expiresAtMs !== null) {
    out.writeDoubleLE(expiresAtMs, pos);
    pos += 8;
  }
  pos = putVarint(out, pos, value.length);
  if (value.length <= 64) for (let i = 0; i < value.length; i++) out[pos + i] = value[i] as number;
  else out.set(value, pos);
  return out;
}

/** A node id's bytes for encodeSoleValue and peekSoleNodeBase, or undefined when it is not short ASCII. */
export function soleNodeBytes(node: NodeId): Uint8Array | undefined {
  if (node.length >= 0x80) return undefined;
  for (let i = 0; i < node.length; i++) if (node.charCodeAt(i) >= 0x80) return undefined;
  return Buffer.from(node, 'latin1');
}

function varintBytes(v: number): number {
  let n = 1;
  // Above 28 bits (dot counters, wall times): four bytes at once, as putVarint writes them.
  if (v >= 0x10000000) {
    v = Math.floor(v / 0x10000000);
    n = 5;
  }
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

/** ByteWriter.varint's bytes at `pos`; returns the position after them. */
function putVarint(buf: Buffer, pos: number, v: number): number {
  if (v >= 0x10000000) {
    // The low 28 bits with bit operations, the rest (at most 25 bits) below.
    const lo = v % 0x10000000;
    buf[pos++] = (lo & 0x7f) | 0x80;
    buf[pos++] = ((lo >>> 7) & 0x7f) | 0x80;
    buf[pos++] = ((lo >>> 14) & 0x7f) | 0x80;
    buf[pos++] = ((lo >>> 21) & 0x7f) | 0x80;
    v = Math.floor(v / 0x10000000);
  }
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** What peekSoleNodeBase read: the node's clock entry (0, 0 when none) and the newest version's timestamp. */
export interface SoleNodeBase {
  counter: number;
  lastWallMs: number;
  newestTimestampMs: number;
}

/**
 * decodeSupersededBase for an object whose node table is `node` alone (every
 * object a single node wrote), read in place into `into`: true when read,
 * false for any other object or for bytes decodeSupersededBase would reject
 * (the caller then decodes, which reports them).
 */
export function peekSoleNodeBase(bytes: Uint8Array, node: Uint8Array, into: SoleNodeBase): boolean {
  const n = bytes.length;
  const nodeLength = node.length;
  if (n < 3 + nodeLength || bytes[0] !== objectFormatVersion || bytes[1] !== 1 || bytes[2] !== nodeLength) return false;
  for (let i = 0; i < nodeLength; i++) if (bytes[3 + i] !== node[i]) return false;
  peekPos = 3 + nodeLength;
  const clockEntries = peekVarint(bytes);
  let clockCounter = 0;
  let clockWall = 0;
  if (clockEntries === 1) {
    if (peekVarint(bytes) !== 0) return false;
    clockCounter = peekVarint(bytes);
    clockWall = peekVarint(bytes);
    if (clockCounter < 1 || clockWall < 0) return false;
  } else if (clockEntries !== 0) {
    return false;
  }
  const versionCount = peekVarint(bytes);
  if (versionCount < 0 || versionCount > n) return false;
  let newest = -Infinity;
  for (let i = 0; i < versionCount; i++) {
    if (peekPos + 2 > n) return false;
    const kind = bytes[peekPos] as number;
    const flags = bytes[peekPos + 1] as number;
    peekPos += 2;
    if (kind < kindCodes.value || kind > kindCodes.tombstone || (flags & ~(flagExpires | flagDeleted)) !== 0) return false;
    if (peekVarint(bytes) !== 0 || peekVarint(bytes) < 0) return false;
    if (peekPos + 8 > n) return false;
    const timestampMs = peekFinite(bytes);
    if (Number.isNaN(timestampMs)) return false;
    if (timestampMs > newest) newest = timestampMs;
    peekPos += 8 * ((flags & flagExpires) + ((flags & flagDeleted) >>> 1));
    if (kind === kindCodes.value) {
      const length = peekVarint(bytes);
      if (length < 0) return false;
      peekPos += length;
    } else if (kind === kindCodes.counter) {
      // Rare here (a SET over a counter): the decode reads the lanes.
      return false;
    }
    if (peekPos > n) return false;
  }
  if (peekPos !== n) return false;
  into.counter = clockCounter;
  into.lastWallMs = clockWall;
  into.newestTimestampMs = newest;
  return true;
}

// ---------------------------------------------------------------- contexts

/**
 * The opaque causal context handed to clients: a versioned, self-contained
 * clock, followed by exact dots when the context has any.
 */
export function encodeContext(context: WriteContext): Uint8Array {
  const clock = context;
  const dots = context.dots ?? [];
  const w = new ByteWriter(8 + (clock.length + dots.length) * 24);
  w.u8(contextFormatVersion);
  w.varint(clock.length);
  for (const e of clock) {
    w.text(e.node);
    w.varint(e.counter);
    w.varint(Math.max(0, Math.floor(e.lastWallMs)));
  }
  if (dots.length > 0) {
    w.varint(dots.length);
    for (const d of dots) {
      w.text(d.node);
      w.varint(d.counter);
    }
  }
  return w.finish();
}

/** Decodes a client's context; malformed bytes throw CorruptionError (front ends report it as a bad argument). */
export function decodeContext(bytes: Uint8Array): WriteContext {
  if (bytes.length === 0) return emptyClock;
  const r = new ByteReader(bytes, 'a causal context');
  const version = r.u8();
  if (version !== contextFormatVersion) r.fail(`unknown context version ${version}`);
  const n = r.varint();
  if (n > bytes.length) r.fail(`${n} entries cannot fit`);
  const clock: ClockEntry[] = [];
  for (let i = 0; i < n; i++) {
    const node = r.text();
    const prev = clock[clock.length - 1];
    if (prev !== undefined && prev.node >= node) r.fail('entries out of order');
    const counter = r.varint();
    if (counter < 1) r.fail('counter 0');
    clock.push({ node, counter, lastWallMs: r.varint() });
  }
  const dots: Dot[] = [];
  if (!r.done) {
    const count = r.varint();
    if (count < 1 || count > maxContextDotsDecoded) r.fail(`${count} exact dots`);
    for (let i = 0; i < count; i++) {
      const dot = { node: r.text(), counter: r.varint() };
      if (dot.counter < 1) r.fail('dot counter 0');
      const prev = dots[dots.length - 1];
      if (prev !== undefined && cmpDot(prev, dot) >= 0) r.fail('dots out of order');
      dots.push(dot);
    }
  }
  if (!r.done) r.fail('trailing bytes');
  return withDots(clock, dots);
}

/** Decoding accepts a few more dots than a writer emits, so a future larger cap stays readable. */
const maxContextDotsDecoded = 1024;

// ---------------------------------------------------------------- engine metadata

/** Engine meta bytes: [version][f64 deadAfterMs], or undefined when the object never dies on its own. */
export function encodeMeta(object: StoredObject): Uint8Array | undefined {
  const dead = deadAfterMs(object);
  return dead === null ? undefined : encodeDeadAfter(dead);
}

/** The meta bytes of an object whose every version is dead after `deadAfterMs` (encodeMeta without the object). */
export function encodeDeadAfter(deadAfterMs: number): Uint8Array {
  const out = Buffer.allocUnsafe(9);
  out[0] = metaFormatVersion;
  out.writeDoubleLE(deadAfterMs, 1);
  return out;
}

/**
 * For a storage compaction filter (wired by the node; storage cannot import
 * this layer): true when an entry's metadata says every version in it died
 * more than `graceMs` ago, so the entry may be dropped without decoding it.
 */
export function isPurgeableEntry(meta: Uint8Array | undefined, nowWallMs: number, graceMs: number): boolean {
  const dead = decodeMeta(meta);
  return dead !== null && dead + graceMs <= nowWallMs;
}

/** The deadAfterMs stored in meta bytes, or null (none, or an unknown format). */
export function decodeMeta(meta: Uint8Array | undefined): number | null {
  if (meta === undefined || meta.length !== 9 || meta[0] !== metaFormatVersion) return null;
  return Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength).readDoubleLE(1);
}
