/** String commands with Redis 7.0 semantics (t_string.c), over KvApi. */
import { durableNow, resolveWinner, wouldWait } from '../../../replication/index.ts';
import type { Winner } from '../../../replication/index.ts';
import { RespError, invalidExpireError, syntaxError } from '../errors.ts';
import type { CommandContext, CommandSpec, Handler } from './types.ts';
import { plainSetOptions, readOptions, writeOptions } from './types.ts';
import {
  addDecimals,
  checkValueSize,
  deleteKey,
  floatArg,
  int64Max,
  int64Min,
  intArg,
  maxStringBytes,
  parseDecimal,
  readForWrite,
  readString,
  replaceString,
  writeString,
} from './values.ts';
import { command } from './spec.ts';

function lowerArg(arg: Buffer): string {
  return arg.toString('latin1').toLowerCase();
}

type ExpireUnit = 'ex' | 'px' | 'exat' | 'pxat';

/** Redis's getExpireMillisecondsOrReply: a positive count, then an absolute epoch-ms time. */
function expireAt(ctx: CommandContext, unit: ExpireUnit, arg: Buffer | undefined): number {
  const raw = intArg(arg);
  if (raw <= 0n || ((unit === 'ex' || unit === 'exat') && raw > int64Max / 1000n)) throw invalidExpireError(ctx.name);
  let ms = unit === 'ex' || unit === 'exat' ? raw * 1000n : raw;
  if (unit === 'ex' || unit === 'px') ms += BigInt(ctx.server.clock.wallMs());
  if (ms <= 0n || ms > int64Max) throw invalidExpireError(ctx.name);
  return Number(ms);
}

interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  /** The expiry option given, converted by `expireAt` when the command needs it. */
  unit: ExpireUnit | undefined;
  unitArg: Buffer | undefined;
}

/** Redis's parseExtendedStringArgumentsOrReply for SET (isSet) and GETEX. */
function parseSetOptions(ctx: CommandContext, args: Buffer[], from: number, isSet: boolean): SetOptions {
  const o: SetOptions = { nx: false, xx: false, get: false, keepTtl: false, persist: false, unit: undefined, unitArg: undefined };
  for (let j = from; j < args.length; j++) {
    const opt = lowerArg(args[j] as Buffer);
    const hasNext = j + 1 < args.length;
    if (opt === 'nx' && !o.xx && isSet) o.nx = true;
    else if (opt === 'xx' && !o.nx && isSet) o.xx = true;
    else if (opt === 'get' && isSet) o.get = true;
    else if (opt === 'keepttl' && !o.persist && o.unit === undefined && isSet) o.keepTtl = true;
    else if (opt === 'persist' && !isSet && o.unit === undefined && !o.keepTtl) o.persist = true;
    else if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && !o.keepTtl && !o.persist && (o.unit === undefined || o.unit === opt) && hasNext) {
      o.unit = opt;
      o.unitArg = args[++j];
    } else throw syntaxError();
  }
  return o;
}

// GET and plain SET are the hottest commands: answered without a promise
// when the store can (KvApi winnerNow / putNow), else one KvApi call each.
const get: Handler = (ctx, args) => {
  const kv = ctx.server.kv;
  if (kv.winnerNow !== undefined) {
    const winner = kv.winnerNow(args[1] as Buffer, readOptions(ctx));
    if (winner !== wouldWait) {
      replyWinner(ctx, winner, true);
      return undefined;
    }
  }
  return getLater(ctx, args[1] as Buffer);
};

async function getLater(ctx: CommandContext, key: Buffer): Promise<void> {
  replyWinner(ctx, resolveWinner(await ctx.server.kv.get(key, readOptions(ctx))));
}

/**
 * GET's reply for what the store shows (also the connection's plain-GET
 * path). `lent`: the winner came from winnerNow, its value a view valid only
 * now (ReplyWriter.bulk copies it).
 */
export function replyWinner(ctx: CommandContext, winner: Winner | undefined, lent = false): void {
  if (winner === undefined) {
    ctx.server.stats.keyspaceMisses++;
    ctx.out.nullBulk();
  } else {
    ctx.server.stats.keyspaceHits++;
    ctx.out.bulk(winner.kind === 'value' ? winner.value : winner.count.toString(), lent);
  }
}

