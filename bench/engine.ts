/**
 * bench:engine — the storage engine against LevelDB (classic-level) and a
 * plain JS Map, same workload, same run.
 *
 *   npm run bench:engine -- --keys N [--json] [--engines ringkv,leveldb,...] [--runtime node|tsx]
 *
 * Each engine runs in its own child process (bench/engine-worker.ts) so that
 * peak RSS is per engine. By default the worker is compiled with tsc (the
 * compiler and options that build dist/) and every engine's worker runs as
 * plain `node`, the way a node ships; `--runtime tsx` runs the TypeScript
 * source under `--import tsx` instead (the harness of earlier runs: tsx's
 * loader thread adds RSS and esbuild's name-keeping wrappers add CPU). Phases: fill-batch1, fill-batch100, read-hit,
 * read-miss, scan; then fill-batch1 with sync `always` and 64 concurrent
 * writers (fsyncs/s against writes/s). With --json: one line per phase and
 * engine, {"phase","engine","opsPerSec","peakRssBytes"}.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compileBench, repoRoot } from './compile.ts';

interface Result {
  phase: string;
  engine: string;
  opsPerSec: number;
  peakRssBytes: number;
  /** RSS before the engine opened: Node, modules and the workload's arenas. */
  baselineRssBytes?: number;
  fsyncsPerSec?: number;
  writesPerFsync?: number;
}

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
    engines: { type: 'string' },
    runtime: { type: 'string', default: 'node' },
  },
});
if (args.runtime !== 'node' && args.runtime !== 'tsx') throw new Error(`--runtime must be node or tsx, got ${args.runtime}`);
const keys = Number(args.keys);
if (!Number.isInteger(keys) || keys < 1000) throw new Error(`--keys must be an integer ≥ 1000, got ${args.keys}`);
const allEngines = ['ringkv', 'leveldb', 'leveldb-64', 'map', 'ringkv-sync', 'leveldb-sync'];
const engines = args.engines === undefined ? allEngines : args.engines.split(',');
const phases = ['fill-batch1', 'fill-batch100', 'read-hit', 'read-miss', 'scan'];


const workerCommand: string[] = args.runtime === 'tsx'
  ? ['--import', 'tsx', join(repoRoot, 'bench', 'engine-worker.ts')]
  : [compileBench('engine-worker')];

function runWorker(engine: string, dir: string): Promise<{ results: Result[]; stats: Record<string, unknown> | undefined }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...workerCommand, '--engine', engine, '--keys', String(keys), '--dir', dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`${engine} worker exited with ${code}`));
        return;
      }
      const results: Result[] = [];
      let stats: Record<string, unknown> | undefined;
      for (const line of out.split('\n')) {
        if (line.trim() === '') continue;
        const parsed = JSON.parse(line) as Result & { stats?: Record<string, unknown> };
        if (parsed.phase === 'stats') stats = parsed.stats;
        else results.push(parsed);
      }
      resolve({ results, stats });
    });
  });
}

