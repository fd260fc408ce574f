/**
 * Redis Cluster views (CLUSTER KEYSLOT/INFO/MYID/SLOTS/NODES/SHARDS) built
 * from ClusterView, so cluster-aware clients can route a key straight to one
 * of its replicas. With the `balanced` ring, partitions are the 16384 Redis
 * slots (CRC16 of the key or its {hash tag}); with another ring every slot is
 * shown on the local node, which coordinates any key anyway.
 */
import { createHash } from 'node:crypto';
import type { NodeId } from '../../../core/index.ts';
import { slotCount, slotOf } from '../../../replication/index.ts';
import type { NodeInfo } from '../../../replication/index.ts';
import { command, sub } from './spec.ts';
import type { CommandContext, CommandSpec, Handler } from './types.ts';

export { slotCount };

/** Redis Cluster's key slot: CRC16 of the key, or of the first non-empty {hash tag} (the store's own slotOf). */
export const keySlot: (key: Uint8Array) => number = slotOf;

/** Redis clients expect 40-hex-digit node ids; other ids are shown as their SHA-1. */
export function redisNodeId(id: NodeId): string {
  return /^[0-9a-f]{40}$/.test(id) ? id : createHash('sha1').update(id).digest('hex');
}

interface SlotRange {
  start: number;
  end: number;
  replicas: NodeInfo[];
}

function endpoint(ctx: CommandContext, node: NodeInfo): { host: string; port: number } {
  const text = node.respAddress;
  if (text !== null) {
    const at = text.lastIndexOf(':');
    return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
  }
  const own = node.id === ctx.server.cluster.localId ? ctx.server.address() : undefined;
  return own ?? { host: '', port: 0 };
}

function slotRanges(ctx: CommandContext): SlotRange[] {
  const cluster = ctx.server.cluster;
  const nodes = cluster.nodes();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const ring = cluster.ring();
  if (ring.strategy === 'balanced' && ring.partitionCount === slotCount) {
    return ring.ranges.map((r) => ({ start: r.start, end: r.end, replicas: r.replicas.map((id) => byId.get(id)).filter((n): n is NodeInfo => n !== undefined) }));
  }
  const local = byId.get(cluster.localId);
  const others = nodes.filter((n) => n.id !== cluster.localId);
  return [{ start: 0, end: slotCount - 1, replicas: local === undefined ? others : [local, ...others] }];
}

const keyslot: Handler = (ctx, args) => ctx.out.integer(keySlot(args[2] as Buffer));

const myid: Handler = (ctx) => ctx.out.bulk(redisNodeId(ctx.server.cluster.localId));

const info: Handler = (ctx) => {
  const nodes = ctx.server.cluster.nodes();
  const ok = nodes.some((n) => n.liveness === 'up');
  const masters = new Set(slotRanges(ctx).map((r) => r.replicas[0]?.id)).size;
  const lines = [
    'cluster_enabled:1',
    `cluster_state:${ok ? 'ok' : 'fail'}`,
    `cluster_slots_assigned:${slotCount}`,
    `cluster_slots_ok:${slotCount}`,
    'cluster_slots_pfail:0',
    'cluster_slots_fail:0',
    `cluster_known_nodes:${nodes.length}`,
    `cluster_size:${masters}`,
    'cluster_current_epoch:1',
    'cluster_my_epoch:1',
  ];
  ctx.out.verbatim(`${lines.join('\r\n')}\r\n`);
};

function writeNodeTriple(ctx: CommandContext, node: NodeInfo): void {
  const ep = endpoint(ctx, node);
  ctx.out.array(3);
  ctx.out.bulk(ep.host);
  ctx.out.integer(ep.port);
  ctx.out.bulk(redisNodeId(node.id));
}

const slots: Handler = (ctx) => {
  const ranges = slotRanges(ctx).filter((r) => r.replicas.length > 0);
  ctx.out.array(ranges.length);
  for (const r of ranges) {
    ctx.out.array(2 + r.replicas.length);
    ctx.out.integer(r.start);
    ctx.out.integer(r.end);
    for (const n of r.replicas) writeNodeTriple(ctx, n);
  }
};

const nodesCmd: Handler = (ctx) => {
  const cluster = ctx.server.cluster;
  const ranges = slotRanges(ctx);
  const lines = cluster.nodes().map((n) => {
    const ep = endpoint(ctx, n);
    const flags = [n.id === cluster.localId ? 'myself' : '', 'master', n.liveness === 'down' ? 'fail' : n.liveness === 'suspect' ? 'fail?' : '']
      .filter((f) => f !== '')
      .join(',');
    const owned = ranges.filter((r) => r.replicas[0]?.id === n.id).map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`));
    const link = n.liveness === 'down' ? 'disconnected' : 'connected';
    return [redisNodeId(n.id), `${ep.host}:${ep.port}@0`, flags, '-', '0', '0', '1', link, ...owned].join(' ');
  });
  ctx.out.verbatim(lines.map((l) => `${l}\n`).join(''));
};

const shards: Handler = (ctx) => {
  const ranges = slotRanges(ctx);
  const byPrimary = new Map<string, { node: NodeInfo; slots: number[] }>();
  for (const r of ranges) {
    const primary = r.replicas[0];
    if (primary === undefined) continue;
    const entry = byPrimary.get(primary.id) ?? { node: primary, slots: [] };
    entry.slots.push(r.start, r.end);
    byPrimary.set(primary.id, entry);
  }
  ctx.out.array(byPrimary.size);
  for (const { node, slots: owned } of byPrimary.values()) {
    const ep = endpoint(ctx, node);
    ctx.out.map(2);
    ctx.out.bulk('slots');
    ctx.out.array(owned.length);
    for (const s of owned) ctx.out.integer(s);
    ctx.out.bulk('nodes');
    ctx.out.array(1);
    ctx.out.map(7);
    ctx.out.bulk('id');
    ctx.out.bulk(redisNodeId(node.id));
    ctx.out.bulk('port');
    ctx.out.integer(ep.port);
    ctx.out.bulk('ip');
    ctx.out.bulk(ep.host);
    ctx.out.bulk('endpoint');
    ctx.out.bulk(ep.host);
    ctx.out.bulk('role');
    ctx.out.bulk('master');
    ctx.out.bulk('replication-offset');
    ctx.out.integer(0);
    ctx.out.bulk('health');
    ctx.out.bulk(node.liveness === 'up' ? 'online' : node.liveness === 'suspect' ? 'loading' : 'fail');
  }
};

export const clusterCommands: CommandSpec[] = [
  command({
    name: 'cluster', arity: -2, flags: [], group: 'cluster', summary: 'A container for Redis Cluster commands.', since: '3.0.0',
    subcommands: [
      sub('cluster', 'keyslot', 3, ['stale'], keyslot, 'Returns the hash slot for a key.', 'cluster'),
      sub('cluster', 'myid', 2, ['stale'], myid, 'Returns the ID of a node.', 'cluster'),
      sub('cluster', 'info', 2, ['stale'], info, 'Returns information about the state of a node.', 'cluster'),
      sub('cluster', 'slots', 2, ['loading', 'stale'], slots, 'Returns the mapping of cluster slots to nodes.', 'cluster'),
      sub('cluster', 'nodes', 2, ['stale'], nodesCmd, 'Returns the cluster configuration for a node.', 'cluster'),
      sub('cluster', 'shards', 2, ['loading', 'stale'], shards, 'Returns the mapping of cluster slots to shards.', 'cluster'),
    ],
  }),
];
