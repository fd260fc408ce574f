/** Block search (bytes and integer-prefix paths) against a linear reference. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Block, BlockBuilder, kindPut } from '../../src/storage/block.ts';

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
