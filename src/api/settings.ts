/**
 * The runtime settings of one ringkv node: a small registry of named values
 * that CONFIG GET/SET (RESP), the HTTP API and the node read and change.
 * Values are kept as strings (CONFIG speaks strings) and validated per type on
 * every set; typed getters parse them. A setting that cannot change at run time
 * (it was fixed when the node opened its files) is `mutable: false`; only the
 * node that owns the resource may set it, with `{ force: true }`.
 */
import { ConflictError, InvalidArgumentError } from '../core/index.ts';
import type { Consistency } from '../replication/index.ts';

export type SettingType = 'string' | 'integer' | 'boolean' | 'enum' | 'consistency';

export interface SettingSpec {
  readonly name: string;
  readonly description: string;
  readonly type: SettingType;
  /** Canonical text of the default value. */
  readonly defaultValue: string;
  readonly mutable: boolean;
  /** Allowed values for 'enum' settings. */
  readonly values?: readonly string[];
  /** Inclusive bounds for 'integer' settings. */
  readonly min?: number;
  readonly max?: number;
  /** Never shown in listings meant for humans (passwords). */
  readonly secret?: boolean;
}

export interface SettingInfo extends SettingSpec {
  readonly value: string;
}

export type SettingListener = (value: string, previous: string) => void;

/** Upper bound of integer settings, so every value is an exact JS number. */
const maxSafeSetting = Number.MAX_SAFE_INTEGER;

/**
 * The settings every node has. `save` and `appendonly` exist because
 * redis-benchmark and other Redis tools ask for them; `appendonly` reflects
 * whether the WAL is synced (the node sets it from `wal-sync`).
 */
export const defaultSettingSpecs: readonly SettingSpec[] = [
  { name: 'requirepass', description: 'Password of the default user; empty: no authentication', type: 'string', defaultValue: '', mutable: true, secret: true },
  { name: 'default-read-consistency', description: 'R used by reads that do not name one (one, quorum, all, local_quorum or a number)', type: 'consistency', defaultValue: 'quorum', mutable: true },
  { name: 'default-write-consistency', description: 'W used by writes that do not name one (one, quorum, all, local_quorum or a number)', type: 'consistency', defaultValue: 'quorum', mutable: true },
  { name: 'default-strict-quorum', description: 'yes: only home replicas count towards R and W; no: sloppy quorum with hinted handoff', type: 'boolean', defaultValue: 'no', mutable: true },
  { name: 'request-timeout-ms', description: 'How long a read or write waits for replicas before failing', type: 'integer', defaultValue: '5000', mutable: true, min: 1, max: 3_600_000 },
  { name: 'max-value-bytes', description: 'Largest value a client may write', type: 'integer', defaultValue: '4194304', mutable: true, min: 1, max: 536_870_912 },
  { name: 'proto-max-bulk-len', description: 'Largest RESP bulk string the protocol parser accepts', type: 'integer', defaultValue: '67108864', mutable: true, min: 1024, max: 536_870_912 },
  { name: 'maxclients', description: 'Most RESP connections served at once; more are refused', type: 'integer', defaultValue: '10000', mutable: true, min: 1, max: 1_000_000 },
  { name: 'timeout', description: 'Seconds after which an idle RESP client is disconnected; 0: never', type: 'integer', defaultValue: '0', mutable: true, min: 0, max: 31_536_000 },
  { name: 'slowlog-log-slower-than', description: 'Commands slower than this many microseconds enter the slow log; -1: off', type: 'integer', defaultValue: '10000', mutable: true, min: -1, max: maxSafeSetting },
  { name: 'slowlog-max-len', description: 'Entries the slow log keeps', type: 'integer', defaultValue: '128', mutable: true, min: 0, max: 100_000 },
  { name: 'wal-sync', description: 'When the write-ahead log is synced to disk: none, batch or always', type: 'enum', values: ['none', 'batch', 'always'], defaultValue: 'batch', mutable: false },
  { name: 'save', description: 'Redis RDB snapshots: ringkv has none (always empty)', type: 'string', defaultValue: '', mutable: false },
  { name: 'appendonly', description: 'yes when every write is synced to the WAL before it is acknowledged', type: 'boolean', defaultValue: 'no', mutable: false },
];

