/**
 * An in-memory file system that models what a crash does to a real disk, so
 * crash tests can run thousands of times in one process:
 * - file contents survive a crash only up to the last `sync` of that file;
 *   with `tornWrites`, a random prefix of the unsynced tail survives too, its
 *   last bytes possibly garbled (a torn sector);
 * - creations, renames and removals survive only once their directory is
 *   synced (`syncDir`), as POSIX promises and ext4/xfs deliver;
 * - a capacity limit makes appends fail like ENOSPC.
 */
import * as nodePath from 'node:path';
import type { AppendFile, FileSystem, OpenAppendOptions, Random, ReadFile } from './env.ts';
import { IoError } from './errors.ts';

interface Inode {
  data: Buffer;
  length: number;
  durable: Uint8Array;
}

export interface CrashOptions {
  /** Keep a random prefix of unsynced appended bytes, possibly garbled at its end. */
  tornWrites?: boolean;
}

function notFound(path: string): IoError {
  return new IoError(`Cannot open ${path}: ENOENT`);
}

export class MemoryFileSystem implements FileSystem {
  private live = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  private dirs = new Set<string>(['/', '.']);
  private epoch = 0;
  private used = 0;
  /** Bytes the "disk" holds before appends fail with ENOSPC (Infinity: unbounded). */
  capacityBytes = Infinity;
  /** Counters for tests and benchmarks. */
  readonly stats = { syncs: 0, appends: 0, bytesAppended: 0 };

  private norm(path: string): string {
    return nodePath.normalize(path);
  }

  private inode(path: string): Inode {
    const inode = this.live.get(this.norm(path));
    if (inode === undefined) throw notFound(path);
    return inode;
  }

  /** Simulates power loss: unsynced data and unsynced directory changes are lost. */
  crash(random: Random, options: CrashOptions = {}): void {
    this.epoch++;
    const survivors = new Map<string, Inode>();
    const seen = new Map<Inode, Inode>();
    this.used = 0;
    for (const [path, inode] of this.durable) {
      let copy = seen.get(inode);
      if (copy === undefined) {
        let content = Buffer.from(inode.durable);
        const unsynced = inode.data.subarray(inode.durable.length, inode.length);
        const sameHistory = inode.length >= inode.durable.length;
        if (options.tornWrites && sameHistory && unsynced.length > 0 && random.float() < 0.5) {
          const kept = Buffer.from(unsynced.subarray(0, random.int(unsynced.length + 1)));
          if (kept.length > 0 && random.float() < 0.5) {
            const garbled = Math.min(kept.length, 1 + random.int(16));
            kept.set(random.bytes(garbled), kept.length - garbled);
          }
          content = Buffer.concat([content, kept]);
        }
        const data = Buffer.alloc(Math.max(64, content.length * 2));
        content.copy(data);
        copy = { data, length: content.length, durable: Buffer.from(content) };
        seen.set(inode, copy);
        this.used += content.length;
      }
      survivors.set(path, copy);
    }
    this.live = survivors;
    this.durable = new Map(survivors);
  }

  /** Current contents of a file (for corruption tests). */
  peek(path: string): Uint8Array {
    const inode = this.inode(path);
    return Buffer.from(inode.data.subarray(0, inode.length));
  }

  /** Overwrites bytes in place, durably (for corruption tests: a flipped bit on disk). */
  corrupt(path: string, offset: number, bytes: Uint8Array): void {
    const inode = this.inode(path);
    inode.data.set(bytes, offset);
    const durable = Buffer.from(inode.durable);
    if (offset < durable.length) durable.set(bytes.subarray(0, durable.length - offset), offset);
    inode.durable = durable;
  }

  async mkdirp(dir: string): Promise<void> {
    let current = this.norm(dir);
    while (!this.dirs.has(current)) {
      this.dirs.add(current);
      current = nodePath.dirname(current);
    }
  }

  async list(dir: string): Promise<string[]> {
    const d = this.norm(dir);
    if (!this.dirs.has(d)) throw new IoError(`Cannot list ${dir}: ENOENT`);
    const names = new Set<string>();
    for (const path of this.live.keys()) if (nodePath.dirname(path) === d) names.add(nodePath.basename(path));
    for (const sub of this.dirs) if (sub !== d && nodePath.dirname(sub) === d) names.add(nodePath.basename(sub));
    return [...names].sort();
  }

  async exists(path: string): Promise<boolean> {
    const p = this.norm(path);
    return this.live.has(p) || this.dirs.has(p);
  }

  async size(path: string): Promise<number | undefined> {
    return this.live.get(this.norm(path))?.length;
  }

