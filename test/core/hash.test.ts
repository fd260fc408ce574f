import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32, crc32Range, fnv1a32, fnv1a32Latin1 } from '../../src/core/index.ts';

test('crc32Range gives the CRC-32 check value of "123456789"', () => {
  const data = Buffer.from('xx123456789yy', 'latin1');
  assert.equal(crc32Range(data, 2, 11), 0xcbf43926);
  assert.equal(crc32Range(data, 5, 5), 0);
});

test('crc32Range equals crc32 of the same range, on both sides of the JS/zlib switch', () => {
  const data = new Uint8Array(1200);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  for (let len = 0; len <= 600; len++) {
    for (const start of [0, 1, 3, 7, 9]) {
      assert.equal(crc32Range(data, start, start + len), crc32(data.subarray(start, start + len)), `length ${len} at ${start}`);
    }
  }
});

test('crc32Range equals crc32 on random bytes and ranges', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 700 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const start = bytes.length === 0 ? 0 : a % bytes.length;
      const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
      assert.equal(crc32Range(bytes, start, end), crc32(bytes.subarray(start, end)));
    }),
    { numRuns: 500 },
  );
});

test('fnv1a32 of a range equals it of the subarray, and fnv1a32Latin1 equals it of the latin1 bytes', () => {
  // Reference values of FNV-1a 32 (the published test vectors).
  assert.equal(fnv1a32(Buffer.from('')), 0x811c9dc5);
  assert.equal(fnv1a32(Buffer.from('a')), 0xe40c292c);
  assert.equal(fnv1a32(Buffer.from('foobar')), 0xbf9cf968);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const start = bytes.length === 0 ? 0 : a % bytes.length;
      const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
      assert.equal(fnv1a32(bytes, start, end), fnv1a32(bytes.subarray(start, end)));
      assert.equal(fnv1a32Latin1(Buffer.from(bytes).toString('latin1')), fnv1a32(bytes));
    }),
    { numRuns: 300 },
  );
});