const set: Handler = (ctx, args) => {
  if (args.length !== 3) return setWithOptions(ctx, args);
  const key = args[1] as Buffer;
  const value = args[2] as Buffer;
  // The plain SET in one round trip: it supersedes every version the
  // coordinating replica holds, as a last write should (no read for a context).
  checkValueSize(ctx, value);
  const options = plainSetOptions(ctx);
  const kv = ctx.server.kv;
  const durable = kv.putNow === undefined ? wouldWait : kv.putNow(key, value, options);
  if (durable === durableNow) {
    ctx.out.ok();
    return undefined;
  }
  if (durable !== wouldWait) {
    if (ctx.ackWhenDurable === undefined) return durable.then(() => ctx.out.ok());
    ctx.ackWhenDurable(durable, ctx.name);
    return undefined;
  }
  return kv.put(key, value, options).then(() => ctx.out.ok());
};

async function setWithOptions(ctx: CommandContext, args: Buffer[]): Promise<void> {
  const key = args[1] as Buffer;
  const value = args[2] as Buffer;
  const o = parseSetOptions(ctx, args, 3, true);
  // SET checks the expiry before it looks at the key (t_string.c setGenericCommand).
  const optionExpiry = o.unit === undefined ? undefined : expireAt(ctx, o.unit, o.unitArg);
  const { v: old, context } = await readForWrite(ctx, key);
  const found = old !== undefined;
  if ((o.nx && found) || (o.xx && !found)) {
    if (o.get) replyValue(ctx, old);
    else ctx.out.nullBulk();
    return;
  }
  const expiresAtMs = o.keepTtl ? (old?.expiresAtMs ?? null) : (optionExpiry ?? null);
  if (expiresAtMs !== null && expiresAtMs <= ctx.server.clock.wallMs()) {
    // Already expired (EXAT/PXAT in the past): the key ends up absent, as in Redis.
    if (found) await deleteKey(ctx, key, context);
  } else {
    await writeString(ctx, key, value, expiresAtMs, context);
  }
  if (o.get) replyValue(ctx, old);
  else ctx.out.ok();
}

function replyValue(ctx: CommandContext, v: { value: Buffer } | undefined): void {
  if (v === undefined) ctx.out.nullBulk();
  else ctx.out.bulk(v.value);
}

const setnx: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const { v: old, context } = await readForWrite(ctx, key);
  if (old !== undefined) {
    ctx.out.integer(0);
    return;
  }
  await writeString(ctx, key, args[2] as Buffer, null, context);
  ctx.out.integer(1);
};

function setexWith(unit: 'ex' | 'px'): Handler {
  return async (ctx, args) => {
    const expiresAtMs = expireAt(ctx, unit, args[2]);
    await replaceString(ctx, args[1] as Buffer, args[3] as Buffer, expiresAtMs);
    ctx.out.ok();
  };
}

const getex: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const o = parseSetOptions(ctx, args, 2, false);
  const v = await readString(ctx, key);
  if (v === undefined) {
    ctx.out.nullBulk();
    return;
  }
  // GETEX checks the expiry only once the key is found (t_string.c getexCommand).
  const expiresAtMs = o.unit === undefined ? undefined : expireAt(ctx, o.unit, o.unitArg);
  if (expiresAtMs !== undefined && expiresAtMs <= ctx.server.clock.wallMs()) {
    await deleteKey(ctx, key, v.context);
  } else if (expiresAtMs !== undefined) {
    await ctx.server.kv.touch(key, expiresAtMs, writeOptions(ctx, { context: v.context }));
  } else if (o.persist && v.expiresAtMs !== null) {
    await ctx.server.kv.touch(key, null, writeOptions(ctx, { context: v.context }));
  }
  ctx.out.bulk(v.value);
};

const getdel: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const v = await readString(ctx, key);
  if (v === undefined) {
    ctx.out.nullBulk();
    return;
  }
  await deleteKey(ctx, key, v.context);
  ctx.out.bulk(v.value);
};

