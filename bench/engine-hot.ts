/**
 * engine-hot — the storage engine's CPU per operation as a node uses it,
 * against LevelDB (classic-level) in the same run:
 *
 *   node --import tsx bench/engine-hot.ts [--keys 100000] [--puts 1000000] [--runs 5]
 *       [--sync-puts 30000] [--engines ringkv,leveldb] [--runtime node|tsx] [--json]
 *       [--node-flags=--trace-gc] [--row-cache-mib 8]
 *
 * One engine, `--keys` keys of 100-byte values (everything cached), then
 *   (a) getNow of random existing keys (LevelDB: getSync), as filled (the
 *       memtable), after the puts of (b) (memtable and flushed SSTables, blocks
 *       cached: a node after a SET run) and after a full compaction (every key
 *       in an SSTable), then getNowView (no value copy) where the engine has it;
 *   (b) single puts of random existing keys, sync none, 16 per event-loop
 *       turn (a node answering a pipelined client): ns/op including the
 *       flushes and compactions they cause, then one long run of `--puts`
 *       puts measuring the longest event-loop stall;
 *   (c) 50 concurrent single-put writers with sync always (group commit):
 *       writes per fdatasync, the commit cycle and the fdatasync itself.
 * ns/op is the median over `--runs` runs; bytes allocated per op is JS heap
 * allocation (used heap after minus before, plus what each GC in between
 * freed, from v8.GCProfiler). As bench:engine does, each engine runs in its
 * own child process, compiled by tsc and run by plain node by default.
 */
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { GCProfiler } from 'node:v8';
import { ClassicLevel } from 'classic-level';
import { RealClock, RealFileSystem, silentLogger } from '../src/core/index.ts';
import type { AppendFile, FileSystem } from '../src/core/index.ts';
import { openLsm } from '../src/storage/index.ts';
import type { BatchOp, LsmEngine } from '../src/storage/index.ts';
import { compileBench, repoRoot } from './compile.ts';
import { xorshift } from './engine-workload.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    puts: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    'sync-puts': { type: 'string', default: '30000' },
    engines: { type: 'string', default: 'ringkv,leveldb' },
    runtime: { type: 'string', default: 'node' },
    json: { type: 'boolean', default: false },
    /** Extra node flags for the engine workers, e.g. --node-flags=--trace-gc (their non-JSON output goes to stderr). */
    'node-flags': { type: 'string', default: '' },
    /** ringkv's row cache in MiB (default: the engine's default). */
    'row-cache-mib': { type: 'string' },
    worker: { type: 'string' },
    dir: { type: 'string' },
  },
});

const keyCount = Number(args.keys);
const longPuts = Number(args.puts);
const runs = Number(args.runs);
const syncPuts = Number(args['sync-puts']);
const valueBytes = 100;
const keyBytes = 16;
/** Operations per timed run of (a) and (b). */
const opsPerRun = 200_000;
/** Puts per event-loop turn in (b): a node answering one pipelined (-P16) client read. */
const putsPerTurn = 16;
const syncWriters = 50;

interface Row {
  engine: string;
  phase: string;
  nsPerOp: number;
  /** Process CPU time (all threads) per op: steadier than wall time on a shared machine. */
  cpuNsPerOp?: number;
  allocBytesPerOp?: number;
  extra?: Record<string, number>;
}

// ------------------------------------------------------------------ worker side


/** Keys and values made once, so the harness allocates nothing per operation. */
class Data {
  readonly keys: Buffer[] = [];
  readonly values: Buffer[] = [];
  /** Random key indexes, read cyclically. */
  readonly picks: Uint32Array;
  private at = 0;

