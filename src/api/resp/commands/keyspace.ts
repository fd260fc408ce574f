/** Generic key commands (db.c, expire.c) with Redis 7.0 semantics, over KvApi. */
import { isFound } from '../../../replication/index.ts';
import { isRingkvError } from '../../../core/index.ts';
import { RespError, invalidExpireError, syntaxError } from '../errors.ts';
import { globMatch } from '../glob.ts';
import { command } from './spec.ts';
import type { CommandContext, CommandSpec, Handler } from './types.ts';
import { readOptions, writeOptions } from './types.ts';
import { deleteKey, int64Max, int64Min, intArg, numberArg, readString, writeString } from './values.ts';

/** Keys fetched per KvApi scan call while walking the whole keyspace (KEYS, RANDOMKEY). */
const keyspaceScanBatch = 1000;
/** Largest COUNT passed to KvApi.scan: Redis accepts any COUNT, and a reply may hold fewer anyway. */
const maxScanCount = 10_000;

/** Every live key, in storage order. */
async function allKeys(ctx: CommandContext, filter?: (key: Buffer) => boolean): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const page = await ctx.server.kv.scan(cursor, keyspaceScanBatch);
    for (const k of page.keys) {
      const key = Buffer.isBuffer(k) ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength);
      if (filter === undefined || filter(key)) keys.push(key);
    }
    cursor = page.cursor;
  } while (cursor !== '0');
  return keys;
}

/** Up to this many stored keys DBSIZE counts live keys exactly; above it the store's estimate is used. */
const exactCountMaxKeys = 10_000;

/**
 * Live keys for DBSIZE and INFO. The store's estimate also counts deleted
 * keys whose tombstones are not yet purged, so small keyspaces are counted
 * exactly by a scan.
 */
export async function countKeys(ctx: CommandContext): Promise<number> {
  const approximate = await ctx.server.kv.approximateCount();
  if (approximate > exactCountMaxKeys) return approximate;
  let count = 0;
  let cursor = '0';
  do {
    const page = await ctx.server.kv.scan(cursor, keyspaceScanBatch);
    count += page.keys.length;
    cursor = page.cursor;
  } while (cursor !== '0');
  return count;
}

const del: Handler = async (ctx, args) => {
  let deleted = 0;
  for (let i = 1; i < args.length; i++) {
    const key = args[i] as Buffer;
    const result = await ctx.server.kv.get(key, readOptions(ctx));
    if (!isFound(result)) continue;
    await deleteKey(ctx, key, result.context);
    deleted++;
  }
  ctx.out.integer(deleted);
};

const exists: Handler = async (ctx, args) => {
  let count = 0;
  for (let i = 1; i < args.length; i++) {
    if (isFound(await ctx.server.kv.get(args[i] as Buffer, readOptions(ctx)))) count++;
  }
  ctx.out.integer(count);
};

const type: Handler = async (ctx, args) => {
  const found = isFound(await ctx.server.kv.get(args[1] as Buffer, readOptions(ctx)));
  ctx.out.simple(found ? 'string' : 'none');
};

const keys: Handler = async (ctx, args) => {
  const pattern = args[1] as Buffer;
  const all = pattern.length === 1 && pattern[0] === 42;
  const found = await allKeys(ctx, all ? undefined : (k) => globMatch(pattern, k));
  ctx.out.bulkArray(found);
};

const scan: Handler = async (ctx, args) => {
  const cursor = (args[1] as Buffer).toString('latin1');
  let count = 10;
  let pattern: Buffer | undefined;
  let typeFilter: string | undefined;
  for (let i = 2; i < args.length; i++) {
    const opt = (args[i] as Buffer).toString('latin1').toLowerCase();
    const value = args[i + 1];
    if (opt === 'count' && value !== undefined) {
      count = numberArg(value);
      if (count < 1) throw syntaxError();
      i++;
    } else if (opt === 'match' && value !== undefined) {
      // '*' alone matches everything, the empty key too (Redis skips the matcher for it).
      pattern = value.length === 1 && value[0] === 42 ? undefined : value;
      i++;
    } else if (opt === 'type' && value !== undefined) {
      typeFilter = value.toString('latin1').toLowerCase();
      i++;
    } else throw syntaxError();
  }
  let page;
  try {
    page = await ctx.server.kv.scan(cursor, Math.min(count, maxScanCount));
  } catch (error) {
    if (isRingkvError(error) && error.code === 'RINGKV_INVALID_ARGUMENT') throw new RespError('ERR invalid cursor');
    throw error;
  }
  const out = page.keys.filter((k) => (pattern === undefined || globMatch(pattern, k)) && (typeFilter === undefined || typeFilter === 'string'));
  ctx.out.array(2);
  ctx.out.bulk(page.cursor);
  ctx.out.bulkArray(out);
};

