/**
 * One replication simulation run (docs/replication.md, "Simulation"):
 *
 * 1. Faults: client sessions issue random operations (blind puts, puts and
 *    deletes with the context of their last read, touches, gets, increments)
 *    at random consistency levels, strict or sloppy, to random nodes, while
 *    an injector crashes and restarts nodes (noticed by the failure detector
 *    at once or after a lag), partitions the network and changes the loss and
 *    duplication rates. Every operation is recorded in the history.
 * 2. Faults stop: the network heals, crashed nodes restart, clients finish.
 * 3. Sloppy quorum (invariant 5): one home replica of a fresh key is crashed,
 *    a write at W = quorum must succeed, the replica restarts, and once the
 *    hint queues drain the owner's own store must hold the write.
 * 4. Settling: hint queues drain, then a read-repair pass reads every key at
 *    R = all from one node; then every home replica's stored object of every
 *    key must be identical (invariant 3) and the history is checked against
 *    the converged state (invariants 1, 2 and 4; 1 also during the run).
 */
import type { NodeId, Random } from '../../src/core/index.ts';
import { SeededRandom, fromUtf8, utf8 } from '../../src/core/index.ts';
import type { Consistency, GetResult } from '../../src/replication/index.ts';
import { encodeContext, isFound, objectsEqual, slotOf } from '../../src/replication/index.ts';
import { History, type OpKind, type OpRecord } from './history.ts';
import { ReplicationCluster } from './harness.ts';

export interface RunOptions {
  seed: number;
  nodes: number;
  /** Virtual time during which faults are injected and clients run. */
  faultWindowMs?: number;
  clients?: number;
  registerKeys?: number;
  counterKeys?: number;
  engine?: 'memory' | 'lsm';
}

export interface RunResult {
  ok: boolean;
  failure?: string;
  faultsInjected: number;
  opsChecked: number;
  metrics: Record<string, number>;
  /** SHA-256 of the run's network and node trace (same seed ⇒ same hash). */
  traceHash: string;
}

const n = 3;
/** A client gives up on an operation after this long (the coordinator's own timeout is shorter). */
const clientTimeoutMs = 3000;
const coordinatorTimeoutMs = 400;
const levels: Consistency[] = ['one', 'quorum', 'all', 1, 2, 3, 'quorum', 'quorum'];

function pick<T>(random: Random, items: readonly T[]): T {
  return items[random.int(items.length)] as T;
}

function valuesOf(result: GetResult): string[] {
  return result.siblings.flatMap((s) => (s.kind === 'value' ? [fromUtf8(s.value)] : [])).sort();
}

function countOf(result: GetResult): bigint {
  const counter = result.siblings.find((s) => s.kind === 'counter');
  return counter?.kind === 'counter' ? counter.count : 0n;
}

