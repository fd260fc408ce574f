import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoError, MemoryFileSystem, SeededRandom, fromUtf8, utf8 } from '../../src/core/index.ts';

async function fileWith(fs: MemoryFileSystem, path: string, parts: string[], syncAfter: number): Promise<void> {
  await fs.mkdirp('/db');
  const file = await fs.openAppend(path);
  for (let i = 0; i < parts.length; i++) {
    await file.append(utf8(parts[i] as string));
    if (i + 1 === syncAfter) await file.sync();
  }
}

test('MemoryFileSystem crash keeps synced bytes and drops the unsynced tail', async () => {
  const fs = new MemoryFileSystem();
  await fileWith(fs, '/db/wal', ['aaa', 'bbb', 'ccc'], 2);
  await fs.syncDir('/db');
  fs.crash(new SeededRandom(1));
  assert.equal(fromUtf8(await fs.readFile('/db/wal')), 'aaabbb');
});

test('MemoryFileSystem crash forgets a file whose directory entry was never synced', async () => {
  const fs = new MemoryFileSystem();
  await fileWith(fs, '/db/new', ['data'], 1);
  fs.crash(new SeededRandom(1));
  assert.equal(await fs.exists('/db/new'), false);
});

test('MemoryFileSystem rename is durable only after syncDir', async () => {
  const fs = new MemoryFileSystem();
  await fileWith(fs, '/db/a', ['one'], 1);
  await fs.syncDir('/db');
  await fs.rename('/db/a', '/db/b');
  fs.crash(new SeededRandom(2));
  assert.deepEqual(await fs.list('/db'), ['a']);

  await fs.rename('/db/a', '/db/b');
  await fs.syncDir('/db');
  fs.crash(new SeededRandom(3));
  assert.deepEqual(await fs.list('/db'), ['b']);
  assert.equal(fromUtf8(await fs.readFile('/db/b')), 'one');
});

test('MemoryFileSystem torn writes keep a prefix of the unsynced tail, never more', async () => {
  let sawTorn = false;
  for (let seed = 0; seed < 200; seed++) {
    const fs = new MemoryFileSystem();
    await fileWith(fs, '/db/wal', ['synced|', 'unsynced-tail-bytes'], 1);
    await fs.syncDir('/db');
    fs.crash(new SeededRandom(seed), { tornWrites: true });
    const after = await fs.readFile('/db/wal');
    assert.ok(after.length >= 'synced|'.length && after.length <= 'synced|unsynced-tail-bytes'.length);
    assert.equal(fromUtf8(after.subarray(0, 7)), 'synced|');
    if (after.length > 7) sawTorn = true;
  }
  assert.ok(sawTorn, 'some seeds keep part of the unsynced tail');
});

test('MemoryFileSystem handles opened before a crash refuse further use', async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp('/db');
  const file = await fs.openAppend('/db/wal');
  await fs.syncDir('/db');
  fs.crash(new SeededRandom(1));
  assert.throws(() => file.appendSync(utf8('x')), IoError);
});

test('MemoryFileSystem capacity makes appends fail like ENOSPC and frees on remove', async () => {
  const fs = new MemoryFileSystem();
  fs.capacityBytes = 10;
  await fs.mkdirp('/db');
  const file = await fs.openAppend('/db/f');
  await file.append(utf8('12345678'));
  await assert.rejects(file.append(utf8('abc')), (error: unknown) => error instanceof IoError && /ENOSPC/.test(error.message));
  assert.equal(file.size, 8, 'a failed append leaves the file as it was');
  await fs.remove('/db/f');
  const other = await fs.openAppend('/db/g');
  await other.append(utf8('1234567890'));
});

test('MemoryFileSystem truncate cuts a torn tail and reads stop at the end', async () => {
  const fs = new MemoryFileSystem();
  await fileWith(fs, '/db/wal', ['0123456789'], 1);
  await fs.truncate('/db/wal', 4);
  const reader = await fs.openRead('/db/wal');
  assert.equal(fromUtf8(reader.readSync(0, 100)), '0123');
  assert.equal(reader.readSync(10, 5).length, 0);
});
