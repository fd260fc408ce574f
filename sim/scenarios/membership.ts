/**
 * Scenario "membership": gossip and failure detection under a lossy network.
 *
 * Network: 5% loss, 1% duplication, 1 ms + exponential(5 ms) latency (so
 * messages reorder), and one node made slow (+150…450 ms on every message it
 * sends or receives) for the whole run.
 *
 * Script, with the invariant checked after each step:
 *  1. staggered start through seeds → every live node sees every node up, same
 *     generation and status, and the same ring (within convergeBoundMs);
 *  2. the claimant (src/membership/claimant.ts) builds a ring over all nodes
 *     with src/ring → every node adopts the same one;
 *  3. short cuts (one node cut off both ways, another one way) shorter than
 *     suspicion → nobody is marked down;
 *  4. a long partition into two sides, and a node on each side starts leaving,
 *     so each side's claimant proposes its own ring → after healing, every node
 *     is up again and all agree on one ring without both leavers;
 *  5. a node crashes → every live node marks it down within detectionBoundMs;
 *  6. it restarts with a new generation → everyone sees it up within
 *     restartBoundMs, and views converge again.
 * Any node marked down while alive and reachable (outside step 4) is a false
 * positive and fails the run; the rate is reported per observer-target pair-hour.
 */
import type { NodeId } from '../../src/core/index.ts';
import type { MemberStatus, MembershipEvent } from '../../src/membership/index.ts';
import { SimCluster } from '../cluster.ts';
import { MembershipNode } from '../membership-node.ts';
import type { Scenario, ScenarioOptions, ScenarioResult } from '../scenario.ts';

export const convergeBoundMs = 60_000;
/**
 * Phi 8 ≈ 18.4 mean heartbeat inter-arrivals of silence (≈ 1.2 s each with fanout 2),
 * plus a few rounds to spread the confirming suspicion; measured max ≈ 31 s at 50 nodes.
 */
export const detectionBoundMs = 45_000;
export const restartBoundMs = 20_000;
const shortCutMs = 4_000;
const longPartitionMs = 40_000;
const slowNodeExtraMs = 300;

export const membershipFaults = { dropRate: 0.05, duplicateRate: 0.01, minLatencyMs: 1, meanJitterMs: 5, maxLatencyMs: 200 };

class Failure extends Error {}

/** Node ids listed in a gossiped ring state (src/ring's serialized form). */
function ringNodes(data: unknown): string[] {
  const nodes = (data as { nodes?: unknown } | null)?.nodes;
  return Array.isArray(nodes) ? nodes.map((n) => String((n as { id?: unknown }).id)) : [];
}

/**
 * The first disagreement between live nodes' views and the cluster's truth,
 * or undefined when they agree: every node known, liveness matching who runs,
 * latest generations, the statuses the script set, and one ring whose nodes
 * are exactly the joining and normal members.
 */
export function viewDisagreement(cluster: SimCluster<MembershipNode>, statuses: ReadonlyMap<NodeId, MemberStatus>): string | undefined {
  const ids = cluster.ids();
  const ringMembers = ids.filter((id) => ['joining', 'normal'].includes(statuses.get(id) ?? 'normal')).sort();
  let ringRef: { node: NodeId; key: string } | undefined;
  for (const [observer, node] of cluster.liveNodes()) {
    const views = node.membership.members();
    if (views.length !== ids.length) return `${observer} knows ${views.length} members, expected ${ids.length}`;
    for (const v of views) {
      const running = cluster.isRunning(v.id);
      const expected = running ? 'up' : 'down';
      if (v.liveness !== expected) return `${observer} sees ${v.id} ${v.liveness}, expected ${expected}`;
      if (v.generation !== cluster.generation(v.id)) return `${observer} sees ${v.id} at generation ${v.generation}, expected ${cluster.generation(v.id)}`;
      const status = statuses.get(v.id) ?? 'normal';
      if (v.status !== status) return `${observer} sees ${v.id} ${v.status}, expected ${status}`;
    }
    const ring = node.membership.ringState();
    const key = `${ring.version}/${ring.proposer}/${ring.hash}`;
    if (ringRef === undefined) {
      ringRef = { node: observer, key };
      const listed = ringNodes(ring.data).join(',');
      if (listed !== ringMembers.join(',')) return `${observer} holds ring ${key} over [${listed}], expected [${ringMembers.join(',')}]`;
    } else if (ringRef.key !== key) return `${observer} holds ring ${key} but ${ringRef.node} holds ${ringRef.key}`;
  }
  return undefined;
}