const randomkey: Handler = async (ctx) => {
  const all = await allKeys(ctx);
  if (all.length === 0) ctx.out.nullBulk();
  else ctx.out.bulk(all[Math.floor(Math.random() * all.length)] as Buffer);
};

async function renameGeneric(ctx: CommandContext, args: Buffer[], nx: boolean): Promise<void> {
  const src = args[1] as Buffer;
  const dst = args[2] as Buffer;
  const v = await readString(ctx, src);
  if (v === undefined) throw new RespError('ERR no such key');
  if (src.equals(dst)) {
    if (nx) ctx.out.integer(0);
    else ctx.out.ok();
    return;
  }
  const target = await ctx.server.kv.get(dst, readOptions(ctx));
  if (nx && isFound(target)) {
    ctx.out.integer(0);
    return;
  }
  await writeString(ctx, dst, v.value, v.expiresAtMs, target.context);
  await deleteKey(ctx, src, v.context);
  if (nx) ctx.out.integer(1);
  else ctx.out.ok();
}

const rename: Handler = (ctx, args) => renameGeneric(ctx, args, false);
const renamenx: Handler = (ctx, args) => renameGeneric(ctx, args, true);

const copy: Handler = async (ctx, args) => {
  const src = args[1] as Buffer;
  const dst = args[2] as Buffer;
  let replace = false;
  for (let i = 3; i < args.length; i++) {
    const opt = (args[i] as Buffer).toString('latin1').toLowerCase();
    if (opt === 'replace') replace = true;
    else if (opt === 'db' && i + 1 < args.length) {
      if (intArg(args[++i]) !== 0n) throw new RespError('ERR DB index is out of range');
    } else throw syntaxError();
  }
  if (src.equals(dst)) throw new RespError('ERR source and destination objects are the same');
  const v = await readString(ctx, src);
  if (v === undefined) {
    ctx.out.integer(0);
    return;
  }
  const target = await ctx.server.kv.get(dst, readOptions(ctx));
  if (isFound(target) && !replace) {
    ctx.out.integer(0);
    return;
  }
  await writeString(ctx, dst, v.value, v.expiresAtMs, target.context);
  ctx.out.integer(1);
};

/** EXPIRE family (expire.c expireGenericCommand): `relative` adds now; `seconds` scales by 1000. */
function expireWith(relative: boolean, seconds: boolean): Handler {
  return async (ctx, args) => {
    const key = args[1] as Buffer;
    let nx = false;
    let xx = false;
    let gt = false;
    let lt = false;
    for (let j = 3; j < args.length; j++) {
      const raw = (args[j] as Buffer).toString();
      const opt = raw.toLowerCase();
      if (opt === 'nx') nx = true;
      else if (opt === 'xx') xx = true;
      else if (opt === 'gt') gt = true;
      else if (opt === 'lt') lt = true;
      else throw new RespError(`ERR Unsupported option ${raw}`);
    }
    if (nx && (xx || gt || lt)) throw new RespError('ERR NX and XX, GT or LT options at the same time are not compatible');
    if (gt && lt) throw new RespError('ERR GT and LT options at the same time are not compatible');
    let when = intArg(args[2]);
    if (seconds) {
      if (when > int64Max / 1000n || when < int64Min / 1000n) throw invalidExpireError(ctx.name);
      when *= 1000n;
    }
    const base = relative ? BigInt(ctx.server.clock.wallMs()) : 0n;
    if (when > int64Max - base) throw invalidExpireError(ctx.name);
    when += base;
    const v = await readString(ctx, key);
    if (v === undefined) {
      ctx.out.integer(0);
      return;
    }
    const current = v.expiresAtMs === null ? -1n : BigInt(v.expiresAtMs);
    if ((nx && current !== -1n) || (xx && current === -1n) || (gt && (when <= current || current === -1n)) || (lt && current !== -1n && when >= current)) {
      ctx.out.integer(0);
      return;
    }
    if (when <= BigInt(ctx.server.clock.wallMs())) await deleteKey(ctx, key, v.context);
    else await ctx.server.kv.touch(key, Number(when), writeOptions(ctx, { context: v.context }));
    ctx.out.integer(1);
  };
}

