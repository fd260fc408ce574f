/**
 * One engine's run of bench:engine, in its own process so that its peak RSS
 * is its own. Prints one JSON line per phase on stdout.
 * Usage: node --import tsx bench/engine-worker.ts --engine ringkv|leveldb|leveldb-64|map|ringkv-sync|leveldb-sync --keys N --dir D [--memory]
 * (--memory: per-phase peaks of process.memoryUsage() on stderr).
 */
import { parseArgs } from 'node:util';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { ClassicLevel } from 'classic-level';
import { RealClock, RealFileSystem, silentLogger } from '../src/core/index.ts';
import { openLsm } from '../src/storage/index.ts';
import type { BatchOp, LsmEngine } from '../src/storage/index.ts';
import { Workload } from './engine-workload.ts';

const { values: args } = parseArgs({
  options: { engine: { type: 'string' }, keys: { type: 'string' }, dir: { type: 'string' }, memory: { type: 'boolean', default: false } },
});
const engine = args.engine ?? 'ringkv';
const n = Number(args.keys ?? 100_000);
const dir = args.dir ?? '/tmp/ringkv-bench';
const syncWriters = 64;
/** The sync `always` phase writes at most this many keys (each group waits for a real fdatasync). */
const maxSyncKeys = 50_000;

function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * With --memory: samples process.memoryUsage() whenever the event loop turns
 * and prints each phase's peaks (MiB) on stderr, to see where RSS goes.
 */
const memoryPeaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0, newSpace: 0, oldSpace: 0 };
function sampleMemory(): void {
  const m = process.memoryUsage();
  for (const k of ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const) memoryPeaks[k] = Math.max(memoryPeaks[k], m[k]);
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space') memoryPeaks.newSpace = Math.max(memoryPeaks.newSpace, space.space_size);
    if (space.space_name === 'old_space') memoryPeaks.oldSpace = Math.max(memoryPeaks.oldSpace, space.space_size);
  }
}
if (args.memory) setInterval(sampleMemory, 20).unref();

/** RSS once Node, the modules and the workload's key/value arenas are loaded, before any engine opens. */
let baselineRssBytes = 0;

function report(phase: string, ops: number, ms: number, extra: Record<string, number | string> = {}): void {
  if (args.memory) {
    sampleMemory();
    const mib = Object.entries(memoryPeaks).map(([k, v]) => `${k} ${Math.round(v / 1048576)}`).join(', ');
    process.stderr.write(`${engine} ${phase} peak MiB: ${mib}\n`);
    for (const k of Object.keys(memoryPeaks) as (keyof typeof memoryPeaks)[]) memoryPeaks[k] = 0;
  }
  process.stdout.write(`${JSON.stringify({ phase, engine, opsPerSec: Math.round((ops * 1000) / ms), peakRssBytes: peakRssBytes(), baselineRssBytes, ...extra })}\n`);
}

async function timed(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Runs `count` operations with `concurrency` in flight. */
async function inFlight(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await op(next++);
  }));
}

const ringkvEnv = () => ({ fs: new RealFileSystem(), clock: new RealClock(), log: silentLogger });

async function ringkv(w: Workload): Promise<void> {
  const { order } = w;
  let db: LsmEngine = await openLsm(join(dir, 'fill1'), { sync: 'none' }, ringkvEnv());
  report('fill-batch1', n, await timed(async () => {
    for (let i = 0; i < n; i++) await db.put(w.key(i), w.value(i));
  }));
  await db.close();
  rmSync(join(dir, 'fill1'), { recursive: true, force: true });
  db = await openLsm(join(dir, 'fill100'), { sync: 'none' }, ringkvEnv());
  report('fill-batch100', n, await timed(async () => {
    for (let i = 0; i < n; i += 100) {
      const batch: BatchOp[] = [];
      for (let j = i; j < Math.min(n, i + 100); j++) batch.push({ type: 'put', key: w.key(j), value: w.value(j) });
      await db.write(batch);
    }
  }));
  let found = 0;
  report('read-hit', n, await timed(async () => {
    for (let i = 0; i < n; i++) if ((await db.get(w.key(order[i] as number))) !== undefined) found++;
  }));
  if (found !== n) throw new Error(`ringkv read-hit found ${found} of ${n}`);
  report('read-miss', n, await timed(async () => {
    for (let i = 0; i < n; i++) if ((await db.get(w.missing(i))) !== undefined) throw new Error('read-miss found a key');
  }));
  let scanned = 0;
  report('scan', n, await timed(async () => {
    for await (const _ of db.iterate()) scanned++;
  }));
  if (scanned !== n) throw new Error(`ringkv scan saw ${scanned} of ${n}`);
  const stats = db.stats();
  process.stdout.write(`${JSON.stringify({ phase: 'stats', engine, stats })}\n`);
  await db.close();
}

