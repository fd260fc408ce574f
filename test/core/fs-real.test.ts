import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, RealFileSystem, fromUtf8, utf8 } from '../../src/core/index.ts';

test('RealFileSystem appends, syncs, reads positionally, renames and lists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-fs-'));
  try {
    const fs = new RealFileSystem();
    await fs.mkdirp(join(dir, 'sub'));
    const file = await fs.openAppend(join(dir, 'sub', 'a'));
    await file.append(utf8('hello '));
    file.appendSync(utf8('world'));
    await file.sync();
    assert.equal(file.size, 11);
    await file.close();
    await fs.rename(join(dir, 'sub', 'a'), join(dir, 'sub', 'b'));
    await fs.syncDir(join(dir, 'sub'));
    assert.deepEqual(await fs.list(join(dir, 'sub')), ['b']);
    const reader = await fs.openRead(join(dir, 'sub', 'b'));
    assert.equal(fromUtf8(reader.readSync(6, 100)), 'world');
    assert.equal(fromUtf8(await reader.read(0, 5)), 'hello');
    await reader.close();
    await fs.truncate(join(dir, 'sub', 'b'), 5);
    assert.equal(await fs.size(join(dir, 'sub', 'b')), 5);
    assert.equal(await fs.size(join(dir, 'missing')), undefined);
    await assert.rejects(fs.openRead(join(dir, 'missing')), (e: unknown) => e instanceof IoError && /ENOENT/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RealFileSystem preallocates: zeros on disk first, appends overwrite them from byte 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-fs-'));
  try {
    const fs = new RealFileSystem();
    const path = join(dir, 'p');
    // Not a multiple of the zero chunk, and over one chunk: the last write is partial.
    const bytes = 1024 * 1024 + 123;
    const file = await fs.openAppend(path, { truncate: true, preallocateBytes: bytes });
    assert.equal(file.size, 0);
    assert.equal(await fs.size(path), bytes);
    file.appendSync(utf8('head '));
    await file.append(utf8('tail'));
    await file.sync();
    assert.equal(file.size, 9);
    await file.close();
    const data = await fs.readFile(path);
    assert.equal(data.length, bytes);
    assert.equal(fromUtf8(data.subarray(0, 9)), 'head tail');
    assert.ok(data.subarray(9).every((b) => b === 0));
    // Without truncate the hint does not apply: an existing file is appended to at its end.
    const again = await fs.openAppend(path, { preallocateBytes: 10 });
    assert.equal(again.size, bytes);
    await again.append(utf8('!'));
    await again.close();
    assert.equal(await fs.size(path), bytes + 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RealFileSystem syncInline: sync() runs fdatasync on the calling thread and returns a settled promise', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-fs-'));
  try {
    const fs = new RealFileSystem();
    const settledWithinMicrotasks = async (file: { sync(): Promise<void> }): Promise<boolean> => {
      let done = false;
      const syncing = file.sync().then(() => {
        done = true;
      });
      for (let i = 0; i < 3; i++) await Promise.resolve();
      const early = done;
      await syncing;
      return early;
    };
    const inline = await fs.openAppend(join(dir, 'inline'), { truncate: true, syncInline: true });
    inline.appendSync(utf8('x'));
    assert.equal(await settledWithinMicrotasks(inline), true);
    // The thread pool's answer needs an event-loop turn.
    const pooled = await fs.openAppend(join(dir, 'pooled'), { truncate: true });
    pooled.appendSync(utf8('x'));
    assert.equal(await settledWithinMicrotasks(pooled), false);
    await pooled.close();
    // A failed inline sync rejects with the path, as the pooled one does.
    await inline.close();
    await assert.rejects(inline.sync(), (e: unknown) => e instanceof IoError && e.message.includes('inline'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
