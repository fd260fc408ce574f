/**
 * Node configuration: defaults, a JSON config file, command-line flags and a
 * few environment variables for secrets (so they stay out of `ps`). Later
 * sources override earlier ones: defaults < file < environment < flags.
 * Everything is validated here, once, with messages that name the setting,
 * the value seen and what is accepted.
 */
import type { LogLevel } from '../core/index.ts';
import { InvalidArgumentError } from '../core/index.ts';
import { defaultTombstoneGraceMs, maxHintAgeFor } from '../replication/index.ts';

export type WalSync = 'always' | 'interval' | 'none';

export interface NodeConfig {
  /** Stable node id; when absent the one in `<dataDir>/NODE_ID` is used, or a new one is made. */
  nodeId: string | undefined;
  dataDir: string;
  /** Address the three listeners bind to. */
  host: string;
  /** Address other nodes and clients are told to use; defaults to `host`. */
  advertiseHost: string | undefined;
  respPort: number;
  httpPort: number;
  clusterPort: number;
  /** Inter-node addresses (host:port) of nodes to join through. */
  seeds: string[];
  dc: string;
  rack: string;
  clusterName: string;
  /** Shared secret authenticating inter-node connections; undefined: none. */
  clusterSecret: string | undefined;
  /** RESP `requirepass`: the password of the `default` user. */
  requirepass: string | undefined;
  /** RESP named users (ACL-style `AUTH user pass`). */
  users: Record<string, string>;
  /** HTTP bearer token; undefined: the HTTP API is open. */
  httpToken: string | undefined;
  walSync: WalSync;
  walSyncIntervalMs: number;
  /**
   * The storage engine's memtable budget in MiB: a memtable is flushed once
   * its memory or the bytes written through it (its WAL) reach it. 64 MiB
   * (RocksDB's write buffer default): a working set of that size is served
   * from memory and overwritten in place, at a cost of up to two memtables of
   * memory and a WAL of that size to replay after a crash.
   */
  memtableMb: number;
  /**
   * MiB of heap for the replica store's cache of decoded objects (0: none,
   * the default). Off because it cost more than it saved where measured: a
   * loaded three-node cluster (100-byte values) served 12–17 % more
   * operations without it with uniform keys, and −3 to +10 % with zipfian
   * keys, since copying written objects into it and evicting them kept the
   * young-generation collector busy, while the engine's row and block caches
   * answer a read of a hot key from memory anyway. It may pay for keys with
   * many siblings or large clocks, whose decode costs more.
   */
  objectCacheMb: number;
  /** Replicas per key when running as a cluster (N). */
  replicationFactor: number;
  /**
   * N for keys of a namespace (the text before a key's first `:`), where it
   * differs from `replicationFactor`: `{ "session": 2 }`.
   */
  namespaceReplication: Record<string, number>;
  /**
   * Seconds a tombstone or expired version is kept before the purge pass and
   * compaction may drop it. Longer than any replica can stay behind (down,
   * or its hints not yet delivered), or a deleted key can come back.
   */
  tombstoneGraceSeconds: number;
  /**
   * Hints whose oldest value is older than this many seconds are dropped
   * instead of replayed; undefined: half of `tombstoneGraceSeconds`. Must
   * be below the grace period (see maxHintAgeMsOf).
   */
  maxHintAgeSeconds: number | undefined;
  logLevel: LogLevel;
}

export const defaultRespPort = 7379;
export const defaultHttpPort = 8379;
export const defaultClusterPort = 9379;
export const defaultWalSyncIntervalMs = 100;
export const defaultMemtableMb = 64;
/** 1 GiB: a memtable is flushed and replayed whole (and two may be in memory at once). */
export const maxMemtableMb = 1024;
export const maxObjectCacheMb = 4096;
export const defaultReplicationFactor = 3;
// Long enough for any readable id, short enough for log lines and gossip.
export const maxNodeIdChars = 64;
export const maxReplicationFactor = 16;
export const defaultTombstoneGraceSeconds = defaultTombstoneGraceMs / 1000;
/** Ten years: enough for any grace period, small enough that milliseconds stay exact. */
export const maxGraceSeconds = 10 * 365 * 24 * 60 * 60;
export const maxNamespaceChars = 64;