  constructor(n: number) {
    const next = xorshift(0x5eed);
    const arena = Buffer.alloc(n * keyBytes);
    for (let i = 0; i + 4 <= arena.length; i += 4) arena.writeUInt32LE(next(), i);
    for (let i = 0; i < n; i++) this.keys.push(arena.subarray(i * keyBytes, (i + 1) * keyBytes));
    const pool = Buffer.alloc(1024 * valueBytes);
    for (let i = 0; i + 4 <= pool.length; i += 4) pool.writeUInt32LE(next(), i);
    for (let i = 0; i < 1024; i++) this.values.push(pool.subarray(i * valueBytes, (i + 1) * valueBytes));
    this.picks = new Uint32Array(1 << 20);
    for (let i = 0; i < this.picks.length; i++) this.picks[i] = next() % n;
  }

  nextKey(): Buffer {
    const i = this.picks[this.at++ & (this.picks.length - 1)] as number;
    return this.keys[i] as Buffer;
  }

  value(i: number): Buffer {
    return this.values[i & 1023] as Buffer;
  }
}

function emit(row: Row): void {
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

interface Measured {
  ms: number;
  cpuMs: number;
  allocBytes: number;
  gcs: number;
  maxGcMs: number;
  /** Old-generation (mark-compact) collections: the pauses that set the tail. */
  markCompacts: number;
  maxMarkCompactMs: number;
}

async function measure(fn: () => Promise<void> | void): Promise<Measured> {
  const profiler = new GCProfiler();
  const before = process.memoryUsage().heapUsed;
  profiler.start();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const after = process.memoryUsage().heapUsed;
  const stats = profiler.stop()?.statistics ?? [];
  let freed = 0;
  let maxGcMs = 0;
  let markCompacts = 0;
  let maxMarkCompactMs = 0;
  for (const s of stats) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    maxGcMs = Math.max(maxGcMs, s.cost / 1000);
    if (s.gcType === 'MarkSweepCompact') {
      markCompacts++;
      maxMarkCompactMs = Math.max(maxMarkCompactMs, s.cost / 1000);
    }
  }
  return { ms, cpuMs: (used.user + used.system) / 1000, allocBytes: after - before + freed, gcs: stats.length, maxGcMs, markCompacts, maxMarkCompactMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function repeat(engine: string, phase: string, ops: number, fn: () => Promise<void> | void): Promise<void> {
  const ns: number[] = [];
  const cpu: number[] = [];
  const alloc: number[] = [];
  for (let r = 0; r < runs; r++) {
    const m = await measure(fn);
    ns.push((m.ms * 1e6) / ops);
    cpu.push((m.cpuMs * 1e6) / ops);
    alloc.push(m.allocBytes / ops);
  }
  emit({ engine, phase, nsPerOp: median(ns), cpuNsPerOp: median(cpu), allocBytesPerOp: median(alloc), extra: { minNsPerOp: Math.round(Math.min(...ns)), maxNsPerOp: Math.round(Math.max(...ns)) } });
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Store {
  getNow(key: Buffer): unknown;
  put(key: Buffer, value: Buffer): Promise<void>;
}

/** `count` puts of random existing keys, `putsPerTurn` awaited one after another per event-loop turn. */
async function putLoop(store: Store, data: Data, count: number, gaps?: { max: number }): Promise<void> {
  let lastEnd = 0;
  for (let i = 0; i < count; ) {
    const start = performance.now();
    if (gaps !== undefined && lastEnd > 0) gaps.max = Math.max(gaps.max, start - lastEnd);
    for (let j = 0; j < putsPerTurn && i < count; j++, i++) await store.put(data.nextKey(), data.value(i));
    lastEnd = performance.now();
    await turn();
  }
}

async function longPutRun(engine: string, store: Store, data: Data, statsOf: () => Record<string, number>): Promise<void> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const gaps = { max: 0 };
  const before = statsOf();
  const m = await measure(async () => {
    histogram.enable();
    // The first samples measure the turns before the run (compilation, GC of the setup): dropped.
    await turn();
    await turn();
    histogram.reset();
    await putLoop(store, data, longPuts, gaps);
    histogram.disable();
  });
  const after = statsOf();
  const extra: Record<string, number> = {
    maxLoopDelayMs: +(histogram.max / 1e6).toFixed(2),
    p99LoopDelayMs: +(histogram.percentile(99) / 1e6).toFixed(2),
    maxGapBetweenTurnsMs: +gaps.max.toFixed(2),
    gcs: m.gcs,
    maxGcMs: +m.maxGcMs.toFixed(2),
    markCompacts: m.markCompacts,
    maxMarkCompactMs: +m.maxMarkCompactMs.toFixed(2),
  };
  for (const k of Object.keys(after)) extra[k] = (after[k] as number) - (before[k] ?? 0);
  emit({ engine, phase: `put-long-${longPuts}`, nsPerOp: (m.ms * 1e6) / longPuts, cpuNsPerOp: (m.cpuMs * 1e6) / longPuts, allocBytesPerOp: m.allocBytes / longPuts, extra });
}

/** Times every fdatasync of the engine's files (AppendFile.sync). */
class TimedFileSystem {
  syncMs = 0;
  syncs = 0;
  readonly fs: FileSystem;

  constructor(inner: FileSystem) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const timing = this;
    this.fs = new Proxy(inner, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'openAppend' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return async (path: string, options?: { truncate?: boolean }): Promise<AppendFile> => {
          const file = await inner.openAppend(path, options);
          const sync = file.sync.bind(file);
          file.sync = async (): Promise<void> => {
            const start = performance.now();
            await sync();
            timing.syncMs += performance.now() - start;
            timing.syncs++;
          };
          return file;
        };
      },
    });
  }
}

