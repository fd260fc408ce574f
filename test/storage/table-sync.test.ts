/**
 * tableBytesPerSync (RocksDB's bytes_per_sync): an SSTable being written is
 * synced every so many bytes, so its dirty pages never pile up for one final
 * fdatasync; the table reads back the same either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, utf8 } from '../../src/core/index.ts';
import { BlockCache } from '../../src/storage/block-cache.ts';
import { Table, TableBuilder, hashKey } from '../../src/storage/sstable.ts';

const key = (i: number): Uint8Array => utf8(`key:${String(i).padStart(6, '0')}`);

test('tableBytesPerSync syncs a table while it is written (0: only when finished); the table reads back either way', async () => {
  for (const every of [0, 512 * 1024]) {
    const fs = new MemoryFileSystem();
    const path = `/t-${every}.sst`;
    const builder = await TableBuilder.create(fs, path, 1, { blockBytes: 4096, bloomBitsPerKey: 10, compression: 'none', tableBytesPerSync: every });
    const big = Buffer.alloc(1000, 0x5a);
    const count = 3000;
    for (let i = 0; i < count; i++) {
      builder.add(key(i), 1, big, undefined);
      await builder.drain();
    }
    const syncsBeforeFinish = fs.stats.syncs;
    const meta = await builder.finish();
    const expected = every === 0 ? 0 : Math.floor(meta.size / every) - 1;
    if (every === 0) assert.equal(syncsBeforeFinish, 0);
    else assert.ok(syncsBeforeFinish >= expected && syncsBeforeFinish <= expected + 2, `${syncsBeforeFinish} syncs while writing ${meta.size} bytes`);
    assert.equal(fs.stats.syncs, syncsBeforeFinish + 1, 'one more when finished');
    const table = await Table.open(fs, path, meta, new BlockCache(1 << 20));
    for (const i of [0, 1234, count - 1]) {
      const [h1, h2] = hashKey(key(i));
      const block = table.get(Buffer.from(key(i)), h1, h2);
      assert.ok(block !== undefined, `key ${i}`);
      assert.deepEqual(block.buf.subarray(block.valueStart, block.valueEnd), big);
    }
    await table.close();
  }
});
