/** Server commands: COMMAND, CONFIG, INFO, TIME, DBSIZE, FLUSHALL/FLUSHDB, FUNCTION FLUSH, SLOWLOG. */
import { isRingkvError } from '../../../core/index.ts';
import { RespError, syntaxError } from '../errors.ts';
import { globMatch } from '../glob.ts';
import { helpLines, redisCompatVersion } from './connection.ts';
import { countKeys } from './keyspace.ts';
import { command, sub } from './spec.ts';
import type { CommandContext, CommandSpec, Handler } from './types.ts';
import { intArg } from './values.ts';

// ---------------------------------------------------------------- COMMAND

function writeCommandInfo(ctx: CommandContext, spec: CommandSpec): void {
  const out = ctx.out;
  out.array(10);
  out.bulk(spec.name);
  out.integer(spec.arity);
  out.set(spec.flags.length);
  for (const f of spec.flags) out.simple(f);
  out.integer(spec.firstKey);
  out.integer(spec.lastKey);
  out.integer(spec.keyStep);
  out.set(spec.aclCategories.length);
  for (const a of spec.aclCategories) out.simple(a);
  out.array(0);
  out.array(0);
  const subs = spec.subcommands ?? [];
  out.array(subs.length);
  for (const s of subs) writeCommandInfo(ctx, s);
}

function writeCommandDocs(ctx: CommandContext, spec: CommandSpec): void {
  const out = ctx.out;
  const subs = spec.subcommands ?? [];
  out.map(3 + (spec.complexity === undefined ? 0 : 1) + (subs.length > 0 ? 1 : 0));
  out.bulk('summary');
  out.bulk(spec.summary);
  out.bulk('since');
  out.bulk(spec.since);
  out.bulk('group');
  out.bulk(spec.group);
  if (spec.complexity !== undefined) {
    out.bulk('complexity');
    out.bulk(spec.complexity);
  }
  if (subs.length > 0) {
    out.bulk('subcommands');
    out.map(subs.length);
    for (const s of subs) {
      out.bulk(s.name);
      writeCommandDocs(ctx, s);
    }
  }
}

const commandAll: Handler = (ctx) => {
  const all = ctx.server.commands();
  ctx.out.array(all.length);
  for (const spec of all) writeCommandInfo(ctx, spec);
};

const commandCount: Handler = (ctx) => ctx.out.integer(ctx.server.commands().length);

const commandInfo: Handler = (ctx, args) => {
  const names = args.length > 2 ? args.slice(2).map((a) => a.toString()) : ctx.server.commands().map((s) => s.name);
  ctx.out.array(names.length);
  for (const name of names) {
    const spec = ctx.server.lookup(name);
    if (spec === undefined) ctx.out.nullArray();
    else writeCommandInfo(ctx, spec);
  }
};

const commandDocs: Handler = (ctx, args) => {
  const specs = (args.length > 2 ? args.slice(2).map((a) => ctx.server.lookup(a.toString())) : ctx.server.commands()).filter(
    (s): s is CommandSpec => s !== undefined,
  );
  ctx.out.map(specs.length);
  for (const spec of specs) {
    ctx.out.bulk(spec.name);
    writeCommandDocs(ctx, spec);
  }
};

const commandList: Handler = (ctx) => {
  const names = ctx.server.commands().map((s) => s.name);
  ctx.out.bulkArray(names);
};

const commandHelp: Handler = (ctx) =>
  helpLines(ctx, [
    'COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    '(no subcommand)', '    Return details about all commands.',
    'COUNT', '    Return the total number of commands in this server.',
    'LIST', '    Return a list of all commands in this server.',
    'INFO [<command-name> ...]', '    Return details about multiple commands.',
    'DOCS [<command-name> ...]', '    Return documentation details about multiple commands.',
    'HELP', '    Print this help.',
  ]);

// ---------------------------------------------------------------- CONFIG