/** Writers loop over single puts until `count` puts were issued in all; returns the elapsed ms. */
async function writers(count: number, put: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: syncWriters }, async () => {
    while (next < count) await put(next++);
  }));
  return performance.now() - start;
}

/** The fdatasync alone: append one group's bytes and fdatasync, in a loop, on the same disk. */
function bareFsyncMs(dir: string, bytes: number): number {
  const path = join(dir, 'bare-fsync');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(bytes, 1);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    writeSync(fd, chunk);
    fdatasyncSync(fd);
    times.push(performance.now() - start);
  }
  closeSync(fd);
  rmSync(path);
  return median(times);
}

async function fillRingkv(db: LsmEngine, data: Data): Promise<void> {
  for (let i = 0; i < keyCount; i += 100) {
    const batch: BatchOp[] = [];
    for (let j = i; j < Math.min(keyCount, i + 100); j++) batch.push({ type: 'put', key: data.keys[j] as Buffer, value: data.value(j) });
    await db.write(batch);
  }
}

async function ringkvWorker(dir: string): Promise<void> {
  const data = new Data(keyCount);
  const env = { fs: new RealFileSystem(), clock: new RealClock(), log: silentLogger };
  const rowCache = args['row-cache-mib'] === undefined ? {} : { rowCacheBytes: Math.round(Number(args['row-cache-mib']) * 1024 * 1024) };
  const db = await openLsm(join(dir, 'none'), { sync: 'none', ...rowCache }, env);
  await fillRingkv(db, data);
  const numbers = (): Record<string, number> => {
    const s = db.stats();
    return { flushes: s.flushes as number, compactions: s.compactions as number, trivialMoves: s.trivialMoves as number, writeStalls: s.writeStalls as number };
  };
  const gets = (): void => {
    for (let i = 0; i < opsPerRun; i++) if (db.getNow(data.nextKey()) === undefined) throw new Error('ringkv lost a key');
  };
  await repeat('ringkv', 'getNow-as-filled', opsPerRun, gets);
  await repeat('ringkv', 'put-none', opsPerRun, () => putLoop(db, data, opsPerRun));
  await longPutRun('ringkv', db, data, numbers);
  // Keys spread over the memtable and SSTables written by flushes, blocks cached: a node after a SET run.
  await repeat('ringkv', 'getNow-after-puts', opsPerRun, gets);
  await db.compact();
  const rowsBefore = db.stats();
  await repeat('ringkv', 'getNow-tables', opsPerRun, gets);
  const rowsAfter = db.stats();
  const rowHits = (rowsAfter.rowCacheHits as number) - (rowsBefore.rowCacheHits as number);
  const rowMisses = (rowsAfter.rowCacheMisses as number) - (rowsBefore.rowCacheMisses as number);
  emit({ engine: 'ringkv', phase: 'row-cache', nsPerOp: 0, extra: { hitRatioInGetNowTables: +(rowHits / Math.max(1, rowHits + rowMisses)).toFixed(3), rows: rowsAfter.rowCacheEntries as number, bytes: rowsAfter.rowCacheBytes as number } });
  // The transient reader's path (a RESP GET copying the value out at once), where the engine has it.
  const view = (db as { getNowView?: (key: Uint8Array) => unknown }).getNowView?.bind(db);
  if (view !== undefined) {
    await repeat('ringkv', 'getNowView-tables', opsPerRun, () => {
      for (let i = 0; i < opsPerRun; i++) if (view(data.nextKey()) === undefined) throw new Error('ringkv lost a key');
    });
  }
  await db.close();

  const timed = new TimedFileSystem(new RealFileSystem());
  const sdb = await openLsm(join(dir, 'always'), { sync: 'always' }, { ...env, fs: timed.fs });
  await fillRingkv(sdb, data);
  const fsyncsBefore = sdb.stats().fsyncs as number;
  timed.syncMs = 0;
  timed.syncs = 0;
  const ms = await writers(syncPuts, (i) => sdb.put(data.nextKey(), data.value(i)));
  const fsyncs = (sdb.stats().fsyncs as number) - fsyncsBefore;
  await sdb.close();
  emit({
    engine: 'ringkv',
    phase: `put-always-${syncWriters}-writers`,
    nsPerOp: (ms * 1e6) / syncPuts,
    extra: {
      writesPerFsync: +(syncPuts / fsyncs).toFixed(1),
      cycleUs: +((ms * 1000) / fsyncs).toFixed(0),
      fsyncUs: +((timed.syncMs * 1000) / Math.max(1, timed.syncs)).toFixed(0),
      bareFsyncUs: +(bareFsyncMs(dir, Math.round((syncPuts / fsyncs) * (keyBytes + valueBytes + 13))) * 1000).toFixed(0),
    },
  });
}

