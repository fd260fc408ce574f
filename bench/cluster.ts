/**
 * bench:cluster — ringkv's three-node cluster against a three-member etcd
 * cluster, same load generator, same run (issue 5, "Benchmark").
 *
 *   npm run bench:cluster -- [--json] [--seconds S] [--clients 50] [--keys 100000]
 *       [--distribution uniform|zipfian] [--targets ringkv-http,ringkv-resp,etcd]
 *       [--cpu-prof DIR]
 *
 * Per target: start a fresh cluster on loopback (temp dirs), preload every
 * key (untimed), run the closed-loop mix for S seconds (`healthy`), SIGKILL
 * one replica (ringkv: node n3; etcd: a member that is not the leader), run
 * S more seconds (`one-down`), stop everything. ringkv: N = 3, W = 2, R = 2,
 * WAL sync `always` (group commit). With --json, one line per target and
 * phase: {"target","phase","opsPerSec","p50Ms","p99Ms","p999Ms"[,"errors"]}.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Driver } from './load/driver.ts';
import { EtcdDriver } from './load/etcd.ts';
import { startEtcdCluster } from './load/etcd-cluster.ts';
import { preload, runPhase, type PhaseResult } from './load/generator.ts';
import { cpuMeter, installCleanupHooks, type Child } from './load/processes.ts';
import { startRingkvCluster } from './load/ringkv-cluster.ts';
import { RingkvHttpDriver } from './load/ringkv-http.ts';
import { RingkvRespDriver } from './load/ringkv-resp.ts';
import { keyChooser, ValuePool, type KeyDistribution } from './load/workload.ts';

const allTargets = ['ringkv-http', 'ringkv-resp', 'etcd'] as const;
type Target = (typeof allTargets)[number];
type Phase = 'healthy' | 'one-down';

const replicationFactor = 3;
const writeQuorum = 2;
const readQuorum = 2;
const valueBytes = 100;
const readFraction = 0.5;
/** Preload writes in flight: more than the measured clients, so group commit batches and the untimed part stays short. */
const preloadConcurrency = 200;
/** Same seed for every target: the same clients draw the same keys and operations. */
const workloadSeed = 5;

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '20' },
    clients: { type: 'string', default: '50' },
    keys: { type: 'string', default: '100000' },
    distribution: { type: 'string', default: 'uniform' },
    targets: { type: 'string', default: allTargets.join(',') },
    'cpu-prof': { type: 'string' },
  },
});

