/** Test helpers for the storage tests. */
import { IoError } from '../../src/core/index.ts';
import type { AppendFile, FileSystem, OpenAppendOptions, ReadFile } from '../../src/core/index.ts';

/**
 * A FileSystem view that can be cut off. After a simulated crash the old
 * engine object is a zombie whose background work would otherwise keep
 * renaming and removing files under the recovered one; a real crash kills
 * the process, so the test fences the zombie off instead.
 */
export class FencedFileSystem implements FileSystem {
  private fenced = false;

  constructor(private readonly inner: FileSystem) {}

  fence(): void {
    this.fenced = true;
  }

  private check(path: string): void {
    if (this.fenced) throw new IoError(`Cannot use ${path}: the process "crashed"`);
  }

  async mkdirp(dir: string): Promise<void> {
    this.check(dir);
    return this.inner.mkdirp(dir);
  }
  async list(dir: string): Promise<string[]> {
    this.check(dir);
    return this.inner.list(dir);
  }
  async exists(path: string): Promise<boolean> {
    this.check(path);
    return this.inner.exists(path);
  }
  async size(path: string): Promise<number | undefined> {
    this.check(path);
    return this.inner.size(path);
  }
  async openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
    this.check(path);
    return this.inner.openAppend(path, options);
  }
  async openRead(path: string): Promise<ReadFile> {
    this.check(path);
    return this.inner.openRead(path);
  }
  async readFile(path: string): Promise<Uint8Array> {
    this.check(path);
    return this.inner.readFile(path);
  }
  async rename(from: string, to: string): Promise<void> {
    this.check(from);
    return this.inner.rename(from, to);
  }
  async remove(path: string): Promise<void> {
    this.check(path);
    return this.inner.remove(path);
  }
  async truncate(path: string, length: number): Promise<void> {
    this.check(path);
    return this.inner.truncate(path, length);
  }
  async syncDir(dir: string): Promise<void> {
    this.check(dir);
    return this.inner.syncDir(dir);
  }
}

/** `file` with its sync replaced (a test that holds, counts or fails syncs); everything else goes to `file`. */
export function withSync(file: AppendFile, sync: () => Promise<void>): AppendFile {
  return {
    path: file.path,
    get size() {
      return file.size;
    },
    append: (data) => file.append(data),
    appendSync: (data) => file.appendSync(data),
    sync,
    close: () => file.close(),
  };
}

/** A FileSystem that passes every call to `inner`: tests override the calls they watch or break. */
export class ForwardingFileSystem implements FileSystem {
  constructor(protected readonly inner: FileSystem) {}

  mkdirp(dir: string): Promise<void> {
    return this.inner.mkdirp(dir);
  }
  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
  size(path: string): Promise<number | undefined> {
    return this.inner.size(path);
  }
  openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
    return this.inner.openAppend(path, options);
  }
  openRead(path: string): Promise<ReadFile> {
    return this.inner.openRead(path);
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.inner.readFile(path);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  truncate(path: string, length: number): Promise<void> {
    return this.inner.truncate(path, length);
  }
  syncDir(dir: string): Promise<void> {
    return this.inner.syncDir(dir);
  }
}

/** A FileSystem that counts the calls the storage tests watch (files opened for append, directory syncs). */
export class CountingFileSystem extends ForwardingFileSystem {
  readonly appendOpens: string[] = [];
  dirSyncs = 0;

  override openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
    this.appendOpens.push(path);
    return this.inner.openAppend(path, options);
  }
  override syncDir(dir: string): Promise<void> {
    this.dirSyncs++;
    return this.inner.syncDir(dir);
  }
}