async function leveldbWorker(dir: string): Promise<void> {
  const data = new Data(keyCount);
  const open = async (name: string): Promise<ClassicLevel<Uint8Array, Uint8Array>> => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, name), { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    return db;
  };
  const fill = async (db: ClassicLevel<Uint8Array, Uint8Array>): Promise<void> => {
    for (let i = 0; i < keyCount; i += 100) {
      const batch: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
      for (let j = i; j < Math.min(keyCount, i + 100); j++) batch.push({ type: 'put', key: data.keys[j] as Buffer, value: data.value(j) });
      await db.batch(batch);
    }
  };
  const db = await open('none');
  await fill(db);
  const store: Store = { getNow: (k) => db.getSync(k), put: (k, v) => db.put(k, v) };
  const gets = (): void => {
    for (let i = 0; i < opsPerRun; i++) if (db.getSync(data.nextKey()) === undefined) throw new Error('leveldb lost a key');
  };
  await repeat('leveldb', 'getNow-as-filled', opsPerRun, gets);
  await repeat('leveldb', 'put-none', opsPerRun, () => putLoop(store, data, opsPerRun));
  await longPutRun('leveldb', store, data, () => ({}));
  await repeat('leveldb', 'getNow-after-puts', opsPerRun, gets);
  await db.compactRange(Buffer.alloc(0), Buffer.alloc(keyBytes, 0xff));
  await repeat('leveldb', 'getNow-tables', opsPerRun, gets);
  await db.close();

  const sdb = await open('always');
  await fill(sdb);
  const ms = await writers(syncPuts, (i) => sdb.put(data.nextKey(), data.value(i), { sync: true }));
  await sdb.close();
  emit({ engine: 'leveldb', phase: `put-always-${syncWriters}-writers`, nsPerOp: (ms * 1e6) / syncPuts });
}