function positiveInt(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const seconds = positiveInt('seconds', args.seconds, 1, 600);
const clients = positiveInt('clients', args.clients, 1, 1000);
const keys = positiveInt('keys', args.keys, 100, 10_000_000);
if (args.distribution !== 'uniform' && args.distribution !== 'zipfian') throw new Error(`--distribution must be uniform or zipfian, got ${JSON.stringify(args.distribution)}`);
const distribution: KeyDistribution = args.distribution;
const targets = args.targets.split(',').map((t) => t.trim());
for (const t of targets) if (!(allTargets as readonly string[]).includes(t)) throw new Error(`--targets: unknown target ${JSON.stringify(t)}; known: ${allTargets.join(', ')}`);
const cpuProfDir = args['cpu-prof'] === undefined ? undefined : resolve(args['cpu-prof']);

/** The machine's 1-minute load average: the figures mean little when other work competes for the cores. */
const loadAverage = (): string => (loadavg()[0] ?? 0).toFixed(1);

const progress = (text: string): void => {
  process.stderr.write(`[bench:cluster ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
};

interface Row {
  target: Target;
  phase: Phase;
  result: PhaseResult;
  /** 1-minute load average when the phase started. */
  load: string;
  /** CPU (user + system) of the target's processes per successful operation, µs: steadier than ops/s on a shared machine. */
  serverCpuUsPerOp: number;
  /** The same for this process (the load generator and its drivers). */
  generatorCpuUsPerOp: number;
  note: string;
}

interface Setup {
  driver: Driver;
  /** Writes the preload (untimed); ringkv's RESP target preloads over HTTP, which keeps the contexts it gets. */
  preloadDriver: Driver;
  /** The pids of the target's processes. */
  pids(): number[];
  /** SIGKILLs one replica; returns what was killed. */
  killOne(): Promise<string>;
  stop(): Promise<void>;
}

async function setUp(target: Target, dir: string): Promise<Setup> {
  if (target === 'etcd') {
    const cluster = await startEtcdCluster(dir);
    const driver = new EtcdDriver(cluster.members.map((m) => m.client), cluster.prefix, keys);
    return {
      driver,
      preloadDriver: driver,
      pids: () => cluster.members.map((m) => m.child.pid),
      async killOne() {
        const leader = await cluster.leaderIndex();
        const victimIndex = (leader + 1) % cluster.members.length;
        const victim = cluster.members[victimIndex];
        if (victim === undefined) throw new Error('no etcd member to kill');
        await victim.child.kill9();
        return `etcd ${victim.name} (a follower; leader ${cluster.members[leader]?.name})`;
      },
      stop: async () => {
        await driver.close();
        await cluster.stop();
      },
    };
  }
  const cluster = await startRingkvCluster({ dir, nodes: 3, replicationFactor, walSync: 'always', label: target, ...(cpuProfDir === undefined ? {} : { cpuProfDir }) });
  const httpDriver = new RingkvHttpDriver(cluster.nodes.map((n) => n.http), { readQuorum, writeQuorum });
  const driver: Driver = target === 'ringkv-http' ? httpDriver : new RingkvRespDriver(cluster.nodes.map((n) => n.resp), { readQuorum, writeQuorum });
  return {
    driver,
    preloadDriver: httpDriver,
    pids: () => cluster.nodes.map((n) => n.child.pid),
    async killOne() {
      const victim = cluster.nodes[cluster.nodes.length - 1] as { id: string; child: Child };
      await victim.child.kill9();
      return `ringkv ${victim.id}`;
    },
    stop: async () => {
      await driver.close();
      if (driver !== httpDriver) await httpDriver.close();
      await cluster.stop();
    },
  };
}

/** Runs a phase and charges the CPU the target's processes and this process used to its operations. */
async function measured(setup: Setup, run: () => Promise<PhaseResult>): Promise<{ result: PhaseResult; serverCpuUsPerOp: number; generatorCpuUsPerOp: number }> {
  const server = cpuMeter(setup.pids);
  const generatorStart = process.cpuUsage();
  const result = await run();
  const generator = process.cpuUsage(generatorStart);
  const ops = Math.max(1, result.ops);
  return { result, serverCpuUsPerOp: server.stop() / ops, generatorCpuUsPerOp: (generator.user + generator.system) / ops };
}

async function runTarget(target: Target, root: string): Promise<Row[]> {
  const dir = mkdtempSync(join(root, `${target}-`));
  progress(`${target}: starting the cluster`);
  const setup = await setUp(target, dir);
  try {
    const values = new ValuePool(valueBytes);
    const chooser = keyChooser(distribution, keys);
    progress(`${target}: preloading ${keys.toLocaleString('en-US')} keys`);
    const loaded = await preload(setup.preloadDriver, keys, preloadConcurrency, values);
    progress(`${target}: preloaded in ${loaded.seconds.toFixed(1)} s (${Math.round(keys / loaded.seconds).toLocaleString('en-US')} puts/s, ${loaded.errors} retried)`);
    const phaseOptions = { clients, seconds, readFraction, keys: chooser, values, seed: workloadSeed };
    const healthyLoad = loadAverage();
    progress(`${target}: healthy phase, ${seconds} s (load average ${healthyLoad})`);
    const healthy = await measured(setup, () => runPhase(setup.driver, phaseOptions));
    const killed = await setup.killOne();
    const oneDownLoad = loadAverage();
    progress(`${target}: killed ${killed} with SIGKILL; one-down phase, ${seconds} s (load average ${oneDownLoad})`);
    const oneDown = await measured(setup, () => runPhase(setup.driver, { ...phaseOptions, seed: workloadSeed + 1 }));
    return [
      { target, phase: 'healthy', ...healthy, load: healthyLoad, note: '' },
      { target, phase: 'one-down', ...oneDown, load: oneDownLoad, note: `killed ${killed}` },
    ];
  } finally {
    progress(`${target}: stopping`);
    await setup.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (n: number, digits: number): number => Number(n.toFixed(digits));
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number): string => n.toFixed(2);

/** The readable table; with --json it goes to stderr so that one run yields both. */
function printTable(rows: Row[], stream: NodeJS.WriteStream): void {
  const header = ['target', 'phase', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'reads', 'updates', 'errors', 'srv cpu us/op', 'gen cpu us/op', 'load'];
  const lines = rows.map((r) => [r.target, r.phase, fmtInt(r.result.opsPerSec), fmtMs(r.result.p50Ms), fmtMs(r.result.p99Ms), fmtMs(r.result.p999Ms), fmtMs(r.result.maxMs), fmtInt(r.result.reads), fmtInt(r.result.updates), fmtInt(r.result.errors), fmtInt(r.serverCpuUsPerOp), fmtInt(r.generatorCpuUsPerOp), r.load]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const render = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const out: string[] = [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)];

  const etcd = (phase: Phase): Row | undefined => rows.find((r) => r.target === 'etcd' && r.phase === phase);
  const ratios: string[] = [];
  for (const r of rows) {
    const anchor = etcd(r.phase);
    if (r.target === 'etcd' || anchor === undefined) continue;
    const throughput = r.result.opsPerSec / anchor.result.opsPerSec;
    const p99 = r.result.p99Ms / anchor.result.p99Ms;
    const meets = throughput >= 3 && p99 < 1 / 3;
    ratios.push(`${r.target.padEnd(11)}  ${r.phase.padEnd(8)}  ops/s ${throughput.toFixed(2)}x etcd   p99 ${p99.toFixed(2)}x etcd   target (≥ 3x ops/s, p99 < 0.33x): ${meets ? 'met' : 'not met'}`);
  }
  if (ratios.length > 0) out.push('', 'ringkv / etcd:', ...ratios);
  const notes = rows.filter((r) => r.note !== '').map((r) => `${r.target} ${r.phase}: ${r.note}`);
  const errors = rows.filter((r) => r.result.errorSamples.length > 0).map((r) => `${r.target} ${r.phase} errors, e.g.: ${r.result.errorSamples.join(' | ')}`);
  out.push('', ...notes, ...errors);
  stream.write(`${out.join('\n')}\n`);
}

installCleanupHooks();
const root = mkdtempSync(join(tmpdir(), 'ringkv-bench-cluster-'));
const rows: Row[] = [];
try {
  progress(`${clients} clients, ${keys.toLocaleString('en-US')} keys (${distribution}), ${valueBytes}-byte values, ${readFraction * 100}% reads, ${seconds} s per phase; targets ${targets.join(', ')}`);
  for (const target of targets as Target[]) rows.push(...(await runTarget(target, root)));
} finally {
  rmSync(root, { recursive: true, force: true });
}
if (args.json) {
  for (const r of rows) {
    const line: Record<string, unknown> = { target: r.target, phase: r.phase, opsPerSec: Math.round(r.result.opsPerSec), p50Ms: round(r.result.p50Ms, 3), p99Ms: round(r.result.p99Ms, 3), p999Ms: round(r.result.p999Ms, 3) };
    if (r.result.errors > 0) line.errors = r.result.errors;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  printTable(rows, process.stderr);
} else {
  printTable(rows, process.stdout);
}
