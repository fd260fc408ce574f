import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesEqual } from '../../src/core/index.ts';

test('bytesEqual agrees with Buffer.compare below and above its JS-loop length, on views too', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 199 }), fc.integer({ min: 0, max: 255 }), (bytes, at, flip) => {
      // A view into a larger buffer, as keys from the parser or the network are.
      const backing = new Uint8Array(bytes.length + 8);
      backing.set(bytes, 4);
      const view = backing.subarray(4, 4 + bytes.length);
      assert.equal(bytesEqual(bytes, view), true);
      const other = Uint8Array.from(bytes);
      if (other.length > 0) other[at % other.length] = ((other[at % other.length] as number) ^ (flip | 1)) & 0xff;
      assert.equal(bytesEqual(bytes, other), Buffer.compare(Buffer.from(bytes), Buffer.from(other)) === 0);
      assert.equal(bytesEqual(bytes, bytes.subarray(0, Math.max(0, bytes.length - 1))), bytes.length === 0);
    }),
    { numRuns: 500 },
  );
});