export function defaultConfig(): NodeConfig {
  return {
    nodeId: undefined,
    dataDir: './data',
    host: '127.0.0.1',
    advertiseHost: undefined,
    respPort: defaultRespPort,
    httpPort: defaultHttpPort,
    clusterPort: defaultClusterPort,
    seeds: [],
    dc: 'dc1',
    rack: 'rack1',
    clusterName: 'ringkv',
    clusterSecret: undefined,
    requirepass: undefined,
    users: {},
    httpToken: undefined,
    walSync: 'always',
    walSyncIntervalMs: defaultWalSyncIntervalMs,
    memtableMb: defaultMemtableMb,
    objectCacheMb: 0,
    replicationFactor: defaultReplicationFactor,
    namespaceReplication: {},
    tombstoneGraceSeconds: defaultTombstoneGraceSeconds,
    maxHintAgeSeconds: undefined,
    logLevel: 'info',
  };
}

/**
 * The grace period the replica store's purge and the engine's compaction
 * filter both use: derived here only, so the two can never disagree and
 * compaction never drops a tombstone the store still counts on.
 */
export function tombstoneGraceMsOf(config: NodeConfig): number {
  return config.tombstoneGraceSeconds * 1000;
}

/**
 * The oldest hint a node still replays. Half the grace period by default:
 * a hint is only safe to replay while every tombstone that could supersede
 * it is still kept, and the margin covers clock skew between nodes and the
 * time a replay takes.
 */
export function maxHintAgeMsOf(config: NodeConfig): number {
  return maxHintAgeFor({ tombstoneGraceMs: tombstoneGraceMsOf(config) }, config.maxHintAgeSeconds === undefined ? {} : { maxHintAgeMs: config.maxHintAgeSeconds * 1000 });
}

/** The settings a config file or flags may set, as they arrive (not yet validated). */
export type RawConfig = Partial<Record<keyof NodeConfig, unknown>>;

const configKeys = Object.keys(defaultConfig()) as Array<keyof NodeConfig>;

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const labelPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const walSyncModes: readonly WalSync[] = ['always', 'interval', 'none'];

function fail(setting: string, message: string): never {
  throw new InvalidArgumentError(`Invalid setting ${setting}: ${message}`);
}

function asString(setting: string, value: unknown): string {
  if (typeof value !== 'string') fail(setting, `expected a string, got ${JSON.stringify(value)}`);
  return value;
}

function asPort(setting: string, value: unknown): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    fail(setting, `expected a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A whole number from `min` (default 1) to `max`, given as a number or as decimal digits. */
function asWholeNumber(setting: string, value: unknown, max: number, min = 1): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail(setting, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function asLabel(setting: string, value: unknown): string {
  const s = asString(setting, value);
  if (!labelPattern.test(s) || s.length > maxNodeIdChars) {
    fail(setting, `"${s}" must be 1 to ${maxNodeIdChars} letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return s;
}

function asOptionalSecret(setting: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const s = asString(setting, value);
  return s === '' ? undefined : s;
}

/** "host:port" with a port from 1 to 65535. */
export function parseAddress(setting: string, value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (colon <= 0 || /[\s,/]/.test(host) || !/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    fail(setting, `"${value}" is not host:port (for example 127.0.0.1:9379)`);
  }
  return { host, port: Number(portText) };
}

function asSeeds(value: unknown): string[] {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list)) fail('seeds', `expected a list of host:port, got ${JSON.stringify(value)}`);
  const seeds: string[] = [];
  for (const item of list) {
    for (const part of asString('seeds', item).split(',')) {
      const s = part.trim();
      if (s === '') continue;
      parseAddress('seeds', s);
      seeds.push(s);
    }
  }
  return seeds;
}

