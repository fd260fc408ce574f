/** `ringkv start`: one node from flags and/or a JSON config file, until SIGINT/SIGTERM. */
import { readFileSync } from 'node:fs';
import { createLogger, isRingkvError } from '../core/index.ts';
import type { NodeConfig, RawConfig } from '../node/index.ts';
import { RingkvNode, applyConfig, configFromEnv, defaultConfig, modeOf, parseConfigFile, validateConfig } from '../node/index.ts';
import type { CommandSpec, Parsed } from './args.ts';
import { UsageError, exitError, exitOk, listOption, stringOption } from './args.ts';
import { tuneHeapGrowth } from './heap-growth.ts';

export const startSpec: CommandSpec = {
  name: 'start',
  summary: 'Start one ringkv node in the foreground. Settings come from defaults, then --config, then RINGKV_* environment variables, then flags.',
  options: {
    config: { type: 'string', short: 'c', value: '<file>', help: 'JSON config file (keys as in docs/operations.md, e.g. {"respPort": 7379})' },
    'node-id': { type: 'string', value: '<id>', help: 'Node id (default: kept in <data>/NODE_ID, created at first start)' },
    data: { type: 'string', short: 'd', value: '<dir>', help: 'Data directory (default ./data)' },
    host: { type: 'string', value: '<addr>', help: 'Address to listen on (default 127.0.0.1)' },
    'advertise-host': { type: 'string', value: '<addr>', help: 'Address peers and clients are told to use (default: --host)' },
    'resp-port': { type: 'string', value: '<port>', help: 'Redis protocol port (default 7379; 0 picks a free one)' },
    'http-port': { type: 'string', value: '<port>', help: 'HTTP API and admin page port (default 8379)' },
    'cluster-port': { type: 'string', value: '<port>', help: 'Inter-node port (default 9379)' },
    seeds: { type: 'string', multiple: true, value: '<host:port,...>', help: 'Inter-node addresses of nodes to join through' },
    dc: { type: 'string', value: '<name>', help: 'Data center of this node (default dc1)' },
    rack: { type: 'string', value: '<name>', help: 'Rack of this node (default rack1)' },
    'cluster-name': { type: 'string', value: '<name>', help: 'Cluster name; nodes of another cluster are refused (default ringkv)' },
    secret: { type: 'string', value: '<secret>', help: 'Cluster secret for inter-node authentication (or RINGKV_CLUSTER_SECRET)' },
    requirepass: { type: 'string', value: '<password>', help: 'RESP password of the default user (or RINGKV_REQUIREPASS)' },
    user: { type: 'string', multiple: true, value: '<name:password>', help: 'A named RESP user (AUTH name password)' },
    'http-token': { type: 'string', value: '<token>', help: 'Bearer token required by the HTTP API (or RINGKV_HTTP_TOKEN)' },
    'wal-sync': { type: 'string', value: '<mode>', help: 'always (default: fsync before acknowledging), interval, or none' },
    'wal-sync-interval-ms': { type: 'string', value: '<ms>', help: 'Sync period for --wal-sync interval (default 100)' },
    'memtable-mb': { type: 'string', value: '<MiB>', help: 'Memtable budget: flushed to disk past this much memory or WAL (default 64)' },
    'object-cache-mb': { type: 'string', value: '<MiB>', help: 'Heap for decoded objects of recently used keys (default 0: off)' },
    'replication-factor': { type: 'string', short: 'n', value: '<N>', help: 'Replicas per key in a cluster (default 3)' },
    'namespace-n': { type: 'string', multiple: true, value: '<ns=N,...>', help: 'N for the keys of a namespace (text before the first ":"), e.g. session=2,cache=1' },
    'tombstone-grace-seconds': { type: 'string', value: '<s>', help: 'How long tombstones and expired versions are kept (default 864000: 10 days)' },
    'max-hint-age-seconds': { type: 'string', value: '<s>', help: 'Hints older than this are dropped, not replayed (default: half the grace period; must be below it)' },
    'log-level': { type: 'string', value: '<level>', help: 'debug, info (default), warn or error' },
  },
  notes: [
    'Examples:',
    '  ringkv start --data ./data/a --resp-port 7379 --http-port 8379',
    '  ringkv start --config node.json --seeds 10.0.0.1:9379',
  ],
};

