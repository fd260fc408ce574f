/**
 * Corruption on disk is detected and reported with file and offset, never
 * returned as data: a flipped byte in an SSTable block, in its footer, in the
 * WAL (mid-file: an error; at the tail: a torn write, truncated), in the manifest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CorruptionError, MemoryFileSystem, MemoryLogger, RealClock, crc32, silentLogger, utf8, fromUtf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmOptions } from '../../src/storage/index.ts';
import { readU32, writeU32 } from '../../src/storage/codec.ts';
import { Block, hashBucketBytes, kindPut } from '../../src/storage/block.ts';
import { Table, TableBuilder, hashKey } from '../../src/storage/sstable.ts';
import { BlockCache } from '../../src/storage/block-cache.ts';

const env = (fs: MemoryFileSystem) => ({ fs, clock: new RealClock(), log: silentLogger });
const options: Partial<LsmOptions> = { blockBytes: 1024, compression: 'none' };
const key = (i: number): Uint8Array => utf8(`key-${String(i).padStart(5, '0')}`);
const value = (i: number): Uint8Array => utf8(`value-${i}-${'z'.repeat(i % 50)}`);

async function filesEnding(fs: MemoryFileSystem, suffix: string): Promise<string[]> {
  return (await fs.list('/db')).filter((n) => n.endsWith(suffix)).map((n) => `/db/${n}`);
}

/** A database whose data sits in one compacted SSTable. */
async function tableDb(): Promise<{ fs: MemoryFileSystem; sst: string }> {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', options, env(fs));
  for (let i = 0; i < 2000; i++) await db.put(key(i), value(i));
  await db.compact();
  await db.close();
  const [sst] = await filesEnding(fs, '.sst');
  assert.ok(sst !== undefined);
  return { fs, sst };
}

test('a flipped byte in an SSTable data block is reported as corruption on get and scan, never as data', async () => {
  const { fs, sst } = await tableDb();
  const at = 100;
  fs.corrupt(sst, at, Uint8Array.of(fs.peek(sst)[at] as number ^ 0x01));
  const db = await openLsm('/db', options, env(fs));
  try {
    // key 0 lives in the first block, which holds the flipped byte.
    const error = await db.get(key(0)).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof CorruptionError, `expected CorruptionError, got ${String(error)}`);
    assert.equal(error.file, sst);
    assert.equal(error.offset, 0);
    assert.match(error.message, /checksum mismatch/);
    await assert.rejects(async () => {
      for await (const _ of db.iterate()) void _;
    }, CorruptionError);
    // Blocks that are intact still read.
    assert.equal(fromUtf8((await db.get(key(1999)))?.value ?? new Uint8Array()), fromUtf8(value(1999)));
  } finally {
    await db.close();
  }
});

test('a flipped byte in an SSTable footer fails the open with CorruptionError', async () => {
  const { fs, sst } = await tableDb();
  const size = fs.peek(sst).length;
  fs.corrupt(sst, size - 20, Uint8Array.of(0xaa));
  await assert.rejects(openLsm('/db', options, env(fs)), (e: unknown) => e instanceof CorruptionError && e.file === sst);
});

async function walDb(): Promise<{ fs: MemoryFileSystem; wal: string }> {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { ...options, sync: 'always' }, env(fs));
  for (let i = 0; i < 100; i++) await db.put(key(i), value(i));
  await db.close();
  const logs = await filesEnding(fs, '.log');
  const wal = logs[logs.length - 1];
  assert.ok(wal !== undefined && fs.peek(wal).length > 5000);
  return { fs, wal };
}

test('a flipped byte in the middle of the WAL is a CorruptionError naming the file and offset', async () => {
  const { fs, wal } = await walDb();
  const at = Math.floor(fs.peek(wal).length / 2);
  fs.corrupt(wal, at, Uint8Array.of(fs.peek(wal)[at] as number ^ 0x40));
  const error = await openLsm('/db', options, env(fs)).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof CorruptionError, `expected CorruptionError, got ${String(error)}`);
  assert.equal(error.file, wal);
  assert.ok(error.offset !== undefined && error.offset <= at && error.offset > at - 200, `offset ${error.offset} near ${at}`);
  assert.match(error.message, new RegExp(`${wal}.*offset ${error.offset}`));
});

