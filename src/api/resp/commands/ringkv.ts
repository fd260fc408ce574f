/**
 * ringkv's own commands, for what Redis cannot say: per-connection quorum
 * choices, every sibling with its causal context, a write that carries the
 * context back, and the cluster's nodes, ring and a key's replicas.
 * Documented in docs/protocol/resp.md.
 */
import { parseConsistency } from '../../settings.ts';
import type { Sibling } from '../../../replication/index.ts';
import { RespError, syntaxError } from '../errors.ts';
import { keySlot } from './cluster.ts';
import { command } from './spec.ts';
import type { CommandContext, CommandSpec, Handler } from './types.ts';
import { readOptions, writeOptions } from './types.ts';
import { checkValueSize, intArg } from './values.ts';

function level(arg: Buffer | undefined, what: string) {
  if (arg === undefined) throw syntaxError();
  try {
    return parseConsistency(arg.toString(), what);
  } catch (error) {
    throw new RespError(`ERR ${(error as Error).message}`);
  }
}

function writeConsistency(ctx: CommandContext): void {
  const d = ctx.server.defaults;
  const c = ctx.client;
  ctx.out.map(3);
  ctx.out.bulk('r');
  ctx.out.bulk(String(c.readConsistency ?? d.r));
  ctx.out.bulk('w');
  ctx.out.bulk(String(c.writeConsistency ?? d.w));
  ctx.out.bulk('quorum');
  ctx.out.bulk((c.strictQuorum ?? d.strict) ? 'strict' : 'sloppy');
}

const consistency: Handler = (ctx, args) => {
  if (args.length === 1) {
    writeConsistency(ctx);
    return;
  }
  let r = ctx.client.readConsistency;
  let w = ctx.client.writeConsistency;
  let strict = ctx.client.strictQuorum;
  for (let i = 1; i < args.length; i++) {
    const opt = (args[i] as Buffer).toString().toLowerCase();
    if (opt === 'r') r = level(args[++i], 'R');
    else if (opt === 'w') w = level(args[++i], 'W');
    else if (opt === 'strict') strict = true;
    else if (opt === 'sloppy') strict = false;
    else if (opt === 'default') {
      r = undefined;
      w = undefined;
      strict = undefined;
    } else throw syntaxError();
  }
  ctx.client.readConsistency = r;
  ctx.client.writeConsistency = w;
  ctx.client.strictQuorum = strict;
  ctx.out.ok();
};

function writeSibling(ctx: CommandContext, s: Sibling): void {
  const out = ctx.out;
  out.map(5);
  out.bulk('kind');
  out.bulk(s.kind);
  out.bulk('value');
  if (s.kind === 'value') out.bulk(s.value);
  else if (s.kind === 'counter') out.bulk(s.count.toString());
  else out.nullBulk();
  out.bulk('expires-at-ms');
  if (s.expiresAtMs === null) out.nullBulk();
  else out.integer(s.expiresAtMs);
  out.bulk('timestamp-ms');
  out.integer(s.timestampMs);
  out.bulk('writer');
  out.bulk(s.writer);
}

const getall: Handler = async (ctx, args) => {
  const result = await ctx.server.kv.get(args[1] as Buffer, readOptions(ctx));
  ctx.out.map(2);
  ctx.out.bulk('context');
  ctx.out.bulk(Buffer.from(result.context).toString('base64'));
  ctx.out.bulk('siblings');
  ctx.out.array(result.siblings.length);
  for (const s of result.siblings) writeSibling(ctx, s);
};

const base64Text = /^[A-Za-z0-9+/]*={0,2}$/;

function contextArg(arg: Buffer): Uint8Array | null {
  const text = arg.toString('latin1');
  if (text === '') return null;
  if (!base64Text.test(text) || text.length % 4 !== 0) throw new RespError('ERR the context must be the base64 text RINGKV.GETALL returned, or "" for a blind write');
  return Buffer.from(text, 'base64');
}

/** `[PX ms | EX s]`: an expiry relative to now. */
function expiryArgs(ctx: CommandContext, args: Buffer[], from: number): number | null {
  if (args.length === from) return null;
  if (args.length !== from + 2) throw syntaxError();
  const unit = (args[from] as Buffer).toString().toLowerCase();
  const amount = intArg(args[from + 1]);
  if (amount <= 0n || (unit !== 'px' && unit !== 'ex')) throw syntaxError();
  return ctx.server.clock.wallMs() + Number(unit === 'ex' ? amount * 1000n : amount);
}