const flagToSetting: Record<string, keyof NodeConfig> = {
  'node-id': 'nodeId',
  data: 'dataDir',
  host: 'host',
  'advertise-host': 'advertiseHost',
  'resp-port': 'respPort',
  'http-port': 'httpPort',
  'cluster-port': 'clusterPort',
  dc: 'dc',
  rack: 'rack',
  'cluster-name': 'clusterName',
  secret: 'clusterSecret',
  requirepass: 'requirepass',
  'http-token': 'httpToken',
  'wal-sync': 'walSync',
  'wal-sync-interval-ms': 'walSyncIntervalMs',
  'memtable-mb': 'memtableMb',
  'object-cache-mb': 'objectCacheMb',
  'replication-factor': 'replicationFactor',
  'tombstone-grace-seconds': 'tombstoneGraceSeconds',
  'max-hint-age-seconds': 'maxHintAgeSeconds',
  'log-level': 'logLevel',
};

/** Builds the node's config: defaults < config file < environment < flags. */
export function configFromArgs(parsed: Parsed, env: Record<string, string | undefined> = process.env): NodeConfig {
  if (parsed.positionals.length > 0) throw new UsageError(`ringkv start takes no arguments, got "${parsed.positionals.join(' ')}"`);
  let config = defaultConfig();
  const file = stringOption(parsed, 'config');
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(`Cannot read config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    config = applyConfig(config, parseConfigFile(text, file), `config file ${file}`);
  }
  config = applyConfig(config, configFromEnv(env), 'the environment');
  const raw: RawConfig = {};
  for (const [flag, setting] of Object.entries(flagToSetting)) {
    const value = stringOption(parsed, flag);
    if (value !== undefined) raw[setting] = value;
  }
  const seeds = listOption(parsed, 'seeds');
  if (seeds !== undefined) raw.seeds = seeds.flatMap((s) => s.split(','));
  const users = listOption(parsed, 'user');
  if (users !== undefined) raw.users = users;
  const namespaces = listOption(parsed, 'namespace-n');
  if (namespaces !== undefined) raw.namespaceReplication = namespaces;
  config = applyConfig(config, raw, 'the command line');
  return validateConfig(config);
}

/** Signals repeated within this window count as one. */
export const repeatSignalGraceMs = 2000;

/** Runs a node until a signal; resolves with the process exit code. */
export async function runStart(parsed: Parsed): Promise<number> {
  const config = configFromArgs(parsed);
  // Settings that contradict each other are usage errors (exit 2), not start failures.
  modeOf(config);
  const log = createLogger({ level: config.logLevel });
  // Fewer full collections, each pausing every request on this node (heap-growth.ts).
  tuneHeapGrowth();
  let node: RingkvNode;
  try {
    node = await RingkvNode.start(config, { log });
  } catch (error) {
    log.error('node failed to start', { error, ...(isRingkvError(error) ? { code: error.code } : {}) });
    process.stderr.write(`ringkv: ${(error as Error).message}\n`);
    return exitError;
  }
  return new Promise<number>((resolve) => {
    let firstSignalMs: number | undefined;
    const stop = (signal: NodeJS.Signals): void => {
      if (firstSignalMs !== undefined) {
        // Ctrl-C under `ringkv dev` reaches a node twice (from the terminal and from dev): only a
        // signal well after the first means the operator does not want to wait for the drain.
        if (Date.now() - firstSignalMs < repeatSignalGraceMs) return;
        log.warn('second signal during shutdown: exiting now', { signal });
        process.exit(exitError);
      }
      firstSignalMs = Date.now();
      log.info('stopping', { signal });
      node.stop().then(
        () => resolve(exitOk),
        (error: unknown) => {
          log.error('shutdown failed', { error });
          resolve(exitError);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