test('a torn WAL tail is truncated and every complete record is recovered', async () => {
  const { fs, wal } = await walDb();
  const size = fs.peek(wal).length;
  // A record header promising more bytes than were written, then garbage.
  const torn = new Uint8Array(30);
  writeU32(torn, 0, 500);
  torn.fill(0xab, 9);
  const file = await fs.openAppend(wal);
  file.appendSync(torn);
  await file.sync();
  const log = new MemoryLogger();
  const db = await openLsm('/db', options, { fs, clock: new RealClock(), log });
  try {
    for (let i = 0; i < 100; i++) assert.equal(fromUtf8((await db.get(key(i)))?.value ?? new Uint8Array()), fromUtf8(value(i)));
  } finally {
    await db.close();
  }
  const warning = log.records.find((r) => r.message.includes('torn WAL tail'));
  assert.equal(warning?.fields.file, wal);
  assert.equal(warning?.fields.validBytes, size);
});

test('WAL record types: unknown mandatory types are corruption, types with the skippable bit are skipped', async () => {
  for (const [type, ok] of [[0x07, false], [0x85, true]] as const) {
    const { fs, wal } = await walDb();
    const payload = utf8('from the future');
    const record = new Uint8Array(9 + payload.length);
    writeU32(record, 0, payload.length);
    record[8] = type;
    record.set(payload, 9);
    writeU32(record, 4, crc32(record.subarray(8)));
    const file = await fs.openAppend(wal);
    file.appendSync(record);
    await file.sync();
    if (ok) {
      const db = await openLsm('/db', options, env(fs));
      assert.equal(fromUtf8((await db.get(key(99)))?.value ?? new Uint8Array()), fromUtf8(value(99)));
      await db.close();
    } else {
      await assert.rejects(openLsm('/db', options, env(fs)), (e: unknown) => e instanceof CorruptionError && /type 7 is unknown/.test(e.message));
    }
  }
});

test('a flipped byte in the manifest fails the open with CorruptionError', async () => {
  const { fs } = await tableDb();
  const at = 20;
  fs.corrupt('/db/MANIFEST', at, Uint8Array.of(fs.peek('/db/MANIFEST')[at] as number ^ 0x10));
  await assert.rejects(openLsm('/db', options, env(fs)), (e: unknown) => e instanceof CorruptionError && e.file === '/db/MANIFEST');
});

test('an lz4 block with a flipped byte is detected before decompression', async () => {
  const fs = new MemoryFileSystem();
  const db = await openLsm('/db', { blockBytes: 4096, compression: 'lz4' }, env(fs));
  // Compressible values so the blocks are stored compressed.
  for (let i = 0; i < 3000; i++) await db.put(key(i), utf8(`${'abc'.repeat(30)}${i}`));
  await db.compact();
  const [sst] = await filesEnding(fs, '.sst');
  assert.ok(sst !== undefined);
  fs.corrupt(sst, 50, Uint8Array.of(fs.peek(sst)[50] as number ^ 0xff));
  db.stats();
  await db.close();
  const again = await openLsm('/db', {}, env(fs));
  try {
    await assert.rejects(again.get(key(0)), CorruptionError);
  } finally {
    await again.close();
  }
});