function normalise(spec: SettingSpec, raw: string): string {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'integer': {
      if (!/^-?\d+$/.test(raw)) throw new InvalidArgumentError(`Setting ${spec.name} must be an integer, not ${JSON.stringify(raw)}`);
      const n = Number(raw);
      const min = spec.min ?? -maxSafeSetting;
      const max = spec.max ?? maxSafeSetting;
      if (n < min || n > max) throw new InvalidArgumentError(`Setting ${spec.name} must be between ${min} and ${max}, not ${raw}`);
      return String(n);
    }
    case 'boolean': {
      const lower = raw.toLowerCase();
      if (lower === 'yes' || lower === 'true' || lower === '1') return 'yes';
      if (lower === 'no' || lower === 'false' || lower === '0') return 'no';
      throw new InvalidArgumentError(`Setting ${spec.name} must be yes or no, not ${JSON.stringify(raw)}`);
    }
    case 'enum': {
      const lower = raw.toLowerCase();
      if (spec.values?.includes(lower)) return lower;
      throw new InvalidArgumentError(`Setting ${spec.name} must be one of ${(spec.values ?? []).join(', ')}, not ${JSON.stringify(raw)}`);
    }
    case 'consistency':
      return String(parseConsistency(raw, spec.name));
  }
}

/** Parses a consistency level as users write it: one, quorum, all, local_quorum or a positive count. */
export function parseConsistency(raw: string, what = 'consistency'): Consistency {
  const lower = raw.toLowerCase();
  if (lower === 'one' || lower === 'quorum' || lower === 'all' || lower === 'local_quorum') return lower;
  if (/^[1-9]\d{0,2}$/.test(lower)) return Number(lower);
  throw new InvalidArgumentError(`${what} must be one, quorum, all, local_quorum or a number of replicas from 1 to 999, not ${JSON.stringify(raw)}`);
}

export class Settings {
  private readonly specs = new Map<string, SettingSpec>();
  private readonly values = new Map<string, string>();
  private readonly listeners = new Map<string, Set<SettingListener>>();

  /** `initial` overrides defaults (from the node's config); it is validated like a set. */
  constructor(initial: Readonly<Record<string, string>> = {}, specs: readonly SettingSpec[] = defaultSettingSpecs) {
    for (const spec of specs) {
      this.specs.set(spec.name, spec);
      this.values.set(spec.name, normalise(spec, spec.defaultValue));
    }
    for (const [name, value] of Object.entries(initial)) this.set(name, value, { force: true });
  }

  has(name: string): boolean {
    return this.specs.has(name.toLowerCase());
  }

  /** The current text of a setting, or undefined for an unknown name. */
  get(name: string): string | undefined {
    return this.values.get(name.toLowerCase());
  }

  getInt(name: string): number {
    return Number(this.require(name));
  }

  getBool(name: string): boolean {
    return this.require(name) === 'yes';
  }

  getConsistency(name: string): Consistency {
    return parseConsistency(this.require(name), name);
  }

  /**
   * Validates and stores a value, then tells the listeners. Throws
   * InvalidArgumentError for an unknown name or a bad value and ConflictError
   * for a setting fixed at start-up (unless `force`, used by the node itself).
   */
  set(name: string, raw: string, options: { force?: boolean } = {}): void {
    const key = name.toLowerCase();
    const spec = this.specs.get(key);
    if (spec === undefined) throw new InvalidArgumentError(`Unknown setting ${JSON.stringify(name)}`);
    if (!spec.mutable && options.force !== true) throw new ConflictError(`Setting ${spec.name} is fixed when the node starts and cannot change at run time`);
    const value = normalise(spec, raw);
    const previous = this.values.get(key) ?? spec.defaultValue;
    this.values.set(key, value);
    if (value === previous) return;
    for (const listener of this.listeners.get(key) ?? []) listener(value, previous);
  }

  /** Calls `listener` after every change of `name`; returns a function that stops it. */
  onChange(name: string, listener: SettingListener): () => void {
    const key = name.toLowerCase();
    if (!this.specs.has(key)) throw new InvalidArgumentError(`Unknown setting ${JSON.stringify(name)}`);
    let set = this.listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Every setting with its current value, in declaration order. */
  list(): SettingInfo[] {
    return [...this.specs.values()].map((spec) => ({ ...spec, value: this.values.get(spec.name) ?? spec.defaultValue }));
  }

  private require(name: string): string {
    const value = this.get(name);
    if (value === undefined) throw new InvalidArgumentError(`Unknown setting ${JSON.stringify(name)}`);
    return value;
  }
}