const getset: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const { v, context } = await readForWrite(ctx, key);
  await writeString(ctx, key, args[2] as Buffer, null, context);
  replyValue(ctx, v);
};

const mget: Handler = async (ctx, args) => {
  const keys = args.slice(1);
  const values = await Promise.all(keys.map((k) => readString(ctx, k)));
  ctx.out.array(values.length);
  for (const v of values) replyValue(ctx, v);
};

const mset: Handler = async (ctx, args) => {
  if (args.length % 2 !== 1) throw new RespError(`ERR wrong number of arguments for '${ctx.name}' command`);
  // In argument order, so a key given twice ends with its last value as in Redis.
  for (let i = 1; i < args.length; i += 2) await replaceString(ctx, args[i] as Buffer, args[i + 1] as Buffer, null);
  ctx.out.ok();
};

const msetnx: Handler = async (ctx, args) => {
  if (args.length % 2 !== 1) throw new RespError(`ERR wrong number of arguments for '${ctx.name}' command`);
  for (let i = 1; i < args.length; i += 2) {
    if ((await readString(ctx, args[i] as Buffer)) !== undefined) {
      ctx.out.integer(0);
      return;
    }
  }
  for (let i = 1; i < args.length; i += 2) await replaceString(ctx, args[i] as Buffer, args[i + 1] as Buffer, null);
  ctx.out.integer(1);
};

function checkStringLength(total: number): void {
  if (total > maxStringBytes) throw new RespError('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
}

const append: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const add = args[2] as Buffer;
  const { v, context } = await readForWrite(ctx, key);
  if (v === undefined) {
    await writeString(ctx, key, add, null, context);
    ctx.out.integer(add.length);
    return;
  }
  checkStringLength(v.value.length + add.length);
  const next = Buffer.concat([v.value, add]);
  await writeString(ctx, key, next, v.expiresAtMs, v.context);
  ctx.out.integer(next.length);
};

const strlen: Handler = async (ctx, args) => {
  const v = await readString(ctx, args[1] as Buffer);
  ctx.out.integer(v === undefined ? 0 : v.value.length);
};

const getrange: Handler = async (ctx, args) => {
  let start = intArg(args[2]);
  let end = intArg(args[3]);
  const v = await readString(ctx, args[1] as Buffer);
  const str = v?.value ?? Buffer.alloc(0);
  const len = BigInt(str.length);
  if (start < 0n && end < 0n && start > end) {
    ctx.out.bulk('');
    return;
  }
  if (start < 0n) start = len + start;
  if (end < 0n) end = len + end;
  if (start < 0n) start = 0n;
  if (end < 0n) end = 0n;
  if (end >= len) end = len - 1n;
  if (start > end || len === 0n) ctx.out.bulk('');
  else ctx.out.bulk(str.subarray(Number(start), Number(end) + 1));
};

const setrange: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const offset = intArg(args[2]);
  const patch = args[3] as Buffer;
  if (offset < 0n) throw new RespError('ERR offset is out of range');
  const { v, context } = await readForWrite(ctx, key);
  if (v === undefined) {
    if (patch.length === 0) {
      ctx.out.integer(0);
      return;
    }
  } else if (patch.length === 0) {
    ctx.out.integer(v.value.length);
    return;
  }
  checkStringLength(Number(offset) + patch.length);
  const at = Number(offset);
  const old = v?.value ?? Buffer.alloc(0);
  const next = Buffer.alloc(Math.max(old.length, at + patch.length));
  old.copy(next, 0);
  patch.copy(next, at);
  await writeString(ctx, key, next, v?.expiresAtMs ?? null, context);
  ctx.out.integer(next.length);
};

/**
 * INCR family: one KvApi call that adds through the CRDT counter; KvApi
 * checks the integer text and the 64-bit range with Redis's error texts.
 */
async function incrementBy(ctx: CommandContext, key: Buffer, delta: bigint): Promise<void> {
  const result = await ctx.server.kv.incrBy(key, delta, writeOptions(ctx));
  ctx.out.integer(result);
}