export async function runReplication(options: RunOptions): Promise<RunResult> {
  const nodes = Math.max(3, Math.min(6, options.nodes));
  const faultWindowMs = options.faultWindowMs ?? 2500;
  const clientCount = options.clients ?? 3;
  const random = new SeededRandom(options.seed).fork('replication-workload');
  const cluster = new ReplicationCluster({
    seed: options.seed,
    nodes,
    n,
    partitions: 8,
    coordinator: { coordinatorTimeoutMs },
    handoff: { hintReplayIntervalMs: 250, hintApplyTimeoutMs: 400 },
    ...(options.engine === undefined ? {} : { engine: options.engine }),
    // Odd seeds run the stores without their object cache, as a node does by default
    // (objectCacheMb 0); even seeds with it, so both read and write paths stay checked.
    ...((options.seed & 1) === 1 ? { objectCacheBytes: 0 } : {}),
  });
  const clock = cluster.sim.clock;
  const history = new History();
  const registerKeys = Array.from({ length: options.registerKeys ?? 4 }, (_, i) => `k${i}`);
  const counterKeys = Array.from({ length: options.counterKeys ?? 2 }, (_, i) => `c${i}`);
  /** Increments issued per counter key; at most 31, since 4^31 + … + 4^0 still fits a signed 64-bit count. */
  const incrsOf = new Map<string, number>();
  const maxExactIncrs = 31;
  const metrics: Record<string, number> = { ops: 0, opsAcked: 0, crashes: 0, partitions: 0, hintsReplayed: 0, readRepairs: 0 };
  let nextOp = 1;
  let nextValue = 1;
  const crashed = new Set<NodeId>();

  await cluster.start();

  /** Runs one client operation with a client-side deadline. */
  async function perform<T>(op: OpRecord, run: () => Promise<T>, onOk: (value: T) => void): Promise<void> {
    metrics.ops = (metrics.ops ?? 0) + 1;
    const node = cluster.sim.node(op.node);
    if (node === undefined) {
      op.status = 'failed';
      op.error = 'node not running';
      op.endMs = clock.nowMs();
      return;
    }
    const outcome = await new Promise<{ ok: true; value: T } | { ok: false; error: string } | undefined>((resolve) => {
      const timer = clock.setTimer(clientTimeoutMs, () => resolve(undefined));
      run().then(
        (value) => {
          timer.cancel();
          resolve({ ok: true, value });
        },
        (error: unknown) => {
          timer.cancel();
          resolve({ ok: false, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
        },
      );
    });
    op.endMs = clock.nowMs();
    if (outcome === undefined) op.status = 'unknown';
    else if (outcome.ok) {
      op.status = 'ok';
      metrics.opsAcked = (metrics.opsAcked ?? 0) + 1;
      onOk(outcome.value);
    } else {
      op.status = 'failed';
      op.error = outcome.error;
    }
  }

  async function client(id: number, until: number): Promise<void> {
    const rng = random.fork(`client-${id}`);
    const lastRead = new Map<string, { values: string[]; context: Uint8Array }>();
    while (clock.nowMs() < until) {
      await clock.sleep(5 + rng.int(60));
      const running = cluster.sim.liveIds();
      if (running.length === 0) continue;
      const nodeId = pick(rng, running);
      const kv = () => cluster.node(nodeId).kv;
      const strict = rng.float() < 0.5;
      const level = pick(rng, levels);
      const base = { id: nextOp++, client: id, node: nodeId, level, strict, startMs: clock.nowMs(), endMs: -1, status: 'unknown' as const };
      if (rng.float() < 0.3) {
        const key = pick(rng, counterKeys);
        const k = incrsOf.get(key) ?? 0;
        if (rng.float() < 0.75 && k < maxExactIncrs) {
          // The k-th increment of a key adds 4^k, so the converged value says which ones were applied, and how often (History.checkCounter).
          incrsOf.set(key, k + 1);
          const delta = 4n ** BigInt(k);
          const op = history.add({ ...base, kind: 'incr', key, delta, supersedes: [] });
          await perform(op, () => kv().incrBy(utf8(key), delta, { w: level, strict, timeoutMs: coordinatorTimeoutMs }), () => {});
        } else {
          const op = history.add({ ...base, kind: 'get', key, supersedes: [] });
          await perform(op, () => kv().get(utf8(key), { r: level, strict, timeoutMs: coordinatorTimeoutMs }), (result) => {
            op.count = countOf(result);
          });
        }
        continue;
      }
      const key = pick(rng, registerKeys);
      const roll = rng.float();
      const seen = lastRead.get(key);
      // 35 % get, 20 % blind put, 25 % put with context, 8 % delete with context,
      // 7 % put or delete without context (RESP SET/DEL), 5 % touch.
      let kind: OpKind = roll < 0.35 ? 'get' : roll < 0.8 ? 'put' : roll < 0.88 ? 'delete' : roll < 0.95 ? (rng.float() < 0.7 ? 'put' : 'delete') : 'touch';
      const withContext = roll >= 0.55 && roll < 0.88;
      const blanket = roll >= 0.88 && roll < 0.95;
      if (withContext && seen === undefined) kind = 'get';
      if (kind === 'get') {
        const op = history.add({ ...base, kind: 'get', key, supersedes: [] });
        await perform(op, () => kv().get(utf8(key), { r: level, strict, timeoutMs: coordinatorTimeoutMs }), (result) => {
          op.read = valuesOf(result);
          lastRead.set(key, { values: op.read, context: result.context });
        });
      } else if (kind === 'put') {
        const value = `v${nextValue++}`;
        const context = blanket ? undefined : withContext && seen !== undefined ? seen.context : encodeContext([]);
        const supersedes = withContext && seen !== undefined ? seen.values : [];
        const op = history.add({ ...base, kind: 'put', key, value, supersedes, blanket });
        // Without a context the put overwrites, as RESP SET does (a put with neither would be blind: it supersedes nothing).
        await perform(op, () => kv().put(utf8(key), utf8(value), { w: level, strict, ...(context === undefined ? { overwrite: true } : { context }), timeoutMs: coordinatorTimeoutMs }), () => {});
      } else if (kind === 'delete') {
        const context = blanket ? undefined : (seen as { values: string[]; context: Uint8Array }).context;
        const op = history.add({ ...base, kind: 'delete', key, supersedes: blanket ? [] : (seen as { values: string[] }).values, blanket });
        await perform(op, () => kv().delete(utf8(key), { w: level, strict, ...(context === undefined ? {} : { context }), timeoutMs: coordinatorTimeoutMs }), () => {});
      } else {
        // Half the touches carry the context of the client's last read, as RESP EXPIRE does.
        const context = seen !== undefined && rng.float() < 0.5 ? seen.context : undefined;
        const op = history.add({ ...base, kind: 'touch', key, supersedes: [], ...(context === undefined ? {} : { rewrites: (seen as { values: string[] }).values }) });
        await perform(op, () => kv().touch(utf8(key), null, { w: level, strict, ...(context === undefined ? {} : { context }), timeoutMs: coordinatorTimeoutMs }), () => {});
      }
    }
  }

  async function injectFaults(until: number): Promise<void> {
    const rng = random.fork('faults');
    while (clock.nowMs() < until) {
      await clock.sleep(100 + rng.int(300));
      const roll = rng.float();
      const running = cluster.sim.liveIds();
      if (roll < 0.25 && crashed.size < 2 && running.length > 1) {
        const victim = pick(rng, running);
        // Half the crashes kill the process on a host that stays up: its peers'
        // requests fail at once ("may have been applied") instead of timing out.
        cluster.crash(victim, { unnoticed: true, resetConnections: rng.float() < 0.5 });
        crashed.add(victim);
        metrics.crashes = (metrics.crashes ?? 0) + 1;
        // The failure detector notices at once or after a lag.
        const lagMs = rng.float() < 0.5 ? 0 : 100 + rng.int(400);
        clock.setTimer(lagMs, () => {
          if (crashed.has(victim)) cluster.liveness.set(victim, false);
        });
      } else if (roll < 0.45 && crashed.size > 0) {
        const back = pick(rng, [...crashed].sort());
        crashed.delete(back);
        await cluster.restart(back);
      } else if (roll < 0.6) {
        const ids = [...cluster.ids];
        const cut = 1 + rng.int(ids.length - 1);
        const shuffled = ids.map((id) => ({ id, r: rng.float() })).sort((a, b) => a.r - b.r).map((x) => x.id);
        cluster.sim.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        metrics.partitions = (metrics.partitions ?? 0) + 1;
      } else if (roll < 0.75) {
        cluster.sim.heal();
      } else if (roll < 0.85 && running.length > 1) {
        // A connection dropped between two live nodes: requests on it fail as
        // "may have been applied" while the other side still carries them out.
        const a = pick(rng, running);
        const b = pick(rng, running.filter((id) => id !== a));
        cluster.sim.network.resetConnection(a, b);
        metrics.connectionResets = (metrics.connectionResets ?? 0) + 1;
      } else {
        cluster.sim.network.faults = { ...cluster.sim.network.faults, dropRate: pick(rng, [0, 0.02, 0.05, 0.15]), duplicateRate: pick(rng, [0, 0.03, 0.1]) };
      }
    }
  }

  const fail = (failure: string, key?: string): RunResult => {
    cluster.shutdown();
    const detail = key === undefined ? '' : `\nhistory of ${key}:\n${history.describe(key)}`;
    return { ok: false, failure: `${failure}${detail}`, faultsInjected: cluster.sim.faultsInjected(), opsChecked: history.ops.length, metrics, traceHash: cluster.sim.traceHash() };
  };

  // ---------------------------------------------------------------- 1. faults
  const until = clock.nowMs() + faultWindowMs;
  let clientsDone = 0;
  const sessions = Array.from({ length: clientCount }, (_, i) =>
    client(i + 1, until).finally(() => {
      clientsDone++;
    }),
  );
  const injector = injectFaults(until);
  await clock.runUntil(() => clientsDone === clientCount, faultWindowMs + clientTimeoutMs + 1000);
  if (clientsDone !== clientCount) return fail(`clients still running ${clientTimeoutMs} ms after the fault window`);
  await Promise.all(sessions);
  await cluster.settle(injector, 5000);

  // ---------------------------------------------------------------- 2. faults stop
  cluster.sim.heal();
  cluster.sim.network.faults = { ...cluster.sim.network.faults, dropRate: 0, duplicateRate: 0 };
  for (const id of [...crashed].sort()) await cluster.restart(id);
  crashed.clear();
  for (const id of cluster.ids) cluster.liveness.set(id, true);

  // ---------------------------------------------------------------- 3. sloppy quorum with one replica down
  const sloppyKey = 'sloppy';
  const partition = cluster.placement.partitionOfSlot(slotOf(utf8(sloppyKey)));
  const home = cluster.placement.preferenceList(partition).home;
  const owner = home[random.int(home.length)] as NodeId;
  cluster.crash(owner);
  const writer = pick(random, cluster.ids.filter((id) => id !== owner));
  const sloppyValue = `sloppy-${options.seed}`;
  const sloppyOp = history.add({ id: nextOp++, client: 0, node: writer, kind: 'put', key: sloppyKey, value: sloppyValue, supersedes: [], level: 'quorum', strict: false, startMs: clock.nowMs(), endMs: -1, status: 'unknown' });
  try {
    await cluster.settle(cluster.node(writer).kv.put(utf8(sloppyKey), utf8(sloppyValue), { w: 'quorum', context: encodeContext([]) }), clientTimeoutMs);
    sloppyOp.status = 'ok';
  } catch (error) {
    sloppyOp.status = 'failed';
    return fail(`invariant 5 (sloppy quorum): a write at w=quorum with only ${owner} down failed on ${writer}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    sloppyOp.endMs = clock.nowMs();
  }
  await cluster.restart(owner);

  // ---------------------------------------------------------------- 4. settle
  const drained = await cluster.sim.runUntil(() => cluster.pendingHints() === 0, 60_000, 100);
  if (drained === undefined) return fail(`hints did not drain within 60 s of virtual time after faults stopped: ${cluster.pendingHints()} left`);
  const delivered = await cluster.node(owner).store.read(utf8(sloppyKey));
  if (delivered === undefined || !delivered.versions.some((v) => v.kind === 'value' && fromUtf8(v.value) === sloppyValue)) {
    return fail(`invariant 5 (hinted handoff): ${owner} was down during the write of ${sloppyKey}=${sloppyValue}; after it returned and the hints drained its store does not hold the write`);
  }

  const keys = [...registerKeys, ...counterKeys, sloppyKey];
  const reader = cluster.node(cluster.ids[0] as NodeId);
  const final = new Map<string, GetResult>();
  for (const key of keys) {
    try {
      final.set(key, await cluster.settle(reader.kv.get(utf8(key), { r: 'all' }), clientTimeoutMs));
    } catch (error) {
      return fail(`settling read of ${key} at r=all failed after faults stopped: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  // Let read repair finish.
  await cluster.sim.run(1000);

  // Invariant 3: every home replica holds the same object.
  for (const key of keys) {
    const p = cluster.placement.partitionOfSlot(slotOf(utf8(key)));
    const replicas = cluster.placement.preferenceList(p).home;
    const objects = await Promise.all(replicas.map((id) => cluster.node(id).store.readRaw(utf8(key))));
    const first = objects[0];
    for (let i = 1; i < objects.length; i++) {
      const other = objects[i];
      const same = first === undefined || other === undefined ? first === other : objectsEqual(first, other);
      if (!same) return fail(`invariant 3 (convergence): replicas ${replicas[0]} and ${replicas[i]} of ${key} differ after settling`, key);
    }
  }

  // Invariants 1 and 2 (final state) and 1 during the run.
  const quorumReads = history.checkQuorumReads(n);
  if (quorumReads !== undefined) return fail(quorumReads, /of (\S+) at r=/.exec(quorumReads)?.[1]);
  for (const key of [...registerKeys, sloppyKey]) {
    const values = valuesOf(final.get(key) as GetResult);
    const problem = history.checkFinalValues(key, values) ?? history.checkNoResurrection(key, values);
    if (problem !== undefined) return fail(problem, key);
  }
  // Invariant 4.
  for (const key of counterKeys) {
    const problem = history.checkCounter(key, countOf(final.get(key) as GetResult));
    if (problem !== undefined) return fail(problem, key);
  }

  // Scans from every node list exactly the keys that exist after settling.
  const existing = keys.filter((key) => isFound(final.get(key) as GetResult)).sort();
  for (const id of cluster.ids) {
    const listed: string[] = [];
    let cursor = '0';
    for (let page = 0; page < 1000; page++) {
      const result = await cluster.settle(cluster.node(id).kv.scan(cursor, 3), clientTimeoutMs);
      listed.push(...result.keys.map(fromUtf8));
      cursor = result.cursor;
      if (cursor === '0') break;
    }
    if (listed.sort().join(',') !== existing.join(',')) return fail(`scan from ${id} after settling listed [${listed.join(', ')}], but the keys that exist are [${existing.join(', ')}]`);
  }

  for (const [, node] of cluster.sim.liveNodes()) {
    metrics.hintsReplayed = (metrics.hintsReplayed ?? 0) + (node.handoff?.stats().replayed ?? 0);
    metrics.readRepairs = (metrics.readRepairs ?? 0) + node.coordinator.stats().readRepairs;
  }
  const faultsInjected = cluster.sim.faultsInjected();
  const traceHash = cluster.sim.traceHash();
  cluster.shutdown();
  return { ok: true, faultsInjected, opsChecked: history.ops.length, metrics, traceHash };
}