async function runMembership(seed: number, options: ScenarioOptions): Promise<ScenarioResult> {
  const n = options.nodes;
  if (n < 3) return { ok: false, faultsInjected: 0, failure: `the membership scenario needs at least 3 nodes, got ${n}` };
  const nodeOptions = {
    ...(options.extra.fanout !== undefined ? { fanout: Number(options.extra.fanout) } : {}),
    ...(options.extra.phi !== undefined ? { phiThreshold: Number(options.extra.phi) } : {}),
  };
  const cluster = new SimCluster<MembershipNode>({ seed, nodes: n, faults: membershipFaults, factory: (ctx) => new MembershipNode(ctx, nodeOptions) });
  const random = cluster.random.fork('scenario');
  const ids = cluster.ids();
  const statuses = new Map<NodeId, MemberStatus>(ids.map((id) => [id, 'normal']));
  const pickOther = (...not: NodeId[]): NodeId => {
    const pool = ids.filter((id) => !not.includes(id) && cluster.isRunning(id) && statuses.get(id) === 'normal');
    return pool[random.int(pool.length)] as NodeId;
  };

  // False-positive accounting: a live, reachable node marked down.
  let counting = true;
  let falseDowns = 0;
  let falseSuspects = 0;
  let pairMs = 0;
  let firstFalse: string | undefined;
  const downSeen = new Map<NodeId, number>();
  let victim: NodeId | undefined;
  const watch = (observer: NodeId, node: MembershipNode): void => {
    node.membership.onChange((event: MembershipEvent) => {
      if (event.type !== 'member' || event.member.self) return;
      const target = event.member.id;
      const alive = cluster.isRunning(target) && event.member.generation === cluster.generation(target);
      if (event.member.liveness === 'down' && target === victim && !alive && !downSeen.has(observer)) downSeen.set(observer, cluster.clock.nowMs());
      if (!counting || !alive) return;
      if (event.member.liveness === 'down') {
        falseDowns++;
        firstFalse ??= `${observer} marked ${target} down at ${cluster.clock.nowMs()} ms while it was alive and reachable (phi ${event.member.phi.toFixed(2)})`;
      } else if (event.member.liveness === 'suspect') falseSuspects++;
    });
  };
  const run = async (ms: number): Promise<void> => {
    const live = cluster.liveIds().length;
    if (counting) pairMs += ms * live * (live - 1);
    await cluster.run(ms);
  };
  const until = async (what: string, done: () => boolean, limitMs: number): Promise<number> => {
    const start = cluster.clock.nowMs();
    const live = cluster.liveIds().length;
    const took = await cluster.runUntil(done, limitMs);
    if (counting) pairMs += (cluster.clock.nowMs() - start) * live * (live - 1);
    if (took === undefined) throw new Failure(`${what} did not happen within ${limitMs} ms of virtual time`);
    return took;
  };
  const agree = (): boolean => viewDisagreement(cluster, statuses) === undefined;
  const explainAgree = (what: string) => async (limitMs: number): Promise<number> => {
    try {
      return await until(what, agree, limitMs);
    } catch (error) {
      throw new Failure(`${(error as Error).message}: ${viewDisagreement(cluster, statuses) ?? ''}`);
    }
  };

  const metrics: Record<string, number> = {};
  try {
    const slow = ids[ids.length - 1] as NodeId;
    cluster.setSlow(slow, slowNodeExtraMs);
    // 1. Staggered start.
    for (const id of ids) {
      watch(id, await cluster.start(id));
      await run(random.int(200));
    }
    // 2. Same views everywhere, and the claimant's ring over every node.
    metrics.convergeMsMax = await explainAgree('initial convergence')(convergeBoundMs);
    await run(5_000);

    // 3. Cuts shorter than suspicion: nobody may be marked down.
    const cut = pickOther(slow);
    cluster.partition([cut], ids.filter((id) => id !== cut));
    await run(shortCutMs);
    cluster.heal();
    const oneWay = pickOther(slow);
    cluster.partition([oneWay], ids.filter((id) => id !== oneWay), { oneWay: true });
    await run(shortCutMs);
    cluster.heal();
    await run(5_000);
    await explainAgree('convergence after short cuts')(convergeBoundMs);

    // 4. A long partition with a ring proposal on each side, then heal.
    const shuffled = [...ids];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = random.int(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j] as NodeId, shuffled[i] as NodeId];
    }
    const sideA = shuffled.slice(0, Math.max(1, Math.floor(n / 3)));
    const sideB = shuffled.filter((id) => !sideA.includes(id));
    counting = false;
    cluster.partition(sideA, sideB);
    await cluster.run(longPartitionMs / 2);
    // A decommission starts on each side: both sides' claimants propose a ring of the same version.
    for (const side of [sideA, sideB]) {
      const leaver = side[random.int(side.length)] as NodeId;
      statuses.set(leaver, 'leaving');
      node(cluster, leaver).membership.setStatus('leaving');
    }
    await cluster.run(longPartitionMs / 2);
    cluster.heal();
    metrics.healMsMax = await explainAgree('convergence after healing a partition')(convergeBoundMs);
    counting = true;
    await run(5_000);

    // 5. Crash: down everywhere within the bound.
    victim = pickOther(slow);
    const crashedAt = cluster.clock.nowMs();
    cluster.crash(victim);
    const down = victim;
    const allSeeDown = (): boolean => cluster.liveNodes().every(([, nd]) => nd.membership.member(down)?.liveness === 'down');
    await until(`marking crashed ${down} down on every live node`, allSeeDown, detectionBoundMs);
    metrics.detectionMsMax = Math.max(...[...downSeen.values()].map((t) => t - crashedAt));
    metrics.detectionMsSum = [...downSeen.values()].reduce((s, t) => s + (t - crashedAt), 0);
    metrics.detections = downSeen.size;
    await explainAgree('agreement while a node is down')(convergeBoundMs);

    // 6. Restart with a new generation.
    watch(victim, await cluster.restart(victim));
    const generation = cluster.generation(victim);
    const seenUp = (): boolean =>
      cluster.liveNodes().every(([id, nd]) => id === down || (nd.membership.member(down)?.generation === generation && nd.membership.isUp(down)));
    metrics.restartUpMsMax = await until(`seeing restarted ${down} up`, seenUp, restartBoundMs);
    await explainAgree('convergence after the restart')(convergeBoundMs);
    await run(10_000);
    const last = viewDisagreement(cluster, statuses);
    if (last !== undefined) throw new Failure(`views drifted apart after convergence: ${last}`);
    if (falseDowns > 0) throw new Failure(`false positive: ${firstFalse}`);
    return done(true);
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    return done(false, error.message);
  } finally {
    cluster.shutdown();
  }

  function done(ok: boolean, failure?: string): ScenarioResult {
    return {
      ok,
      faultsInjected: cluster.faultsInjected(),
      ...(failure !== undefined ? { failure: `${failure} (at ${cluster.clock.nowMs()} ms)` } : {}),
      metrics: { ...metrics, falseDowns, falseSuspects, observedPairMs: pairMs },
      traceHash: cluster.traceHash(),
    };
  }
}

function node(cluster: SimCluster<MembershipNode>, id: NodeId): MembershipNode {
  const found = cluster.node(id);
  if (found === undefined) throw new Failure(`node ${id} is not running`);
  return found;
}

export const scenario: Scenario = {
  name: 'membership',
  description: 'gossip convergence, ring agreement, crash detection bound, restart, false positives under 5% loss',
  defaultNodes: 20,
  run: runMembership,
  summarize(metrics, runs) {
    const pairHours = (metrics.observedPairMs ?? 0) / 3_600_000;
    const detections = metrics.detections ?? 0;
    return {
      falseDownsPerPairHour: pairHours > 0 ? (metrics.falseDowns ?? 0) / pairHours : 0,
      falseSuspectsPerPairHour: pairHours > 0 ? (metrics.falseSuspects ?? 0) / pairHours : 0,
      observedPairHours: pairHours,
      detectionMsMean: detections > 0 ? (metrics.detectionMsSum ?? 0) / detections : 0,
      runs,
    };
  },
};