test('a flipped byte in a data block hash index is caught by the block checksum; with the checksum forged, a bad bucket is still never data', async () => {
  const { fs, sst } = await tableDb();
  const file = fs.peek(sst);
  // The first data block: its handle is the first entry of the index block (docs/formats/sstable.md).
  const footer = file.subarray(file.length - 48);
  const indexOffset = readU32(footer, 0);
  const index = new Block(Buffer.from(file.subarray(indexOffset, indexOffset + readU32(footer, 8))), sst, indexOffset);
  index.decode(0);
  const length = readU32(index.buf, index.valueStart + 8);
  const first = new Block(Buffer.from(file.subarray(0, length)), sst, 0);
  const buckets = readU32(file, length - 4) >= 0x80000000 ? (file[length - 6] as number) | ((file[length - 5] as number) << 8) : 0;
  assert.ok(buckets > 0, 'data blocks carry a hash index');
  const probe = Buffer.from(key(0));
  // The bucket holding entry 0 (key 0): its home bucket or a later one.
  let bucketAt = length - 6 - hashBucketBytes * buckets;
  while (file[bucketAt] !== 0) bucketAt += hashBucketBytes;
  assert.equal(first.find(probe, hashKey(probe)[0]), 0);

  const flipped = new MemoryFileSystem();
  await copyDb(fs, flipped);
  flipped.corrupt(sst, bucketAt, Uint8Array.of((file[bucketAt] as number) ^ 0x01));
  let db = await openLsm('/db', options, env(flipped));
  try {
    await assert.rejects(db.get(key(0)), (e: unknown) => e instanceof CorruptionError && /checksum mismatch/.test(e.message));
  } finally {
    await db.close();
  }

  // Point key 0's bucket at entry 1 and forge the checksum: the lookup compares keys, so it misses instead of returning key 1.
  const forged = new MemoryFileSystem();
  await copyDb(fs, forged);
  const block = Buffer.from(file.subarray(0, length + 1));
  block[bucketAt] = 1;
  forged.corrupt(sst, bucketAt, Uint8Array.of(1));
  const crc = Buffer.alloc(4);
  writeU32(crc, 0, crc32(block));
  forged.corrupt(sst, length + 1, crc);
  db = await openLsm('/db', options, env(forged));
  try {
    const got = await db.get(key(0));
    assert.equal(got, undefined);
    assert.equal(fromUtf8((await db.get(key(1)))?.value ?? new Uint8Array()), fromUtf8(value(1)));
  } finally {
    await db.close();
  }
});

async function copyDb(from: MemoryFileSystem, to: MemoryFileSystem): Promise<void> {
  await to.mkdirp('/db');
  for (const name of await from.list('/db')) {
    const out = await to.openAppend(`/db/${name}`, { truncate: true });
    await out.append(from.peek(`/db/${name}`));
    await out.sync();
    await out.close();
  }
  await to.syncDir('/db');
}

test('SSTable format versions: 1 (no hash indexes) and 2 (classic Bloom filter) still read, a newer version is refused by name', async () => {
  const { fs, sst } = await tableDb();
  const setVersion = (target: MemoryFileSystem, path: string, version: number): void => {
    const footerAt = target.peek(path).length - 48;
    const footer = Buffer.from(target.peek(path).subarray(footerAt, footerAt + 40));
    footer[36] = version;
    const crc = Buffer.alloc(4);
    writeU32(crc, 0, crc32(footer));
    target.corrupt(path, footerAt + 36, Uint8Array.of(version));
    target.corrupt(path, footerAt + 40, crc);
  };
  const newer = new MemoryFileSystem();
  await copyDb(fs, newer);
  setVersion(newer, sst, 4);
  await assert.rejects(openLsm('/db', options, env(newer)), (e: unknown) => e instanceof CorruptionError && /format version 4 is not supported \(this build reads 1 to 3\)/.test(e.message));

  // Tables as earlier builds wrote them (classic filter), labelled 2 and 1, and the current format 3.
  for (const version of [1, 2, 3] as const) {
    const path = `/t/${version}.sst`;
    await fs.mkdirp('/t');
    const builder = await TableBuilder.create(fs, path, version, { blockBytes: 1024, bloomBitsPerKey: 10, compression: 'none', formatVersion: version === 3 ? 3 : 2 });
    for (let i = 0; i < 2000; i++) builder.add(key(i), kindPut, value(i), undefined);
    const meta = await builder.finish();
    if (version === 1) setVersion(fs, path, 1);
    const table = await Table.open(fs, path, meta, new BlockCache(1 << 20));
    try {
      assert.equal(table.filter.blocked, version === 3);
      for (let i = 0; i < 2000; i++) {
        const [h1, h2] = hashKey(key(i));
        const block = table.get(Buffer.from(key(i)), h1, h2);
        assert.equal(block === undefined ? undefined : fromUtf8(block.valueCopy()), fromUtf8(value(i)), `version ${version}, key ${i}`);
      }
      let found = 0;
      for (let i = 0; i < 2000; i++) {
        const absent = utf8(`absent-${i}`);
        const [h1, h2] = hashKey(absent);
        if (table.get(Buffer.from(absent), h1, h2) !== undefined) found++;
      }
      assert.equal(found, 0);
    } finally {
      await table.close();
    }
  }
});
