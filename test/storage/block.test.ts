/** Block search (bytes and integer-prefix paths, hash index) against a linear reference. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CorruptionError } from '../../src/core/index.ts';
import { Block, BlockBuilder, hashBucketBytes, hashTag, kindPut, maxHashIndexedEntries } from '../../src/storage/block.ts';
import { hashKey } from '../../src/storage/sstable.ts';

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 7, max: 3 }).map((k) => Buffer.from(k));

test('lowerBound and upperBoundBefore agree with a linear scan for small and large blocks', () => {
  fc.assert(
    fc.property(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 600, size: 'max', selector: (k) => k.toString('hex') }), fc.array(keyArb, { maxLength: 40 }), (keys, probes) => {
      keys.sort(Buffer.compare);
      const builder = new BlockBuilder(1024);
      for (const k of keys) builder.add(k, kindPut, Buffer.from('v'), undefined);
      const block = new Block(builder.finish(), 'test.sst', 0);
      // Each probe is searched twice: the second search of a large block uses the prefix index.
      for (const probe of [...probes, ...probes, ...keys.slice(0, 20), ...keys.slice(0, 20)]) {
        const lower = keys.findIndex((k) => Buffer.compare(k, probe) >= 0);
        assert.equal(block.lowerBound(probe), lower === -1 ? keys.length : lower);
        let last = -1;
        keys.forEach((k, i) => {
          if (Buffer.compare(k, probe) <= 0) last = i;
        });
        assert.equal(block.upperBoundBefore(probe), last);
      }
    }),
    { numRuns: 60, endOnFailure: true },
  );
});

test('find with the block hash index agrees with a linear scan (hits, misses, collisions, blocks too big to index)', () => {
  const hashOf = (k: Uint8Array): number => hashKey(k)[0];
  fc.assert(
    fc.property(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 300, size: 'max', selector: (k) => k.toString('hex') }), fc.array(keyArb, { maxLength: 40 }), (keys, probes) => {
      keys.sort(Buffer.compare);
      const builder = new BlockBuilder(1024, true);
      for (const k of keys) builder.add(k, kindPut, Buffer.from('v'), undefined, hashOf(k));
      const block = new Block(builder.finish(), 'test.sst', 0);
      assert.equal(block.count, keys.length);
      for (const probe of [...probes, ...keys]) {
        const expected = keys.findIndex((k) => Buffer.compare(k, probe) === 0);
        assert.equal(block.find(probe, hashOf(probe)), expected);
      }
      // Scans and range searches see the same entries as without the index.
      for (const probe of probes) {
        const lower = keys.findIndex((k) => Buffer.compare(k, probe) >= 0);
        assert.equal(block.lowerBound(probe), lower === -1 ? keys.length : lower);
      }
    }),
    { numRuns: 80, endOnFailure: true },
  );
});

test('a block hash index: blocks of up to 255 entries carry one, bigger ones fall back to search', () => {
  for (const n of [1, 255, 256]) {
    const builder = new BlockBuilder(1024, true);
    const keys = Array.from({ length: n }, (_, i) => Buffer.from(String(i).padStart(4, '0')));
    for (const k of keys) builder.add(k, kindPut, Buffer.from('v'), undefined, hashKey(k)[0]);
    const bytes = builder.finish();
    const flagged = bytes.readUInt32LE(bytes.length - 4) >= 0x80000000;
    assert.equal(flagged, n <= maxHashIndexedEntries, `${n} entries`);
    const block = new Block(bytes, 'test.sst', 0);
    for (const [i, k] of keys.entries()) assert.equal(block.find(k, hashKey(k)[0]), i);
  }
});

test('a hash bucket naming an entry out of range is corruption; one naming another entry is a miss, never that entry', () => {
  const keys = Array.from({ length: 20 }, (_, i) => Buffer.from(`key-${i}`)).sort(Buffer.compare);
  const builder = new BlockBuilder(1024, true);
  for (const k of keys) builder.add(k, kindPut, Buffer.from('v'), undefined, hashKey(k)[0]);
  const bytes = Buffer.from(builder.finish());
  const buckets = bytes.readUInt16LE(bytes.length - 6);
  const hashStart = bytes.length - 6 - hashBucketBytes * buckets;
  const probe = keys[7] as Buffer;
  // The bucket that holds entry 7 (its home bucket or a later one, by linear probing).
  let at = hashStart;
  while (bytes[at] !== 7) at += hashBucketBytes;
  assert.equal(bytes[at + 1], hashTag(hashKey(probe)[0]));
  const wrongEntry = Buffer.from(bytes);
  wrongEntry[at] = 3;
  assert.equal(new Block(wrongEntry, 'test.sst', 0).find(probe, hashKey(probe)[0]), -1);
  const outOfRange = Buffer.from(bytes);
  outOfRange[at] = 200;
  assert.throws(() => new Block(outOfRange, 'test.sst', 0).find(probe, hashKey(probe)[0]), CorruptionError);
  const badSize = Buffer.from(bytes);
  badSize.writeUInt16LE(5, bytes.length - 6);
  assert.throws(() => new Block(badSize, 'test.sst', 0), CorruptionError);
});