  /** Ignores the hints `preallocateBytes` and `syncInline`: appends and their durability are the same without them. */
  async openAppend(path: string, options: OpenAppendOptions = {}): Promise<AppendFile> {
    const p = this.norm(path);
    if (!this.dirs.has(nodePath.dirname(p))) throw new IoError(`Cannot open ${path}: ENOENT (no such directory)`);
    let inode = this.live.get(p);
    if (inode === undefined || options.truncate) {
      if (inode !== undefined) this.used -= inode.length;
      inode = { data: Buffer.alloc(256), length: 0, durable: inode?.durable ?? new Uint8Array(0) };
      if (!this.live.has(p)) inode.durable = new Uint8Array(0);
      this.live.set(p, inode);
    }
    return new MemoryAppendFile(this, p, inode, this.epoch);
  }

  async openRead(path: string): Promise<ReadFile> {
    const p = this.norm(path);
    const inode = this.inode(p);
    return new MemoryReadFile(this, p, inode, this.epoch);
  }

  async readFile(path: string): Promise<Uint8Array> {
    return this.peek(path);
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.norm(from);
    const inode = this.inode(f);
    const t = this.norm(to);
    const replaced = this.live.get(t);
    if (replaced !== undefined && replaced !== inode) this.used -= replaced.length;
    this.live.delete(f);
    this.live.set(t, inode);
  }

  async remove(path: string): Promise<void> {
    const p = this.norm(path);
    const inode = this.live.get(p);
    if (inode !== undefined) {
      this.used -= inode.length;
      this.live.delete(p);
    }
    if (this.dirs.has(p)) {
      for (const file of [...this.live.keys()]) if (file.startsWith(`${p}/`)) await this.remove(file);
      for (const dir of [...this.dirs]) if (dir === p || dir.startsWith(`${p}/`)) this.dirs.delete(dir);
    }
  }

  async truncate(path: string, length: number): Promise<void> {
    const inode = this.inode(path);
    if (length < inode.length) {
      this.used -= inode.length - length;
      inode.length = length;
      // Truncation is a metadata update that reaches the disk with the next sync.
      if (inode.durable.length > length) inode.durable = inode.durable.slice(0, length);
    }
  }

  async syncDir(dir: string): Promise<void> {
    const d = this.norm(dir);
    for (const path of [...this.durable.keys()]) {
      if (nodePath.dirname(path) === d && this.live.get(path) !== this.durable.get(path)) this.durable.delete(path);
    }
    for (const [path, inode] of this.live) if (nodePath.dirname(path) === d) this.durable.set(path, inode);
  }

  /** @internal */
  checkEpoch(epoch: number, path: string): void {
    if (epoch !== this.epoch) throw new IoError(`Cannot use ${path}: the handle was opened before a crash`);
  }

  /** @internal */
  reserve(path: string, bytes: number): void {
    if (this.used + bytes > this.capacityBytes) {
      throw new IoError(`Cannot append to ${path}: ENOSPC (the disk is full: free space, then retry)`);
    }
    this.used += bytes;
  }
}

class MemoryAppendFile implements AppendFile {
  constructor(
    private readonly fs: MemoryFileSystem,
    readonly path: string,
    private readonly inode: Inode,
    private readonly epoch: number,
  ) {}

  get size(): number {
    return this.inode.length;
  }

  appendSync(data: Uint8Array): void {
    this.fs.checkEpoch(this.epoch, this.path);
    this.fs.reserve(this.path, data.length);
    const inode = this.inode;
    if (inode.length + data.length > inode.data.length) {
      const grown = Buffer.alloc(Math.max(inode.data.length * 2, inode.length + data.length));
      inode.data.copy(grown, 0, 0, inode.length);
      inode.data = grown;
    }
    inode.data.set(data, inode.length);
    inode.length += data.length;
    this.fs.stats.appends++;
    this.fs.stats.bytesAppended += data.length;
  }

  async append(data: Uint8Array): Promise<void> {
    this.appendSync(data);
  }

  async sync(): Promise<void> {
    this.fs.checkEpoch(this.epoch, this.path);
    this.inode.durable = Buffer.from(this.inode.data.subarray(0, this.inode.length));
    this.fs.stats.syncs++;
  }

  async close(): Promise<void> {}
}

class MemoryReadFile implements ReadFile {
  constructor(
    private readonly fs: MemoryFileSystem,
    readonly path: string,
    private readonly inode: Inode,
    private readonly epoch: number,
  ) {}

  get size(): number {
    return this.inode.length;
  }

  readSync(position: number, length: number): Uint8Array {
    this.fs.checkEpoch(this.epoch, this.path);
    const end = Math.min(this.inode.length, position + length);
    return Buffer.from(this.inode.data.subarray(Math.min(position, end), end));
  }

  readSyncInto(position: number, length: number, target: Uint8Array): number {
    this.fs.checkEpoch(this.epoch, this.path);
    if (length > target.length) throw new RangeError(`Cannot read ${length} bytes into a buffer of ${target.length} bytes`);
    const end = Math.min(this.inode.length, position + length);
    const start = Math.min(position, end);
    target.set(this.inode.data.subarray(start, end), 0);
    return end - start;
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    return this.readSync(position, length);
  }

  async close(): Promise<void> {}
}