const put: Handler = async (ctx, args) => {
  const value = args[2] as Buffer;
  checkValueSize(ctx, value);
  const context = contextArg(args[3] as Buffer);
  const expiresAtMs = expiryArgs(ctx, args, 4);
  const result = await ctx.server.kv.put(args[1] as Buffer, value, writeOptions(ctx, { context, expiresAtMs }));
  ctx.out.bulk(Buffer.from(result.context).toString('base64'));
};

const del: Handler = async (ctx, args) => {
  const context = contextArg(args[2] as Buffer);
  await ctx.server.kv.delete(args[1] as Buffer, writeOptions(ctx, { context }));
  ctx.out.ok();
};

const nodes: Handler = (ctx) => {
  const all = ctx.server.cluster.nodes();
  ctx.out.array(all.length);
  for (const n of all) {
    ctx.out.map(9);
    ctx.out.bulk('id');
    ctx.out.bulk(n.id);
    ctx.out.bulk('address');
    ctx.out.bulk(n.address);
    ctx.out.bulk('resp-address');
    if (n.respAddress === null) ctx.out.nullBulk();
    else ctx.out.bulk(n.respAddress);
    ctx.out.bulk('http-address');
    if (n.httpAddress === null) ctx.out.nullBulk();
    else ctx.out.bulk(n.httpAddress);
    ctx.out.bulk('dc');
    ctx.out.bulk(n.dc);
    ctx.out.bulk('rack');
    ctx.out.bulk(n.rack);
    ctx.out.bulk('status');
    ctx.out.bulk(n.status);
    ctx.out.bulk('liveness');
    ctx.out.bulk(n.liveness);
    ctx.out.bulk('partitions');
    ctx.out.integer(n.partitions);
  }
};

const ring: Handler = (ctx) => {
  const r = ctx.server.cluster.ring();
  ctx.out.map(5);
  ctx.out.bulk('strategy');
  ctx.out.bulk(r.strategy);
  ctx.out.bulk('version');
  ctx.out.bulk(r.version);
  ctx.out.bulk('partitions');
  ctx.out.integer(r.partitionCount);
  ctx.out.bulk('replication-factor');
  ctx.out.integer(r.replicationFactor);
  ctx.out.bulk('ranges');
  ctx.out.array(r.ranges.length);
  for (const range of r.ranges) {
    ctx.out.array(3);
    ctx.out.integer(range.start);
    ctx.out.integer(range.end);
    ctx.out.bulkArray(range.replicas);
  }
};

const replicas: Handler = (ctx, args) => {
  const key = args[1] as Buffer;
  const info = ctx.server.cluster.replicasOf(key);
  ctx.out.map(4);
  ctx.out.bulk('slot');
  ctx.out.integer(keySlot(key));
  ctx.out.bulk('partition');
  ctx.out.integer(info.partition);
  ctx.out.bulk('replicas');
  ctx.out.bulkArray(info.replicas);
  ctx.out.bulk('sloppy');
  ctx.out.bulkArray(info.sloppy);
};

const r = (name: string, arity: number, flags: CommandSpec['flags'], handler: Handler, summary: string, keys: [number, number, number] = [0, 0, 0]): CommandSpec =>
  command({ name, arity, flags, firstKey: keys[0], lastKey: keys[1], keyStep: keys[2], group: 'ringkv', summary, since: '0.1.0', aclCategories: ['@ringkv'], handler });

export const ringkvCommands: CommandSpec[] = [
  r('ringkv.consistency', -1, ['fast'], consistency, 'Shows or sets this connection\'s read and write consistency: [R level] [W level] [STRICT|SLOPPY] [DEFAULT].'),
  r('ringkv.getall', 2, ['readonly'], getall, 'Returns every sibling of a key and the causal context covering them.', [1, 1, 1]),
  r('ringkv.put', -4, ['write', 'denyoom'], put, 'Writes a value superseding the versions of a context: key value context [EX s|PX ms]; returns the new context.', [1, 1, 1]),
  r('ringkv.del', 3, ['write'], del, 'Deletes the versions of a context: key context.', [1, 1, 1]),
  r('ringkv.nodes', 1, ['stale'], nodes, 'Lists the cluster\'s nodes with status, liveness, dc and rack.'),
  r('ringkv.ring', 1, ['stale'], ring, 'Shows the ring: strategy, version, partitions and replica ranges.'),
  r('ringkv.replicas', 2, ['stale'], replicas, 'Shows the slot, partition, home replicas and sloppy-quorum nodes of a key.', [1, 1, 1]),
];