function ttlWith(unit: 'ttl' | 'pttl' | 'expiretime' | 'pexpiretime'): Handler {
  return async (ctx, args) => {
    const v = await readString(ctx, args[1] as Buffer);
    if (v === undefined) {
      ctx.out.integer(-2);
      return;
    }
    if (v.expiresAtMs === null) {
      ctx.out.integer(-1);
      return;
    }
    const at = v.expiresAtMs;
    const left = Math.max(0, at - ctx.server.clock.wallMs());
    switch (unit) {
      case 'ttl':
        ctx.out.integer(Math.floor((left + 500) / 1000));
        break;
      case 'pttl':
        ctx.out.integer(left);
        break;
      case 'expiretime':
        ctx.out.integer(Math.floor(at / 1000));
        break;
      case 'pexpiretime':
        ctx.out.integer(at);
        break;
    }
  };
}

const persist: Handler = async (ctx, args) => {
  const key = args[1] as Buffer;
  const v = await readString(ctx, key);
  if (v === undefined || v.expiresAtMs === null) {
    ctx.out.integer(0);
    return;
  }
  await ctx.server.kv.touch(key, null, writeOptions(ctx, { context: v.context }));
  ctx.out.integer(1);
};

const k = (name: string, arity: number, flags: CommandSpec['flags'], handler: Handler, summary: string, keys: [number, number, number] = [1, 1, 1], since = '1.0.0'): CommandSpec =>
  command({ name, arity, flags, firstKey: keys[0], lastKey: keys[1], keyStep: keys[2], group: 'generic', summary, since, aclCategories: ['@keyspace'], handler });

export const keyspaceCommands: CommandSpec[] = [
  k('del', -2, ['write'], del, 'Deletes one or more keys.', [1, -1, 1]),
  k('unlink', -2, ['write', 'fast'], del, 'Asynchronously deletes one or more keys.', [1, -1, 1], '4.0.0'),
  k('exists', -2, ['readonly', 'fast'], exists, 'Determines whether one or more keys exist.', [1, -1, 1]),
  k('type', 2, ['readonly', 'fast'], type, 'Determines the type of value stored at a key.'),
  k('keys', 2, ['readonly'], keys, 'Returns all key names that match a pattern.', [0, 0, 0]),
  k('scan', -2, ['readonly'], scan, 'Iterates over the key names in the database.', [0, 0, 0], '2.8.0'),
  k('randomkey', 1, ['readonly', 'random'], randomkey, 'Returns a random key name from the database.', [0, 0, 0]),
  k('rename', 3, ['write'], rename, 'Renames a key and overwrites the destination.', [1, 2, 1]),
  k('renamenx', 3, ['write', 'fast'], renamenx, 'Renames a key only when the target key name does not exist.', [1, 2, 1]),
  k('copy', -3, ['write', 'denyoom'], copy, 'Copies the value of a key to a new key.', [1, 2, 1], '6.2.0'),
  k('expire', -3, ['write', 'fast'], expireWith(true, true), 'Sets the expiration time of a key in seconds.'),
  k('pexpire', -3, ['write', 'fast'], expireWith(true, false), 'Sets the expiration time of a key in milliseconds.', [1, 1, 1], '2.6.0'),
  k('expireat', -3, ['write', 'fast'], expireWith(false, true), 'Sets the expiration time of a key to a Unix timestamp.', [1, 1, 1], '1.2.0'),
  k('pexpireat', -3, ['write', 'fast'], expireWith(false, false), 'Sets the expiration time of a key to a Unix milliseconds timestamp.', [1, 1, 1], '2.6.0'),
  k('ttl', 2, ['readonly', 'fast'], ttlWith('ttl'), 'Returns the expiration time in seconds of a key.'),
  k('pttl', 2, ['readonly', 'fast'], ttlWith('pttl'), 'Returns the expiration time in milliseconds of a key.', [1, 1, 1], '2.6.0'),
  k('expiretime', 2, ['readonly', 'fast'], ttlWith('expiretime'), 'Returns the expiration time of a key as a Unix timestamp.', [1, 1, 1], '7.0.0'),
  k('pexpiretime', 2, ['readonly', 'fast'], ttlWith('pexpiretime'), 'Returns the expiration time of a key as a Unix milliseconds timestamp.', [1, 1, 1], '7.0.0'),
  k('persist', 2, ['write', 'fast'], persist, 'Removes the expiration time of a key.', [1, 1, 1], '2.2.0'),
];