// ASCII only: the coordinator reads a key's namespace as latin1, so any other
// character could never match. ',' and '=' would not survive the flag syntax.
const namespacePattern = /^[!-~]+$/;

function asNamespaceReplication(value: unknown): Record<string, number> {
  // A flag gives "name=N" strings (comma-separated or repeated); a file gives an object.
  const byNamespace: Record<string, number> = Object.create(null) as Record<string, number>;
  const add = (name: string, n: unknown): void => {
    if (!namespacePattern.test(name) || /[:,=]/.test(name) || name.length > maxNamespaceChars) {
      fail('namespaceReplication', `namespace "${name}" must be 1 to ${maxNamespaceChars} printable ASCII characters other than ':', ',', '=' and spaces (the text before a key's first ':')`);
    }
    if (name in byNamespace) fail('namespaceReplication', `namespace "${name}" is given twice`);
    byNamespace[name] = asWholeNumber(`namespaceReplication.${name}`, n, maxReplicationFactor);
  };
  if (typeof value === 'string' || Array.isArray(value)) {
    for (const item of typeof value === 'string' ? [value] : value) {
      for (const part of asString('namespaceReplication', item).split(',')) {
        const entry = part.trim();
        if (entry === '') continue;
        const eq = entry.indexOf('=');
        if (eq <= 0) fail('namespaceReplication', `"${entry}" is not namespace=N (for example session=2)`);
        add(entry.slice(0, eq), entry.slice(eq + 1));
      }
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [name, n] of Object.entries(value)) add(name, n);
  } else {
    fail('namespaceReplication', `expected namespace=N entries or an object such as {"session": 2}, got ${JSON.stringify(value)}`);
  }
  return byNamespace;
}

function asUsers(value: unknown): Record<string, string> {
  // A flag gives "name:password" strings; a file may give an object.
  const users: Record<string, string> = Object.create(null) as Record<string, string>;
  const add = (name: string, password: string): void => {
    if (!labelPattern.test(name)) fail('users', `user name "${name}" must be letters, digits, '.', '_' or '-'`);
    if (password === '') fail('users', `user "${name}" has an empty password`);
    users[name] = password;
  };
  if (Array.isArray(value)) {
    for (const item of value) {
      const s = asString('users', item);
      const colon = s.indexOf(':');
      if (colon <= 0) fail('users', `"${s}" is not name:password`);
      add(s.slice(0, colon), s.slice(colon + 1));
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [name, password] of Object.entries(value)) add(name, asString(`users.${name}`, password));
  } else {
    fail('users', `expected name:password entries, got ${JSON.stringify(value)}`);
  }
  return users;
}