const configGet: Handler = (ctx, args) => {
  const all = ctx.server.settings.list();
  const matched = new Map<string, string>();
  for (const pattern of args.slice(2)) {
    for (const s of all) {
      if (!matched.has(s.name) && globMatch(pattern, Buffer.from(s.name), true)) matched.set(s.name, s.value);
    }
  }
  ctx.out.map(matched.size);
  for (const [name, value] of matched) {
    ctx.out.bulk(name);
    ctx.out.bulk(value);
  }
};

const configSet: Handler = (ctx, args) => {
  if (args.length % 2 !== 0) throw new RespError(`ERR wrong number of arguments for 'config|set' command`);
  const settings = ctx.server.settings;
  const pairs: Array<[string, string]> = [];
  for (let i = 2; i < args.length; i += 2) {
    const name = (args[i] as Buffer).toString();
    if (!settings.has(name)) throw new RespError(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
    pairs.push([name, (args[i + 1] as Buffer).toString()]);
  }
  // Validate every pair before applying any, so a bad pair changes nothing (as in Redis 7).
  const previous = pairs.map(([name]) => [name, settings.get(name) ?? ''] as const);
  try {
    for (const [name, value] of pairs) settings.set(name, value);
  } catch (error) {
    for (const [name, value] of previous) settings.set(name, value, { force: true });
    if (isRingkvError(error)) {
      const failing = pairs.find(([name]) => error.message.includes(name))?.[0] ?? pairs[0]?.[0] ?? '';
      throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${failing}') - ${error.message}`);
    }
    throw error;
  }
  ctx.out.ok();
};

const configResetstat: Handler = (ctx) => {
  const stats = ctx.server.stats;
  stats.totalCommands = 0;
  stats.failedCommands = 0;
  stats.keyspaceHits = 0;
  stats.keyspaceMisses = 0;
  stats.rejectedConnections = 0;
  stats.protocolErrors = 0;
  stats.netInputBytes = 0;
  stats.netOutputBytes = 0;
  ctx.out.ok();
};

const configRewrite: Handler = () => {
  throw new RespError('ERR The server is running without a config file');
};

const configHelp: Handler = (ctx) =>
  helpLines(ctx, [
    'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    'GET <pattern>', '    Return parameters matching the glob-like <pattern> and their values.',
    'SET <directive> <value>', '    Set the configuration <directive> to <value>.',
    'RESETSTAT', '    Reset statistics reported by the INFO command.',
    'HELP', '    Print this help.',
  ]);

// ---------------------------------------------------------------- INFO

const defaultSections = ['server', 'clients', 'persistence', 'stats', 'replication', 'keyspace', 'ringkv'];

async function infoSections(ctx: CommandContext): Promise<Record<string, Record<string, string | number>>> {
  const server = ctx.server;
  const stats = server.stats;
  const clients = [...server.clients()];
  const uptimeSec = Math.floor((server.clock.wallMs() - server.startedWallMs) / 1000);
  const address = server.address();
  const keys = await countKeys(ctx);
  const ring = server.cluster.ring();
  const nodes = server.cluster.nodes();
  const sections: Record<string, Record<string, string | number>> = {
    server: {
      redis_version: redisCompatVersion,
      ringkv_version: '0.1.0',
      redis_mode: 'standalone',
      os: `${process.platform} ${process.arch}`,
      arch_bits: 64,
      process_id: process.pid,
      tcp_port: address?.port ?? 0,
      uptime_in_seconds: uptimeSec,
      uptime_in_days: Math.floor(uptimeSec / 86400),
      node_id: server.cluster.localId,
    },
    clients: {
      connected_clients: clients.length,
      maxclients: server.settings.getInt('maxclients'),
      blocked_clients: 0,
    },
    persistence: {
      loading: 0,
      rdb_changes_since_last_save: 0,
      aof_enabled: server.settings.get('appendonly') === 'yes' ? 1 : 0,
      wal_sync: server.settings.get('wal-sync') ?? '',
    },
    stats: {
      total_connections_received: stats.totalConnections,
      total_commands_processed: stats.totalCommands,
      failed_calls: stats.failedCommands,
      rejected_connections: stats.rejectedConnections,
      total_net_input_bytes: stats.netInputBytes,
      total_net_output_bytes: stats.netOutputBytes,
      keyspace_hits: stats.keyspaceHits,
      keyspace_misses: stats.keyspaceMisses,
      protocol_errors: stats.protocolErrors,
    },
    replication: { role: 'master', connected_slaves: 0 },
    keyspace: keys > 0 ? { db0: `keys=${keys},expires=0,avg_ttl=0` } : {},
    ringkv: {
      node_id: server.cluster.localId,
      nodes: nodes.length,
      nodes_up: nodes.filter((n) => n.liveness === 'up').length,
      ring_strategy: ring.strategy,
      ring_version: ring.version,
      partitions: ring.partitionCount,
      replication_factor: ring.replicationFactor,
      default_read_consistency: String(server.defaults.r),
      default_write_consistency: String(server.defaults.w),
      default_strict_quorum: server.defaults.strict ? 'yes' : 'no',
    },
  };
  for (const [name, fields] of Object.entries(server.extraInfo())) sections[name] = { ...(sections[name] ?? {}), ...fields };
  return sections;
}

function titleCase(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

const info: Handler = async (ctx, args) => {
  const sections = await infoSections(ctx);
  const asked = args.slice(1).map((a) => a.toString().toLowerCase());
  let names: string[];
  if (asked.length === 0 || asked.includes('default')) names = [...defaultSections, ...Object.keys(sections).filter((n) => !defaultSections.includes(n))];
  else if (asked.includes('all') || asked.includes('everything')) names = Object.keys(sections);
  else names = asked.filter((n) => sections[n] !== undefined);
  const parts: string[] = [];
  for (const name of [...new Set(names)]) {
    const fields = sections[name];
    if (fields === undefined) continue;
    const lines = Object.entries(fields).map(([k, v]) => `${k}:${v}\r\n`);
    parts.push(`# ${titleCase(name)}\r\n${lines.join('')}`);
  }
  ctx.out.verbatim(parts.join('\r\n'));
};

// ---------------------------------------------------------------- the rest

const time: Handler = (ctx) => {
  // From the injected clock alone, so TIME agrees with the TTL arithmetic (sub-millisecond digits are the clock's fraction).
  const ms = ctx.server.clock.wallMs();
  const micros = Math.floor((ms % 1000) * 1000);
  ctx.out.array(2);
  ctx.out.bulk(String(Math.floor(ms / 1000)));
  ctx.out.bulk(String(micros));
};

const dbsize: Handler = async (ctx) => {
  ctx.out.integer(await countKeys(ctx));
};

const flushall: Handler = async (ctx, args) => {
  for (const a of args.slice(1)) {
    const opt = a.toString().toLowerCase();
    if (opt !== 'async' && opt !== 'sync') throw syntaxError();
  }
  await ctx.server.kv.flushAll();
  ctx.out.ok();
};

const functionFlush: Handler = (ctx, args) => {
  const opt = args[2]?.toString().toLowerCase();
  if (opt !== undefined && opt !== 'async' && opt !== 'sync') throw new RespError('ERR FUNCTION FLUSH only supports SYNC|ASYNC option');
  ctx.out.ok();
};

const slowlogGet: Handler = (ctx, args) => {
  const wanted = args.length > 2 ? Number(intArg(args[2])) : 10;
  const log = ctx.server.slowlog;
  const entries = wanted < 0 ? log : log.slice(0, wanted);
  ctx.out.array(entries.length);
  for (const e of entries) {
    ctx.out.array(6);
    ctx.out.integer(e.id);
    ctx.out.integer(e.startedSec);
    ctx.out.integer(e.durationUs);
    ctx.out.bulkArray(e.args);
    ctx.out.bulk(e.client);
    ctx.out.bulk(e.clientName);
  }
};
const slowlogLen: Handler = (ctx) => ctx.out.integer(ctx.server.slowlog.length);
const slowlogReset: Handler = (ctx) => {
  ctx.server.slowlog.length = 0;
  ctx.out.ok();
};

const s = (name: string, arity: number, flags: CommandSpec['flags'], handler: Handler, summary: string, since = '1.0.0'): CommandSpec =>
  command({ name, arity, flags, group: 'server', summary, since, aclCategories: ['@slow'], handler });

export const serverCommands: CommandSpec[] = [
  command({
    name: 'command', arity: -1, flags: ['loading', 'stale'], group: 'server', summary: 'Returns detailed information about all commands.', since: '2.8.13',
    handler: commandAll,
    subcommands: [
      sub('command', 'count', 2, ['loading', 'stale'], commandCount, 'Returns a count of commands.'),
      sub('command', 'info', -2, ['loading', 'stale'], commandInfo, 'Returns information about one, multiple or all commands.'),
      sub('command', 'docs', -2, ['loading', 'stale'], commandDocs, 'Returns documentary information about one, multiple or all commands.'),
      sub('command', 'list', -2, ['loading', 'stale'], commandList, 'Returns a list of command names.'),
      sub('command', 'help', 2, ['loading', 'stale'], commandHelp, 'Returns helpful text about the different subcommands.'),
    ],
  }),
  command({
    name: 'config', arity: -2, flags: [], group: 'server', summary: 'A container for server configuration commands.', since: '2.0.0',
    subcommands: [
      sub('config', 'get', -3, ['admin', 'noscript', 'loading', 'stale'], configGet, 'Returns the effective values of configuration parameters.'),
      sub('config', 'set', -4, ['admin', 'noscript', 'loading', 'stale'], configSet, 'Sets configuration parameters in-flight.'),
      sub('config', 'resetstat', 2, ['admin', 'noscript', 'loading', 'stale'], configResetstat, 'Resets the server\'s statistics.'),
      sub('config', 'rewrite', 2, ['admin', 'noscript', 'loading', 'stale'], configRewrite, 'Persists the effective configuration to file.'),
      sub('config', 'help', 2, ['loading', 'stale'], configHelp, 'Returns helpful text about the different subcommands.'),
    ],
  }),
  s('info', -1, ['loading', 'stale'], info, 'Returns information and statistics about the server.'),
  s('time', 1, ['loading', 'stale', 'fast'], time, 'Returns the server time.', '2.6.0'),
  command({ name: 'dbsize', arity: 1, flags: ['readonly', 'fast'], group: 'server', summary: 'Returns the number of keys in the database.', aclCategories: ['@keyspace'], handler: dbsize }),
  command({ name: 'flushall', arity: -1, flags: ['write'], group: 'server', summary: 'Removes all keys from all databases.', aclCategories: ['@keyspace', '@dangerous'], handler: flushall }),
  command({ name: 'flushdb', arity: -1, flags: ['write'], group: 'server', summary: 'Remove all keys from the current database.', aclCategories: ['@keyspace', '@dangerous'], handler: flushall }),
  command({
    name: 'function', arity: -2, flags: [], group: 'scripting', summary: 'A container for function commands.', since: '7.0.0',
    subcommands: [sub('function', 'flush', -2, ['write', 'noscript'], functionFlush, 'Deletes all libraries and functions (ringkv has none).', 'scripting')],
  }),
  command({
    name: 'slowlog', arity: -2, flags: [], group: 'server', summary: 'A container for slow log commands.', since: '2.2.12',
    subcommands: [
      sub('slowlog', 'get', -2, ['admin', 'loading', 'stale'], slowlogGet, 'Returns the slow log\'s entries.'),
      sub('slowlog', 'len', 2, ['admin', 'loading', 'stale'], slowlogLen, 'Returns the number of entries in the slow log.'),
      sub('slowlog', 'reset', 2, ['admin', 'loading', 'stale'], slowlogReset, 'Clears all entries from the slow log.'),
    ],
  }),
];
