/** The real file system, over node:fs. OS errors become IoError with the path in the message. */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { AppendFile, FileSystem, OpenAppendOptions, ReadFile } from './env.ts';
import { IoError } from './errors.ts';

function ioError(operation: string, path: string, cause: unknown): IoError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const hint = code === 'ENOSPC' ? ' (the disk is full: free space, then retry)' : '';
  return new IoError(`Cannot ${operation} ${path}: ${code ?? String(cause)}${hint}`, { cause });
}

async function wrap<T>(operation: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    // Already said with its path and operation (a write inside fn).
    if (cause instanceof IoError) throw cause;
    throw ioError(operation, path, cause);
  }
}

/** Writes `data[0, length)` at `position`; an error or a short write rejects with an IoError naming `path`. */
function writeAt(fd: number, data: Uint8Array, length: number, position: number, path: string, operation: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, 0, length, position, (error, written) => {
      if (error) reject(ioError(operation, path, error));
      else if (written !== length) reject(new IoError(`Short write to ${path}: ${written} of ${length} bytes`));
      else resolve();
    });
  });
}

class RealAppendFile implements AppendFile {
  readonly path: string;
  private readonly fd: number;
  size: number;

  constructor(
    path: string,
    fd: number,
    size: number,
    private readonly syncInline: boolean,
  ) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  // Appends are positional (at `size`), so a preallocated file is overwritten
  // from its start; with O_APPEND Linux appends whatever the position.
  append(data: Uint8Array): Promise<void> {
    const position = this.size;
    this.size += data.length;
    return writeAt(this.fd, data, data.length, position, this.path, 'append to');
  }

  appendSync(data: Uint8Array): void {
    let offset = 0;
    try {
      while (offset < data.length) offset += fs.writeSync(this.fd, data, offset, data.length - offset, this.size + offset);
    } catch (cause) {
      throw ioError('append to', this.path, cause);
    } finally {
      this.size += offset;
    }
  }

  sync(): Promise<void> {
    if (this.syncInline) {
      try {
        fs.fdatasyncSync(this.fd);
        return Promise.resolve();
      } catch (cause) {
        return Promise.reject(ioError('sync', this.path, cause));
      }
    }
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (error) => (error ? reject(ioError('sync', this.path, error)) : resolve()));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.close(this.fd, (error) => (error ? reject(ioError('close', this.path, error)) : resolve()));
    });
  }
}

class RealReadFile implements ReadFile {
  readonly path: string;
  readonly size: number;
  private readonly fd: number;

  constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  readSync(position: number, length: number): Uint8Array {
    const available = Math.max(0, Math.min(length, this.size - position));
    const buffer = Buffer.allocUnsafe(available);
    let done = 0;
    try {
      while (done < available) {
        const n = fs.readSync(this.fd, buffer, done, available - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (cause) {
      throw ioError('read', this.path, cause);
    }
    return done === available ? buffer : buffer.subarray(0, done);
  }

  readSyncInto(position: number, length: number, target: Uint8Array): number {
    if (length > target.length) throw new RangeError(`Cannot read ${length} bytes into a buffer of ${target.length} bytes`);
    const available = Math.max(0, Math.min(length, this.size - position));
    let done = 0;
    try {
      while (done < available) {
        const n = fs.readSync(this.fd, target, done, available - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (cause) {
      throw ioError('read', this.path, cause);
    }
    return done;
  }

  read(position: number, length: number): Promise<Uint8Array> {
    const available = Math.max(0, Math.min(length, this.size - position));
    const buffer = Buffer.allocUnsafe(available);
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buffer, 0, available, position, (error, n) => {
        if (error) reject(ioError('read', this.path, error));
        else resolve(n === available ? buffer : buffer.subarray(0, n));
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.close(this.fd, (error) => (error ? reject(ioError('close', this.path, error)) : resolve()));
    });
  }
}

/** Zeros written per call while preallocating (one buffer for every file). */
const preallocateChunkBytes = 1024 * 1024;
let zeroChunk: Buffer | undefined;

/** OpenAppendOptions.preallocateBytes: zeros written on the thread pool, then one fsync for the data and the size. */
async function openPreallocated(path: string, bytes: number, syncInline: boolean): Promise<RealAppendFile> {
  const fd = fs.openSync(path, 'w');
  try {
    zeroChunk ??= Buffer.alloc(preallocateChunkBytes);
    for (let at = 0; at < bytes; at += preallocateChunkBytes) await writeAt(fd, zeroChunk, Math.min(preallocateChunkBytes, bytes - at), at, path, 'preallocate');
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return new RealAppendFile(path, fd, 0, syncInline);
}

export class RealFileSystem implements FileSystem {
  mkdirp(dir: string): Promise<void> {
    return wrap('create directory', dir, async () => {
      await fsp.mkdir(dir, { recursive: true });
    });
  }

  list(dir: string): Promise<string[]> {
    return wrap('list', dir, async () => (await fsp.readdir(dir)).sort());
  }

  async exists(path: string): Promise<boolean> {
    return (await this.size(path)) !== undefined;
  }

  async size(path: string): Promise<number | undefined> {
    try {
      return (await fsp.stat(path)).size;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError('stat', path, cause);
    }
  }

  openAppend(path: string, options: OpenAppendOptions = {}): Promise<AppendFile> {
    const preallocate = options.preallocateBytes ?? 0;
    const inline = options.syncInline === true;
    if (options.truncate === true && preallocate > 0) return wrap('preallocate', path, () => openPreallocated(path, preallocate, inline));
    return wrap('open for append', path, async () => {
      const fd = fs.openSync(path, options.truncate ? 'w' : 'a');
      const { size } = fs.fstatSync(fd);
      return new RealAppendFile(path, fd, size, inline);
    });
  }

  openRead(path: string): Promise<ReadFile> {
    return wrap('open', path, async () => {
      const fd = fs.openSync(path, 'r');
      const { size } = fs.fstatSync(fd);
      return new RealReadFile(path, fd, size);
    });
  }

  readFile(path: string): Promise<Uint8Array> {
    return wrap('read', path, () => fsp.readFile(path));
  }

  rename(from: string, to: string): Promise<void> {
    return wrap('rename', `${from} to ${to}`, () => fsp.rename(from, to));
  }

  remove(path: string): Promise<void> {
    return wrap('remove', path, () => fsp.rm(path, { force: true, recursive: true }));
  }

  truncate(path: string, length: number): Promise<void> {
    return wrap('truncate', path, () => fsp.truncate(path, length));
  }

  syncDir(dir: string): Promise<void> {
    return wrap('sync directory', dir, async () => {
      const handle = await fsp.open(dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }
}

export function joinPath(...parts: string[]): string {
  return nodePath.join(...parts);
}
