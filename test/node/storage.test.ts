/** The node's engine drops objects whose versions all died past the tombstone grace period when it compacts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, VirtualClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { defaultConfig } from '../../src/node/config.ts';
import { openNodeEngine } from '../../src/node/storage.ts';
import { ReplicaStore, defaultTombstoneGraceMs } from '../../src/replication/index.ts';

const key = (i: number): Uint8Array => utf8(`k${i}`);

test('compaction drops tombstones past the grace period and keeps live values and young tombstones', async () => {
  const clock = new VirtualClock();
  const env = { fs: new MemoryFileSystem(), clock, log: silentLogger };
  const config = { ...defaultConfig(), dataDir: '/data', walSync: 'none' as const };
  const engine = await openNodeEngine(config, env);
  const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
  for (let i = 0; i < 200; i++) await (await store.coordinatePut(key(i), utf8(`v${i}`), null)).durable;
  for (let i = 0; i < 100; i++) await (await store.coordinateDelete(key(i), null)).durable;
  await engine.compact();
  // Inside the grace period every tombstone must stay, or a stale replica could resurrect the key.
  assert.equal(engine.stats().approximateKeys, 200);

  await clock.advance(defaultTombstoneGraceMs + 1000);
  // The newest tombstones die later than the rest: delete a few more now, they must survive.
  for (let i = 100; i < 110; i++) await (await store.coordinateDelete(key(i), null)).durable;
  await engine.compact();
  const left: string[] = [];
  for await (const entry of engine.iterate()) left.push(Buffer.from(entry.key).toString('latin1'));
  assert.equal(left.length, 100, 'the 100 old tombstones were dropped; 90 values and 10 young tombstones stay');
  for (let i = 100; i < 200; i++) {
    const got = await store.read(key(i));
    if (i < 110) assert.ok(got !== undefined && got.versions.every((v) => v.kind === 'tombstone'), `young tombstone ${i} kept`);
    else assert.ok(got !== undefined && got.versions.some((v) => v.kind === 'value'), `value ${i} kept`);
  }
  await engine.close();
});

test('the node\'s engine takes its memtable budget from memtableMb', async () => {
  const clock = new VirtualClock();
  const env = { fs: new MemoryFileSystem(), clock, log: silentLogger };
  const engine = await openNodeEngine({ ...defaultConfig(), dataDir: '/data', walSync: 'none' as const, memtableMb: 1 }, env);
  // ~1.1 MiB of 1 KiB values through a 1 MiB memtable: one flush at least.
  for (let i = 0; i < 1100; i++) await engine.put(key(i), Buffer.alloc(1024, i & 0xff));
  assert.ok((engine.stats().flushes as number) >= 1, `flushes: ${engine.stats().flushes}`);
  await engine.close();
  const roomy = await openNodeEngine({ ...defaultConfig(), dataDir: '/data2', walSync: 'none' as const }, env);
  for (let i = 0; i < 1100; i++) await roomy.put(key(i), Buffer.alloc(1024, i & 0xff));
  assert.equal(roomy.stats().flushes, 0, 'the default 64 MiB holds them all');
  await roomy.close();
});