/** Applies `raw` over `base`, validating every setting it names. Unknown settings are an error (typos). */
export function applyConfig(base: NodeConfig, raw: RawConfig, source: string): NodeConfig {
  const config: NodeConfig = { ...base };
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!configKeys.includes(key as keyof NodeConfig)) {
      throw new InvalidArgumentError(`Unknown setting "${key}" in ${source}; known settings: ${configKeys.join(', ')}`);
    }
    switch (key as keyof NodeConfig) {
      case 'nodeId': {
        const id = asString('nodeId', value);
        if (!nodeIdPattern.test(id) || id.length > maxNodeIdChars) {
          fail('nodeId', `"${id}" must be 1 to ${maxNodeIdChars} letters, digits, '.', '_' or '-', starting with a letter or digit`);
        }
        config.nodeId = id;
        break;
      }
      case 'dataDir': {
        const dir = asString('dataDir', value);
        if (dir.trim() === '') fail('dataDir', 'must not be empty');
        config.dataDir = dir;
        break;
      }
      case 'host': config.host = asString('host', value); break;
      case 'advertiseHost': config.advertiseHost = asOptionalSecret('advertiseHost', value); break;
      case 'respPort': config.respPort = asPort('respPort', value); break;
      case 'httpPort': config.httpPort = asPort('httpPort', value); break;
      case 'clusterPort': config.clusterPort = asPort('clusterPort', value); break;
      case 'seeds': config.seeds = asSeeds(value); break;
      case 'dc': config.dc = asLabel('dc', value); break;
      case 'rack': config.rack = asLabel('rack', value); break;
      case 'clusterName': config.clusterName = asLabel('clusterName', value); break;
      case 'clusterSecret': config.clusterSecret = asOptionalSecret('clusterSecret', value); break;
      case 'requirepass': config.requirepass = asOptionalSecret('requirepass', value); break;
      case 'users': config.users = asUsers(value); break;
      case 'httpToken': config.httpToken = asOptionalSecret('httpToken', value); break;
      case 'walSync': {
        const mode = asString('walSync', value);
        if (!walSyncModes.includes(mode as WalSync)) fail('walSync', `"${mode}" is not one of ${walSyncModes.join(', ')}`);
        config.walSync = mode as WalSync;
        break;
      }
      case 'walSyncIntervalMs': config.walSyncIntervalMs = asWholeNumber('walSyncIntervalMs', value, 60_000); break;
      case 'memtableMb': config.memtableMb = asWholeNumber('memtableMb', value, maxMemtableMb); break;
      case 'objectCacheMb': config.objectCacheMb = asWholeNumber('objectCacheMb', value, maxObjectCacheMb, 0); break;
      case 'replicationFactor': config.replicationFactor = asWholeNumber('replicationFactor', value, maxReplicationFactor); break;
      case 'namespaceReplication': config.namespaceReplication = asNamespaceReplication(value); break;
      case 'tombstoneGraceSeconds': config.tombstoneGraceSeconds = asWholeNumber('tombstoneGraceSeconds', value, maxGraceSeconds); break;
      case 'maxHintAgeSeconds': config.maxHintAgeSeconds = value === null ? undefined : asWholeNumber('maxHintAgeSeconds', value, maxGraceSeconds); break;
      case 'logLevel': {
        const level = asString('logLevel', value);
        if (!logLevels.includes(level as LogLevel)) fail('logLevel', `"${level}" is not one of ${logLevels.join(', ')}`);
        config.logLevel = level as LogLevel;
        break;
      }
    }
  }
  return config;
}

/** Parses a JSON config file's text. */
export function parseConfigFile(text: string, path: string): RawConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new InvalidArgumentError(`Cannot read config file ${path}: it is not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`Cannot read config file ${path}: expected a JSON object of settings`);
  }
  return parsed as RawConfig;
}

/** Secrets may come from the environment so they do not show in the process list. */
export function configFromEnv(env: Record<string, string | undefined>): RawConfig {
  return {
    clusterSecret: env['RINGKV_CLUSTER_SECRET'],
    requirepass: env['RINGKV_REQUIREPASS'],
    httpToken: env['RINGKV_HTTP_TOKEN'],
  };
}

/** Checks that hold across settings. */
export function validateConfig(config: NodeConfig): NodeConfig {
  const ports = [
    ['respPort', config.respPort],
    ['httpPort', config.httpPort],
    ['clusterPort', config.clusterPort],
  ] as const;
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      const [a, pa] = ports[i] as readonly [string, number];
      const [b, pb] = ports[j] as readonly [string, number];
      if (pa !== 0 && pa === pb) throw new InvalidArgumentError(`Invalid settings: ${a} and ${b} are both ${pa}; each listener needs its own port`);
    }
  }
  if (config.maxHintAgeSeconds !== undefined && config.maxHintAgeSeconds >= config.tombstoneGraceSeconds) {
    throw new InvalidArgumentError(
      `Invalid settings: maxHintAgeSeconds (${config.maxHintAgeSeconds}) must be below tombstoneGraceSeconds (${config.tombstoneGraceSeconds}): a hint replayed after the tombstones that superseded it were purged brings deleted data back. Lower maxHintAgeSeconds or raise tombstoneGraceSeconds`,
    );
  }
  return config;
}
