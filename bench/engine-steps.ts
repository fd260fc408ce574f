/**
 * engine-steps — what a flush of one full memtable costs the event loop:
 * the CPU of its sort and the longest synchronous step of the sort and of
 * the table's Bloom filter build, as the flush runs them (in steps).
 *
 *   node --import tsx bench/engine-steps.ts [--keys 150000] [--runs 5]
 *       [--shape shared|node|random]
 *
 * Key shapes: `shared` (redis-benchmark's key:%012d, every key sharing a long
 * prefix), `node` (a node's storage keys: keyspace byte, 2-byte slot, then
 * key:%012d), `random` (16 random bytes). One JSON line per run.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { addToBlockedBloom, bloomHash, newBlockedBloom } from '../src/storage/bloom.ts';
import { Memtable } from '../src/storage/memtable.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '150000' },
    runs: { type: 'string', default: '5' },
    shape: { type: 'string', default: 'shared' },
  },
});
const keyCount = Number(args.keys);
const runs = Number(args.runs);
const shape = args.shape;
if (shape !== 'shared' && shape !== 'node' && shape !== 'random') throw new Error(`--shape must be shared, node or random, got ${JSON.stringify(shape)}`);
/** As TableBuilder.finish and the flush step budget use. */
const filterKeysPerStep = 8192;

function keyOf(x: number): Buffer {
  if (shape === 'random') {
    const k = Buffer.alloc(16);
    for (let i = 0; i < 16; i += 4) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      k.writeUInt32LE(x, i);
    }
    return k;
  }
  const user = Buffer.from(`key:${String(x % 100_000_000).padStart(12, '0')}`);
  if (shape === 'shared') return user;
  return Buffer.concat([Buffer.from([0, (x >>> 8) & 0x3f, x & 0xff]), user]);
}

const hash = new Uint32Array(2);
const value = Buffer.alloc(150, 7);
for (let run = 0; run < runs; run++) {
  const mem = new Memtable(1, 64 << 20);
  const h1s = new Uint32Array(keyCount);
  const h2s = new Uint32Array(keyCount);
  let x = 12345 + run;
  for (let i = 0; i < keyCount; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const key = keyOf(x);
    bloomHash(key, hash);
    h1s[i] = hash[0] as number;
    h2s[i] = hash[1] as number;
    mem.set(key, hash[0] as number, hash[1] as number, i + 1, value, undefined);
  }
  // The sort as the flush runs it: a yield to the event loop whenever a step ran 2 ms.
  let stepStart = performance.now();
  let longestStepMs = 0;
  let steps = 0;
  const cpu0 = process.cpuUsage();
  await mem.sortedIdsInSteps(() => {
    const now = performance.now();
    if (now - stepStart < 2) return undefined;
    longestStepMs = Math.max(longestStepMs, now - stepStart);
    steps++;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        stepStart = performance.now();
        resolve();
      }),
    );
  });
  longestStepMs = Math.max(longestStepMs, performance.now() - stepStart);
  const cpu = process.cpuUsage(cpu0);
  let longestFilterStepMs = 0;
  const filter = newBlockedBloom(mem.entries, 10);
  for (let from = 0; from < keyCount; from += filterKeysPerStep) {
    const t0 = performance.now();
    addToBlockedBloom(filter, h1s, h2s, from, Math.min(keyCount, from + filterKeysPerStep));
    longestFilterStepMs = Math.max(longestFilterStepMs, performance.now() - t0);
  }
  console.log(
    JSON.stringify({
      shape,
      keys: mem.entries,
      sortCpuMs: +((cpu.user + cpu.system) / 1000).toFixed(1),
      sortYields: steps,
      longestSortStepMs: +longestStepMs.toFixed(2),
      longestFilterStepMs: +longestFilterStepMs.toFixed(2),
    }),
  );
}
