/**
 * bench:cluster — ringkv's three-node cluster against a three-member etcd
 * cluster, same load generator, same run (issue 5, "Benchmark").
 *
 *   npm run bench:cluster -- [--json] [--seconds S] [--clients 50] [--keys 100000]
 *       [--distribution uniform|zipfian] [--targets ringkv-http,ringkv-resp,etcd]
 *       [--slices 3] [--cpu-prof DIR] [--ringkv-wal-sync always|interval|none]
 *       [--ringkv-node-flags="--flag ..."]
 *
 * Every target gets its own fresh cluster on loopback (temp dirs), all
 * running at once; each is preloaded with every key (untimed). Then S
 * seconds (default 20) per target of the closed-loop mix (`healthy`), then
 * one replica of each is SIGKILLed (ringkv: node n3; etcd: a member that is
 * not the leader) and S more seconds (`one-down`). The S seconds are cut into
 * slices and the targets take turns (see runAll), then everything is
 * stopped. ringkv: N = 3, W = 2, R = 2, WAL sync `always` (group commit)
 * unless --ringkv-wal-sync says otherwise. With --json, one line per target
 * and phase on stdout, {"target","phase","opsPerSec","p50Ms","p99Ms",
 * "p999Ms"[,"errors"]}, and the table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Driver } from './load/driver.ts';
import { EtcdDriver } from './load/etcd.ts';
import { startEtcdCluster } from './load/etcd-cluster.ts';
import { PhaseStats, preload, runSlice, type PhaseOptions, type PhaseResult } from './load/generator.ts';
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
    slices: { type: 'string', default: '3' },
    'ringkv-wal-sync': { type: 'string', default: 'always' },
    'cpu-prof': { type: 'string' },
    'ringkv-node-flags': { type: 'string', default: '' },
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
const isTarget = (t: string): t is Target => (allTargets as readonly string[]).includes(t);
const targets: Target[] = args.targets.split(',').map((t) => {
  const name = t.trim();
  if (!isTarget(name)) throw new Error(`--targets: unknown target ${JSON.stringify(name)}; known: ${allTargets.join(', ')}`);
  return name;
});
const slices = positiveInt('slices', args.slices, 1, 100);
const walSyncModes = ['always', 'interval', 'none'] as const;
const isWalSync = (m: string): m is (typeof walSyncModes)[number] => (walSyncModes as readonly string[]).includes(m);
// The configuration is `always`; the others are for finding out how much of the gap is the disk.
const ringkvWalSync: (typeof walSyncModes)[number] = (() => {
  const mode = args['ringkv-wal-sync'];
  if (!isWalSync(mode)) throw new Error(`--ringkv-wal-sync must be one of ${walSyncModes.join(', ')}, got ${JSON.stringify(mode)}`);
  return mode;
})();
/** Extra flags for ringkv's node processes (space-separated): for experiments such as GC settings; the figures use none. */
const ringkvNodeFlags = args['ringkv-node-flags'].split(' ').filter((f) => f !== '');
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
  /**
   * The load generator's own event-loop delay (the largest slice p99 and
   * the max, ms): a response that arrives while the generator's loop is busy is
   * timed late by that much, for every target alike.
   */
  generatorLoopP99Ms: number;
  generatorLoopMaxMs: number;
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
  /** What the target says about its own work over the whole run (ringkv: its coordinators' counters), for the notes. */
  describeWork?(): Promise<string>;
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
  const cluster = await startRingkvCluster({ dir, nodes: 3, replicationFactor, walSync: ringkvWalSync, label: target, nodeFlags: ringkvNodeFlags, ...(cpuProfDir === undefined ? {} : { cpuProfDir }) });
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
    async describeWork() {
      // The killed node's counters are gone; the survivors' cover both phases.
      let reads = 0;
      let retries = 0;
      for (const n of cluster.nodes) {
        try {
          const res = await fetch(`http://${n.http.host}:${n.http.port}/metrics`, { signal: AbortSignal.timeout(2000) });
          const text = await res.text();
          reads += Number(/^ringkv_coordinator_stat\{stat="reads",[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
          retries += Number(/^ringkv_coordinator_stat\{stat="readRetries",[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 0);
        } catch {
          // A killed node has nothing to say.
        }
      }
      return `surviving coordinators: ${reads.toLocaleString('en-US')} reads, ${retries.toLocaleString('en-US')} speculative retries (${reads === 0 ? 0 : ((100 * retries) / reads).toFixed(1)} %)`;
    },
    stop: async () => {
      await driver.close();
      if (driver !== httpDriver) await httpDriver.close();
      await cluster.stop();
    },
  };
}

/** A target's measurements for one phase, accumulated over its slices. */
class PhaseTally {
  readonly stats = new PhaseStats();
  serverCpuMicros = 0;
  generatorCpuMicros = 0;
  readonly loads: number[] = [];
  private loopP99Ms = 0;
  private loopMaxMs = 0;

  /** Runs one slice and charges the CPU the target's processes and this process used to it. */
  async slice(setup: Setup, options: PhaseOptions): Promise<void> {
    this.loads.push(loadavg()[0] ?? 0);
    const server = cpuMeter(setup.pids);
    const generatorStart = process.cpuUsage();
    // A fresh monitor per slice: a re-enabled one counts the pause between slices as one long delay.
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    await runSlice(setup.driver, options, this.stats);
    loop.disable();
    this.loopP99Ms = Math.max(this.loopP99Ms, loop.percentile(99) / 1e6);
    this.loopMaxMs = Math.max(this.loopMaxMs, loop.max / 1e6);
    const generator = process.cpuUsage(generatorStart);
    this.serverCpuMicros += server.stop();
    this.generatorCpuMicros += generator.user + generator.system;
  }

  row(target: Target, phase: Phase, note: string): Row {
    const result = this.stats.summary();
    const ops = Math.max(1, result.ops);
    const load = `${Math.min(...this.loads).toFixed(1)}-${Math.max(...this.loads).toFixed(1)}`;
    return {
      target,
      phase,
      result,
      load,
      note,
      serverCpuUsPerOp: this.serverCpuMicros / ops,
      generatorCpuUsPerOp: this.generatorCpuMicros / ops,
      generatorLoopP99Ms: this.loopP99Ms,
      generatorLoopMaxMs: this.loopMaxMs,
    };
  }
}

/** Below this share of one core, a preloaded cluster counts as quiet (its flushes and compactions done). */
const quietCpuShare = 0.05;
const settleMaxMs = 30_000;

/**
 * Waits (bounded) until every target's processes are quiet after the preload,
 * so that LSM flushes and compactions it triggered are not charged to the
 * first healthy slices.
 */
async function settle(setups: readonly Setup[]): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < settleMaxMs) {
    const meters = setups.map((s) => cpuMeter(s.pids));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busiest = Math.max(...meters.map((m) => m.stop() / 1_000_000));
    if (busiest < quietCpuShare) {
      progress(`targets quiet after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      return;
    }
  }
  progress(`targets still busy after ${settleMaxMs / 1000} s; measuring anyway`);
}

interface Prepared {
  target: Target;
  setup: Setup;
  healthy: PhaseTally;
  oneDown: PhaseTally;
  killed?: string;
}

/**
 * Every target's cluster runs at once; each phase is cut into `slices`
 * slices, and the targets take turns slice by slice (the order rotates every
 * round). On a machine shared with other work, the background load drifts
 * over minutes: run one target after the other and the drift lands on the
 * ratios; interleaved, it falls on every target alike. An idle cluster costs
 * little (gossip or raft heartbeats). A target's replica is killed just before
 * that target's first one-down slice, so each one-down phase includes the
 * failure-detection transient.
 */
async function runAll(root: string): Promise<Row[]> {
  const prepared: Prepared[] = [];
  const values = new ValuePool(valueBytes);
  const chooser = keyChooser(distribution, keys);
  try {
    for (const target of targets) {
      progress(`${target}: starting the cluster`);
      const setup = await setUp(target, mkdtempSync(join(root, `${target}-`)));
      prepared.push({ target, setup, healthy: new PhaseTally(), oneDown: new PhaseTally() });
      progress(`${target}: preloading ${keys.toLocaleString('en-US')} keys`);
      const loaded = await preload(setup.preloadDriver, keys, preloadConcurrency, values);
      progress(`${target}: preloaded in ${loaded.seconds.toFixed(1)} s (${Math.round(keys / loaded.seconds).toLocaleString('en-US')} puts/s, ${loaded.errors} retried)`);
    }
    await settle(prepared.map((p) => p.setup));
    const sliceSeconds = seconds / slices;
    for (const phase of ['healthy', 'one-down'] as const) {
      for (let round = 0; round < slices; round++) {
        const options: PhaseOptions = { clients, seconds: sliceSeconds, readFraction, keys: chooser, values, seed: workloadSeed * 100 + (phase === 'healthy' ? 0 : 50) + round };
        for (let k = 0; k < prepared.length; k++) {
          const p = prepared[(round + k) % prepared.length] as Prepared;
          if (phase === 'one-down' && p.killed === undefined) {
            p.killed = await p.setup.killOne();
            progress(`${p.target}: killed ${p.killed} with SIGKILL`);
          }
          progress(`${p.target}: ${phase} slice ${round + 1}/${slices}, ${sliceSeconds.toFixed(1)} s (load average ${loadAverage()})`);
          await (phase === 'healthy' ? p.healthy : p.oneDown).slice(p.setup, options);
        }
      }
    }
    const rows: Row[] = [];
    for (const p of prepared) {
      const work = (await p.setup.describeWork?.()) ?? '';
      rows.push(p.healthy.row(p.target, 'healthy', work), p.oneDown.row(p.target, 'one-down', `killed ${p.killed ?? '?'}`));
    }
    return rows;
  } finally {
    for (const p of prepared) {
      progress(`${p.target}: stopping`);
      await p.setup.stop();
    }
  }
}

const round = (n: number, digits: number): number => Number(n.toFixed(digits));
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number): string => n.toFixed(2);

/** The readable table; with --json it goes to stderr so that one run yields both. */
function printTable(rows: Row[], stream: NodeJS.WriteStream): void {
  const header = ['target', 'phase', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'read p50/p99', 'update p50/p99', 'reads', 'updates', 'errors', 'srv cpu us/op', 'gen cpu us/op', 'gen loop p99/max', 'load'];
  const lines = rows.map((r) => [r.target, r.phase, fmtInt(r.result.opsPerSec), fmtMs(r.result.p50Ms), fmtMs(r.result.p99Ms), fmtMs(r.result.p999Ms), fmtMs(r.result.maxMs), `${fmtMs(r.result.readP50Ms)}/${fmtMs(r.result.readP99Ms)}`, `${fmtMs(r.result.updateP50Ms)}/${fmtMs(r.result.updateP99Ms)}`, fmtInt(r.result.reads), fmtInt(r.result.updates), fmtInt(r.result.errors), fmtInt(r.serverCpuUsPerOp), fmtInt(r.generatorCpuUsPerOp), `${r.generatorLoopP99Ms.toFixed(1)}/${r.generatorLoopMaxMs.toFixed(1)}`, r.load]);
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
// An interrupted run (Ctrl-C) skips the finally below; the data dirs still go.
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const rows: Row[] = [];
try {
  progress(`${clients} clients, ${keys.toLocaleString('en-US')} keys (${distribution}), ${valueBytes}-byte values, ${readFraction * 100}% reads, ${seconds} s per phase; targets ${targets.join(', ')}; ringkv WAL sync ${ringkvWalSync}`);
  rows.push(...(await runAll(root)));
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
