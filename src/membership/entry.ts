/**
 * One member's gossiped state and the digests that summarise it, with their
 * validation: everything read from the wire is checked before it touches the
 * table, and a malformed entry is dropped (with a logged reason), never thrown.
 * Maps travel as arrays of pairs so that ids such as "__proto__" stay data.
 */
import { pack } from 'msgpackr';
import { fnv1a32, type NodeId } from '../core/index.ts';
import { maxExtraAddresses, maxFieldChars, maxRingStateBytes, maxSuspectsPerEntry } from './constants.ts';
import { memberStatuses, type MemberStatus, type RingState } from './types.ts';

export interface MemberEntry {
  readonly id: NodeId;
  readonly generation: number;
  /** Heartbeat version: bumped every round and on every change to the entry. */
  readonly version: number;
  readonly address: string;
  readonly addresses: ReadonlyArray<readonly [string, string]>;
  readonly dc: string;
  readonly rack: string;
  readonly status: MemberStatus;
  /** Nodes this member suspects, with the generation it suspects them at. */
  readonly suspects: ReadonlyArray<readonly [NodeId, number]>;
}

/** [id, generation, version]: what a syn carries for every member it knows. */
export type Digest = readonly [NodeId, number, number];

/** Orders two (generation, version) pairs: negative when a is older. */
export function compareVersions(aGen: number, aVer: number, bGen: number, bVer: number): number {
  return aGen !== bGen ? Math.sign(aGen - bGen) : Math.sign(aVer - bVer);
}

function isField(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= maxFieldChars;
}

function isCounter(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parsePairs<T>(raw: unknown, limit: number, second: (v: unknown) => v is T, what: string): Array<readonly [string, T]> | string {
  if (!Array.isArray(raw)) return `${what} is not a list`;
  if (raw.length > limit) return `${what} has ${raw.length} items: the limit is ${limit}`;
  const out: Array<readonly [string, T]> = [];
  for (const pair of raw as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isField(pair[0]) || !second(pair[1])) return `${what} holds a malformed pair`;
    out.push([pair[0], pair[1]]);
  }
  return out;
}

/** Validates an entry read from the wire; a string is the reason it was rejected. */
export function parseEntry(raw: unknown): MemberEntry | string {
  if (typeof raw !== 'object' || raw === null) return 'entry is not an object';
  const r = raw as Record<string, unknown>;
  if (!isField(r.id)) return 'entry id is missing or too long';
  if (!isCounter(r.generation) || !isCounter(r.version)) return `entry for ${r.id} has a malformed generation or version`;
  if (!isField(r.address) || !isField(r.dc) || !isField(r.rack)) return `entry for ${r.id} has a malformed address, dc or rack`;
  if (typeof r.status !== 'string' || !memberStatuses.includes(r.status as MemberStatus)) return `entry for ${r.id} has unknown status ${String(r.status)}`;
  const addresses = parsePairs(r.addresses, maxExtraAddresses, isField, `addresses of ${r.id}`);
  if (typeof addresses === 'string') return addresses;
  const suspects = parsePairs(r.suspects, maxSuspectsPerEntry, isCounter, `suspects of ${r.id}`);
  if (typeof suspects === 'string') return suspects;
  return {
    id: r.id,
    generation: r.generation,
    version: r.version,
    address: r.address,
    addresses,
    dc: r.dc,
    rack: r.rack,
    status: r.status as MemberStatus,
    suspects,
  };
}

export function parseDigests(raw: unknown, limit: number): Digest[] | string {
  if (!Array.isArray(raw)) return 'digests are not a list';
  if (raw.length > limit) return `syn carries ${raw.length} digests: the limit is ${limit}`;
  const out: Digest[] = [];
  for (const d of raw as unknown[]) {
    if (!Array.isArray(d) || d.length !== 3 || !isField(d[0]) || !isCounter(d[1]) || !isCounter(d[2])) return 'a digest is malformed';
    out.push([d[0], d[1], d[2]]);
  }
  return out;
}

/** The ring state's identity without its data: what a syn advertises. */
export interface RingDigest {
  readonly version: number;
  readonly proposer: NodeId;
  readonly hash: number;
}

export function ringHash(data: unknown): { hash: number; bytes: number } {
  const encoded = pack(data);
  return { hash: fnv1a32(encoded), bytes: encoded.length };
}

/** Orders ring states: higher version, then higher proposer id, then higher hash. */
export function compareRings(a: RingDigest, b: RingDigest): number {
  if (a.version !== b.version) return Math.sign(a.version - b.version);
  if (a.proposer !== b.proposer) return a.proposer < b.proposer ? -1 : 1;
  return Math.sign(a.hash - b.hash);
}

export function parseRingDigest(raw: unknown): RingDigest | string {
  if (typeof raw !== 'object' || raw === null) return 'ring digest is not an object';
  const r = raw as Record<string, unknown>;
  if (!isCounter(r.version) || typeof r.proposer !== 'string' || r.proposer.length > maxFieldChars || !isCounter(r.hash)) {
    return 'ring digest is malformed';
  }
  return { version: r.version, proposer: r.proposer, hash: r.hash };
}

/** Validates a ring state from the wire, re-hashing its data so a corrupt state cannot win. */
export function parseRingState(raw: unknown): RingState | string {
  const digest = parseRingDigest(raw);
  if (typeof digest === 'string') return digest;
  const data = (raw as Record<string, unknown>).data;
  const { hash, bytes } = ringHash(data);
  if (bytes > maxRingStateBytes) return `ring state ${digest.version} is ${bytes} bytes: the limit is ${maxRingStateBytes}`;
  if (hash !== digest.hash) return `ring state ${digest.version} from ${digest.proposer} does not match its hash`;
  return { ...digest, data };
}

export function digestOf(entry: MemberEntry): Digest {
  return [entry.id, entry.generation, entry.version];
}