const incr: Handler = (ctx, args) => incrementBy(ctx, args[1] as Buffer, 1n);
const decr: Handler = (ctx, args) => incrementBy(ctx, args[1] as Buffer, -1n);
const incrby: Handler = (ctx, args) => incrementBy(ctx, args[1] as Buffer, intArg(args[2]));
const decrby: Handler = (ctx, args) => {
  const delta = intArg(args[2]);
  if (delta === int64Min) throw new RespError('ERR decrement would overflow');
  return incrementBy(ctx, args[1] as Buffer, -delta);
};

const incrbyfloat: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const delta = floatArg(args[2]);
  const { v, context } = await readForWrite(ctx, key);
  let current = { mantissa: 0n, scale: 0 };
  if (v !== undefined) {
    const parsed = parseDecimal(v.value);
    if (parsed === undefined) throw new RespError('ERR value is not a valid float');
    current = parsed;
  }
  const text = addDecimals(current, delta);
  await writeString(ctx, key, Buffer.from(text, 'latin1'), v?.expiresAtMs ?? null, context);
  ctx.out.bulk(text);
};

const str = (name: string, arity: number, flags: CommandSpec['flags'], handler: Handler, summary: string, keys: [number, number, number] = [1, 1, 1]): CommandSpec =>
  command({ name, arity, flags, firstKey: keys[0], lastKey: keys[1], keyStep: keys[2], group: 'string', summary, since: '1.0.0', aclCategories: ['@string'], handler });

export const stringCommands: CommandSpec[] = [
  str('get', 2, ['readonly', 'fast'], get, 'Returns the string value of a key.'),
  str('set', -3, ['write', 'denyoom'], set, 'Sets the string value of a key, ignoring its type. The key is created if it does not exist.'),
  str('setnx', 3, ['write', 'denyoom', 'fast'], setnx, 'Set the string value of a key only when the key does not exist.'),
  str('setex', 4, ['write', 'denyoom'], setexWith('ex'), 'Sets the string value and expiration time of a key.'),
  str('psetex', 4, ['write', 'denyoom'], setexWith('px'), 'Sets both string value and expiration time in milliseconds of a key.'),
  str('getex', -2, ['write', 'fast'], getex, 'Returns the string value of a key after setting its expiration time.'),
  str('getdel', 2, ['write', 'fast'], getdel, 'Returns the string value of a key after deleting the key.'),
  str('getset', 3, ['write', 'denyoom', 'fast'], getset, 'Returns the previous string value of a key after setting it to a new value.'),
  str('mget', -2, ['readonly', 'fast'], mget, 'Atomically returns the string values of one or more keys.', [1, -1, 1]),
  str('mset', -3, ['write', 'denyoom'], mset, 'Atomically creates or modifies the string values of one or more keys.', [1, -1, 2]),
  str('msetnx', -3, ['write', 'denyoom'], msetnx, 'Modifies the string values of one or more keys only when all keys do not exist.', [1, -1, 2]),
  str('append', 3, ['write', 'denyoom', 'fast'], append, 'Appends a string to the value of a key. Creates the key if it does not exist.'),
  str('strlen', 2, ['readonly', 'fast'], strlen, 'Returns the length of a string value.'),
  str('getrange', 4, ['readonly'], getrange, 'Returns a substring of the string stored at a key.'),
  str('setrange', 4, ['write', 'denyoom'], setrange, 'Overwrites a part of a string value with another by an offset. Creates the key if it does not exist.'),
  str('incr', 2, ['write', 'denyoom', 'fast'], incr, 'Increments the integer value of a key by one. Uses 0 as initial value if the key does not exist.'),
  str('decr', 2, ['write', 'denyoom', 'fast'], decr, 'Decrements the integer value of a key by one. Uses 0 as initial value if the key does not exist.'),
  str('incrby', 3, ['write', 'denyoom', 'fast'], incrby, 'Increments the integer value of a key by a number. Uses 0 as initial value if the key does not exist.'),
  str('decrby', 3, ['write', 'denyoom', 'fast'], decrby, 'Decrements a number from the integer value of a key. Uses 0 as initial value if the key does not exist.'),
  str('incrbyfloat', 3, ['write', 'denyoom', 'fast'], incrbyfloat, 'Increment the floating point value of a key by a number. Uses 0 as initial value if the key does not exist.'),
];