const fmt = (n: number | undefined): string => (n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`);
const mib = (bytes: number | undefined): string => (bytes === undefined ? '-' : `${Math.round(bytes / 1048576)} MiB`);

const root = mkdtempSync(join(tmpdir(), 'ringkv-bench-'));
const results: Result[] = [];
let ringkvStats: Record<string, unknown> | undefined;
try {
  for (const engine of engines) {
    const dir = join(root, engine);
    if (!args.json) process.stderr.write(`running ${engine} with ${keys.toLocaleString('en-US')} keys…\n`);
    const { results: r, stats } = await runWorker(engine, dir);
    rmSync(dir, { recursive: true, force: true });
    results.push(...r);
    if (engine === 'ringkv') ringkvStats = stats;
    if (args.json) for (const x of r) process.stdout.write(`${JSON.stringify(x)}\n`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

if (!args.json) {
  const get = (phase: string, engine: string): Result | undefined => results.find((r) => r.phase === phase && r.engine === engine);
  const mainEngines = ['ringkv', 'leveldb', 'leveldb-64', 'map'].filter((e) => engines.includes(e));
  const header = ['phase (ops/s)', ...mainEngines, 'ringkv/leveldb', 'ringkv/leveldb-64', 'ringkv/map'];
  const rows: string[][] = [header];
  for (const phase of phases) {
    const r = get(phase, 'ringkv')?.opsPerSec;
    rows.push([
      phase,
      ...mainEngines.map((e) => fmt(get(phase, e)?.opsPerSec)),
      ratio(r, get(phase, 'leveldb')?.opsPerSec),
      ratio(r, get(phase, 'leveldb-64')?.opsPerSec),
      ratio(r, get(phase, 'map')?.opsPerSec),
    ]);
  }
  const peak = (engine: string): number | undefined => {
    const own = results.filter((r) => r.engine === engine);
    return own.length === 0 ? undefined : Math.max(...own.map((r) => r.peakRssBytes));
  };
  rows.push(['peak RSS', ...mainEngines.map((e) => mib(peak(e))), '', '', '']);
  const baseline = (engine: string): number | undefined => results.find((r) => r.engine === engine)?.baselineRssBytes;
  rows.push(['RSS before open', ...mainEngines.map((e) => mib(baseline(e))), '', '', '']);
  rows.push(['peak - before', ...mainEngines.map((e) => {
    const p = peak(e);
    const b = baseline(e);
    return p === undefined || b === undefined ? '-' : mib(p - b);
  }), '', '', '']);
  const widths = header.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  console.log(`\nbench:engine, ${keys.toLocaleString('en-US')} random 16-byte keys, 100-byte values, sync none (leveldb: awaited one at a time; leveldb-64: 64 in flight); ` +
    `workers: ${args.runtime === 'tsx' ? 'node --import tsx on the TypeScript source' : 'plain node on the tsc-compiled worker'}\n`);
  for (const row of rows) console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  '));
  const sync = get('fill-batch1-sync-always-64', 'ringkv-sync');
  const levelSync = get('fill-batch1-sync-always-64', 'leveldb-sync');
  if (sync !== undefined) {
    console.log(`\nfill-batch1, sync always, 64 concurrent writers: ringkv ${fmt(sync.opsPerSec)} writes/s with ${fmt(sync.fsyncsPerSec)} fsyncs/s ` +
      `(${sync.writesPerFsync} writes per fsync)${levelSync === undefined ? '' : `; leveldb (sync: true) ${fmt(levelSync.opsPerSec)} writes/s`}`);
  }
  if (ringkvStats !== undefined) {
    const s = ringkvStats;
    console.log(`\nringkv engine after the run: write amplification ${Number(s.writeAmplification).toFixed(2)} (SSTable bytes per flushed byte), ` +
      `total ${Number(s.totalWriteAmplification).toFixed(2)} (WAL + SSTables per user byte), space amplification ${Number(s.spaceAmplification).toFixed(2)}, ` +
      `block cache hit ratio ${Number(s.blockCacheHitRatio).toFixed(2)}, files per level ${JSON.stringify(s.filesPerLevel)}`);
  }
  const target = (label: string, phase: string, engine: string, want: number): void => {
    const a = get(phase, 'ringkv')?.opsPerSec;
    const b = get(phase, engine)?.opsPerSec;
    if (a === undefined || b === undefined) return;
    console.log(`  ${a / b >= want ? 'met ' : 'MISS'}  ${label}: ${(a / b).toFixed(2)}x (target ≥ ${want}x)`);
  };
  console.log('\ntargets:');
  target('fill-batch1 vs leveldb', 'fill-batch1', 'leveldb', 3);
  target('read-hit vs leveldb', 'read-hit', 'leveldb', 3);
  target('fill-batch100 vs leveldb', 'fill-batch100', 'leveldb', 1);
  target('scan vs leveldb', 'scan', 'leveldb', 1);
  target('fill-batch1 vs map', 'fill-batch1', 'map', 0.25);
  target('read-hit vs map', 'read-hit', 'map', 0.25);
}
