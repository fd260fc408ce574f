/** The node's engine drops objects whose versions all died past the tombstone grace period when it compacts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, VirtualClock, silentLogger, utf8 } from '../../src/core/index.ts';
import { applyConfig, defaultConfig } from '../../src/node/config.ts';
import { createNodeStore, openNodeEngine } from '../../src/node/storage.ts';
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

test('the compaction filter and the replica store share the configured grace period, TTL-expired values included', async () => {
  const clock = new VirtualClock();
  const env = { fs: new MemoryFileSystem(), clock, log: silentLogger };
  const graceSeconds = 60;
  const config = applyConfig({ ...defaultConfig(), dataDir: '/data', walSync: 'none' as const }, { tombstoneGraceSeconds: String(graceSeconds) }, 'test');
  const engine = await openNodeEngine(config, env);
  const store = createNodeStore(config, engine, clock, 'n1');
  assert.equal(store.tombstoneGraceMs, graceSeconds * 1000, 'the store purges with the configured grace');
  const expiresAtMs = clock.wallMs() + 1000;
  for (let i = 0; i < 10; i++) await (await store.coordinatePut(key(i), utf8(`short-lived ${i}`), null, { expiresAtMs })).durable;
  for (let i = 10; i < 20; i++) await (await store.coordinatePut(key(i), utf8(`kept ${i}`), null)).durable;
  for (let i = 20; i < 30; i++) await (await store.coordinatePut(key(i), utf8(`deleted ${i}`), null)).durable;
  for (let i = 20; i < 30; i++) await (await store.coordinateDelete(key(i), null)).durable;
  const keys = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const entry of engine.iterate()) out.push(Buffer.from(entry.key).toString('latin1'));
    return out;
  };

  // Flushes do not run the filter: put everything in a table first, so each later compaction merges it.
  await engine.compact();

  // Expired and deleted, but within the grace period: they must still supersede stale copies.
  await clock.advance(graceSeconds * 1000 - 1000);
  await (await store.coordinatePut(key(100), utf8('new'), null)).durable;
  await engine.compact();
  assert.equal((await keys()).length, 31, 'nothing is dropped a second before the grace period ends');

  // Past the configured minute, far short of the 10-day default. A new write gives compaction a file to merge.
  await clock.advance(3000);
  await (await store.coordinatePut(key(101), utf8('newer'), null)).durable;
  await engine.compact();
  assert.equal((await keys()).length, 12, 'the expired values and tombstones are dropped once past the configured grace');
  for (let i = 10; i < 20; i++) assert.ok((await store.read(key(i)))?.versions.some((v) => v.kind === 'value'), `value ${i} kept`);
  await engine.close();
});