// ------------------------------------------------------------------ main side



function runWorker(command: string[], engine: string, dir: string): Promise<Row[]> {
  const forward = ['--keys', String(keyCount), '--puts', String(longPuts), '--runs', String(runs), '--sync-puts', String(syncPuts)];
  if (args['row-cache-mib'] !== undefined) forward.push('--row-cache-mib', args['row-cache-mib']);
  return new Promise((resolve, reject) => {
    const flags = (args['node-flags'] ?? '').split(' ').filter((f) => f !== '');
    const child = spawn(process.execPath, [...flags, ...command, '--worker', engine, '--dir', dir, ...forward], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${engine} worker exited with ${code}`));
      else {
        const lines = out.split('\n').filter((l) => l.trim() !== '');
        for (const l of lines) if (!l.startsWith('{')) process.stderr.write(`${engine}: ${l}\n`);
        resolve(lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row));
      }
    });
  });
}

async function main(): Promise<void> {
  if (args.runtime !== 'node' && args.runtime !== 'tsx') throw new Error(`--runtime must be node or tsx, got ${args.runtime}`);
  const engines = (args.engines ?? '').split(',');
  const command = args.runtime === 'tsx' ? ['--import', 'tsx', join(repoRoot, 'bench', 'engine-hot.ts')] : [compileBench('engine-hot')];
  const root = mkdtempSync(join(tmpdir(), 'ringkv-hot-'));
  const rows: Row[] = [];
  try {
    for (const engine of engines) {
      if (!args.json) process.stderr.write(`running ${engine}…\n`);
      const dir = join(root, engine);
      mkdirSync(dir, { recursive: true });
      const r = await runWorker(command, engine, dir);
      rows.push(...r);
      if (args.json) for (const x of r) process.stdout.write(`${JSON.stringify(x)}\n`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (args.json) return;
  console.log(`\nengine-hot: ${keyCount.toLocaleString('en-US')} keys x ${valueBytes} B, runs of ${opsPerRun.toLocaleString('en-US')} ops (median of ${runs}), ` +
    `puts ${putsPerTurn} per loop turn, ${syncWriters} writers under sync always; workers: ${args.runtime === 'tsx' ? 'tsx' : 'plain node, tsc-compiled'}\n`);
  const phases = [...new Set(rows.filter((r) => r.nsPerOp > 0).map((r) => r.phase))];
  const get = (phase: string, engine: string): Row | undefined => rows.find((r) => r.phase === phase && r.engine === engine);
  const header = ['phase', ...engines.flatMap((e) => [`${e} ns/op`, `${e} cpu ns/op`, `${e} B/op`]), engines.length > 1 ? `${engines[0]}/${engines[1]} time` : ''];
  const table: string[][] = [header];
  for (const phase of phases) {
    const cells = engines.flatMap((e) => {
      const r = get(phase, e);
      const n = (x: number | undefined): string => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
      return [n(r?.nsPerOp), n(r?.cpuNsPerOp), n(r?.allocBytesPerOp)];
    });
    const a = get(phase, engines[0] ?? '');
    const b = get(phase, engines[1] ?? '');
    table.push([phase, ...cells, a !== undefined && b !== undefined ? `${(a.nsPerOp / b.nsPerOp).toFixed(2)}x` : '']);
  }
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  for (const row of table) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  '));
  console.log('');
  for (const r of rows) if (r.extra !== undefined) console.log(`${r.engine} ${r.phase}: ${Object.entries(r.extra).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

if (args.worker === undefined) {
  await main();
} else {
  const dir = args.dir ?? join(tmpdir(), 'ringkv-hot');
  mkdirSync(dir, { recursive: true });
  if (args.worker === 'ringkv') await ringkvWorker(dir);
  else if (args.worker === 'leveldb') await leveldbWorker(dir);
  else throw new Error(`unknown engine ${args.worker}: ringkv or leveldb`);
}