async function ringkvSync(w: Workload): Promise<void> {
  const count = Math.min(n, maxSyncKeys);
  const db = await openLsm(join(dir, 'sync'), { sync: 'always' }, ringkvEnv());
  const ms = await timed(() => inFlight(count, syncWriters, (i) => db.put(w.key(i), w.value(i))));
  const fsyncs = db.stats().fsyncs as number;
  report('fill-batch1-sync-always-64', count, ms, { fsyncsPerSec: Math.round((fsyncs * 1000) / ms), writesPerFsync: +(count / fsyncs).toFixed(1) });
  await db.close();
}

async function leveldb(w: Workload, concurrency: number): Promise<void> {
  const { order } = w;
  const open = async (name: string): Promise<ClassicLevel<Uint8Array, Uint8Array>> => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, name), { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    return db;
  };
  let db = await open('fill1');
  report('fill-batch1', n, await timed(async () => {
    if (concurrency === 1) for (let i = 0; i < n; i++) await db.put(w.key(i), w.value(i));
    else await inFlight(n, concurrency, (i) => db.put(w.key(i), w.value(i)));
  }));
  await db.close();
  rmSync(join(dir, 'fill1'), { recursive: true, force: true });
  db = await open('fill100');
  report('fill-batch100', n, await timed(async () => {
    for (let i = 0; i < n; i += 100) {
      const batch: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
      for (let j = i; j < Math.min(n, i + 100); j++) batch.push({ type: 'put', key: w.key(j), value: w.value(j) });
      await db.batch(batch);
    }
  }));
  let found = 0;
  report('read-hit', n, await timed(async () => {
    const get = async (i: number): Promise<void> => {
      if ((await db.get(w.key(order[i] as number))) !== undefined) found++;
    };
    if (concurrency === 1) for (let i = 0; i < n; i++) await get(i);
    else await inFlight(n, concurrency, get);
  }));
  if (found !== n) throw new Error(`leveldb read-hit found ${found} of ${n}`);
  report('read-miss', n, await timed(async () => {
    const get = async (i: number): Promise<void> => {
      if ((await db.get(w.missing(i))) !== undefined) throw new Error('read-miss found a key');
    };
    if (concurrency === 1) for (let i = 0; i < n; i++) await get(i);
    else await inFlight(n, concurrency, get);
  }));
  let scanned = 0;
  report('scan', n, await timed(async () => {
    for await (const _ of db.iterator()) scanned++;
  }));
  if (scanned !== n) throw new Error(`leveldb scan saw ${scanned} of ${n}`);
  await db.close();
}

async function leveldbSync(w: Workload): Promise<void> {
  const count = Math.min(n, maxSyncKeys);
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'sync'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  const ms = await timed(() => inFlight(count, syncWriters, (i) => db.put(w.key(i), w.value(i), { sync: true })));
  report('fill-batch1-sync-always-64', count, ms);
  await db.close();
}

function latin1(key: Buffer): string {
  return key.toString('latin1');
}

async function map(w: Workload): Promise<void> {
  const { order } = w;
  let m = new Map<string, Uint8Array>();
  report('fill-batch1', n, await timed(() => {
    for (let i = 0; i < n; i++) m.set(latin1(w.key(i)), Uint8Array.from(w.value(i)));
  }));
  m = new Map();
  report('fill-batch100', n, await timed(() => {
    for (let i = 0; i < n; i += 100) for (let j = i; j < Math.min(n, i + 100); j++) m.set(latin1(w.key(j)), Uint8Array.from(w.value(j)));
  }));
  let found = 0;
  report('read-hit', n, await timed(() => {
    for (let i = 0; i < n; i++) if (m.get(latin1(w.key(order[i] as number))) !== undefined) found++;
  }));
  if (found !== n) throw new Error(`map read-hit found ${found} of ${n}`);
  report('read-miss', n, await timed(() => {
    for (let i = 0; i < n; i++) if (m.get(latin1(w.missing(i))) !== undefined) throw new Error('read-miss found a key');
  }));
  let scanned = 0;
  // A Map has no order: its "scan" is an unordered walk (a ceiling, not a like-for-like).
  report('scan', n, await timed(() => {
    for (const _ of m) scanned++;
  }));
  if (scanned !== n) throw new Error(`map scan saw ${scanned}`);
}

const workload = new Workload(n);
baselineRssBytes = process.memoryUsage().rss;
switch (engine) {
  case 'ringkv':
    await ringkv(workload);
    break;
  case 'ringkv-sync':
    await ringkvSync(workload);
    break;
  case 'leveldb':
    await leveldb(workload, 1);
    break;
  case 'leveldb-64':
    await leveldb(workload, 64);
    break;
  case 'leveldb-sync':
    await leveldbSync(workload);
    break;
  case 'map':
    await map(workload);
    break;
  default:
    throw new Error(`unknown engine ${engine}`);
}
