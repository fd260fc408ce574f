/**
 * The memtable: a skiplist ordered by key, where keys are latin1 strings
 * (one UTF-16 unit per byte, so JS string order is byte order and compares
 * run in V8 without crossing into native code).
 *
 * Each node holds the newest version of its key. While an iterator has the
 * memtable pinned, an overwrite keeps the previous version in `older`, so the
 * iterator still sees the state as of its sequence number (snapshot reads);
 * with no pins, overwrites replace in place and use no extra memory.
 */

export interface MemVersion {
  seq: number;
  /** undefined: a deletion (tombstone). */
  value: Uint8Array | undefined;
  meta: Uint8Array | undefined;
  older: MemVersion | undefined;
}

export class MemNode implements MemVersion {
  seq: number;
  value: Uint8Array | undefined;
  meta: Uint8Array | undefined;
  older: MemVersion | undefined = undefined;
  readonly next: (MemNode | undefined)[];

  constructor(
    readonly key: string,
    readonly keyBytes: Uint8Array,
    height: number,
    seq: number,
    value: Uint8Array | undefined,
    meta: Uint8Array | undefined,
  ) {
    this.seq = seq;
    this.value = value;
    this.meta = meta;
    this.next = new Array<MemNode | undefined>(height).fill(undefined);
  }

  /** The version visible at `seq`, or undefined when the key was written later. */
  visibleAt(seq: number): MemVersion | undefined {
    if (this.seq <= seq) return this;
    let version = this.older;
    while (version !== undefined && version.seq > seq) version = version.older;
    return version;
  }
}

const maxHeight = 12;
/** Approximate JS heap cost of a node beyond its bytes, so the size budget tracks real memory. */
export const memNodeOverheadBytes = 160;

/** latin1 string of a key: one code unit per byte. */
export function keyString(key: Uint8Array): string {
  if (key.length <= 24) {
    let s = '';
    for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i] as number);
    return s;
  }
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export class Memtable {
  private readonly head = new MemNode('', new Uint8Array(0), maxHeight, 0, undefined, undefined);
  private height = 1;
  private rng = 0x9e3779b9;
  private readonly update: MemNode[] = new Array<MemNode>(maxHeight);
  /** Approximate memory in bytes (keys, values, metadata and node overhead). */
  bytes = 0;
  entries = 0;
  /** Iterators reading this memtable; while > 0 overwrites keep old versions. */
  pins = 0;
  /** Highest sequence number applied. */
  lastSeq = 0;

  constructor(readonly walNumber: number) {}

  private randomHeight(): number {
    // xorshift32: deterministic, and cheap enough for every insert.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    let h = 1;
    let bits = this.rng;
    while (h < maxHeight && (bits & 3) === 0) {
      h++;
      bits >>>= 2;
    }
    return h;
  }

  /** The first node with key ≥ `key` (or undefined). */
  seek(key: string): MemNode | undefined {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const next = node.next[level];
        if (next === undefined || next.key >= key) break;
        node = next;
      }
    }
    return node.next[0];
  }

  get(key: string): MemNode | undefined {
    const node = this.seek(key);
    return node !== undefined && node.key === key ? node : undefined;
  }

  first(): MemNode | undefined {
    return this.head.next[0];
  }

  /** value undefined: a deletion. Keys and values are stored as given (callers copy). */
  set(key: string, keyBytes: Uint8Array, seq: number, value: Uint8Array | undefined, meta: Uint8Array | undefined): void {
    const update = this.update;
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const next = node.next[level];
        if (next === undefined || next.key >= key) break;
        node = next;
      }
      update[level] = node;
    }
    this.lastSeq = seq;
    const found = node.next[0];
    const size = (value?.length ?? 0) + (meta?.length ?? 0);
    if (found !== undefined && found.key === key) {
      if (this.pins > 0) {
        found.older = { seq: found.seq, value: found.value, meta: found.meta, older: found.older };
        this.bytes += size + 48;
      } else {
        this.bytes += size - (found.value?.length ?? 0) - (found.meta?.length ?? 0);
      }
      found.seq = seq;
      found.value = value;
      found.meta = meta;
      return;
    }
    const height = this.randomHeight();
    if (height > this.height) {
      for (let level = this.height; level < height; level++) update[level] = this.head;
      this.height = height;
    }
    const created = new MemNode(key, keyBytes, height, seq, value, meta);
    for (let level = 0; level < height; level++) {
      const prev = update[level] as MemNode;
      created.next[level] = prev.next[level];
      prev.next[level] = created;
    }
    this.entries++;
    this.bytes += keyBytes.length + size + memNodeOverheadBytes;
  }

  /** Nodes with lo ≤ key ≤ hi (bounds optional) in ascending order, as an array (for reverse scans). */
  collect(lo: string | undefined, hi: string | undefined): MemNode[] {
    const out: MemNode[] = [];
    let node = lo === undefined ? this.first() : this.seek(lo);
    while (node !== undefined && (hi === undefined || node.key <= hi)) {
      out.push(node);
      node = node.next[0];
    }
    return out;
  }
}
