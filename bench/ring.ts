/**
 * Ring benchmark: for S = 3, 5, 10, 25, 50 nodes, the balanced strategy and
 * the random strategy at T = 16, 64, 256 tokens per node:
 *   - maxOverMean: most keys on one node (as primary owner) / mean, over 1,000,000 keys
 *   - movedOverIdeal: fraction of keys whose owner changes when one node joins, / 1/(S+1)
 *   - lookupsPerSec: partitionOf(key) + its cached preference list
 *   - replicaMaxOverMean: the same balance counting all N = 3 home replicas
 * Keys are `user` + number, as a YCSB-style load names them.
 * Then the transport benchmark (bench/transport.ts) when it exists.
 *
 *   npm run bench:ring -- [--json] [--keys 1000000] [--racks 1]
 */
import { parseArgs } from 'node:util';
import { Ring, type NodeDescriptor, type Strategy } from '../src/ring/index.ts';

interface Case {
  strategy: Strategy;
  nodes: number;
  tokensPerNode: number | null;
  maxOverMean: number;
  movedOverIdeal: number;
  lookupsPerSec: number;
  replicaMaxOverMean: number;
  buildMs: number;
}

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, keys: { type: 'string', default: '1000000' }, racks: { type: 'string', default: '1' } } });
const json = values.json === true;
const keyCount = Number(values.keys);
// Racks spread nodes round-robin; the joining node goes to rack 1. Replica balance then shows rack effects (docs/ring.md §3).
const rackCount = Number(values.racks);
if (!Number.isInteger(keyCount) || keyCount < 1) throw new Error(`--keys must be a positive integer, not ${String(values.keys)}`);
if (!Number.isInteger(rackCount) || rackCount < 1) throw new Error(`--racks must be a positive integer, not ${String(values.racks)}`);
const nodeCounts = [3, 5, 10, 25, 50];
const randomTokens = [16, 64, 256];
const lookupRounds = 3;

function members(count: number): NodeDescriptor[] {
  return Array.from({ length: count }, (_, i) => ({ id: `node-${String(i).padStart(3, '0')}`, dc: 'dc1', rack: `rack${(i % rackCount) + 1}` }));
}

/** Primary owner (node index in ring.nodes()) of every key. */
function ownersOf(ring: Ring, keys: readonly Buffer[]): Int32Array {
  const index = new Map(ring.nodes().map((id, i) => [id, i]));
  const byPartition = Int32Array.from({ length: ring.partitionCount() }, (_, p) => index.get(ring.ownerOf(p) as string) as number);
  return Int32Array.from(keys, (key) => byPartition[ring.partitionOf(key)] as number);
}

function maxOverMean(counts: ArrayLike<number>): number {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < counts.length; i++) {
    max = Math.max(max, counts[i] as number);
    sum += counts[i] as number;
  }
  return max / (sum / counts.length);
}

function replicaBalance(ring: Ring, keys: readonly Buffer[]): number {
  const index = new Map(ring.nodes().map((id, i) => [id, i]));
  const counts = new Float64Array(ring.nodes().length);
  const perPartition = new Float64Array(ring.partitionCount());
  for (const key of keys) perPartition[ring.partitionOf(key)] = (perPartition[ring.partitionOf(key)] as number) + 1;
  perPartition.forEach((count, p) => {
    for (const id of ring.preferenceList(p).home) {
      const i = index.get(id) as number;
      counts[i] = (counts[i] as number) + count;
    }
  });
  return maxOverMean(counts);
}

function lookupsPerSec(ring: Ring, keys: readonly Buffer[]): number {
  let best = 0;
  let sink = 0;
  for (let round = 0; round < lookupRounds; round++) {
    const start = process.hrtime.bigint();
    for (const key of keys) sink += ring.preferenceList(ring.partitionOf(key)).home.length;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    best = Math.max(best, keys.length / seconds);
  }
  if (sink === -1) console.log('unreachable');
  return best;
}

function runCase(strategy: Strategy, s: number, tokensPerNode: number | null, keys: readonly Buffer[]): Case {
  const started = performance.now();
  const ring = Ring.create(strategy === 'balanced' ? { nodes: members(s) } : { strategy, nodes: members(s), tokensPerNode: tokensPerNode as number });
  ring.preferenceList(0);
  const buildMs = performance.now() - started;
  const owners = ownersOf(ring, keys);
  const load = new Float64Array(s);
  for (const o of owners) load[o] = (load[o] as number) + 1;
  const grown = ring.join({ id: 'node-joining', dc: 'dc1', rack: 'rack1' });
  const ownersAfter = ownersOf(grown, keys);
  const before = ring.nodes();
  const after = grown.nodes();
  let moved = 0;
  for (let k = 0; k < keys.length; k++) if (before[owners[k] as number] !== after[ownersAfter[k] as number]) moved++;
  return {
    strategy,
    nodes: s,
    tokensPerNode,
    maxOverMean: round(maxOverMean(load), 4),
    movedOverIdeal: round(moved / keys.length / (1 / (s + 1)), 4),
    lookupsPerSec: Math.round(lookupsPerSec(ring, keys)),
    replicaMaxOverMean: round(replicaBalance(ring, keys), 4),
    buildMs: round(buildMs, 1),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function printTable(rows: readonly Case[]): void {
  const header = ['strategy', 'S', 'T', 'max/mean', 'moved/ideal', 'lookups/s', 'replica max/mean', 'build ms'];
  const cells = rows.map((r) => [r.strategy, String(r.nodes), r.tokensPerNode === null ? '-' : String(r.tokensPerNode), r.maxOverMean.toFixed(4), r.movedOverIdeal.toFixed(4), r.lookupsPerSec.toLocaleString('en-US'), r.replicaMaxOverMean.toFixed(4), r.buildMs.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: readonly string[]): string => c.map((v, i) => (i < 1 ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

const keys = Array.from({ length: keyCount }, (_, i) => Buffer.from(`user${i}`));
const where = rackCount === 1 ? 'one data center and rack' : `one data center, ${rackCount} racks`;
if (!json) console.log(`ring: ${keyCount.toLocaleString('en-US')} keys "user0".."user${keyCount - 1}", N = 3, ${where}; targets for balanced: max/mean ≤ 1.05, moved/ideal ≤ 1.1\n`);
const rows: Case[] = [];
for (const s of nodeCounts) {
  for (const [strategy, t] of [['balanced', null], ...randomTokens.map((x) => ['random', x] as const)] as const) {
    const row = runCase(strategy, s, t, keys);
    rows.push(row);
    if (json) console.log(JSON.stringify(row));
  }
}
if (!json) printTable(rows);

const mod = await import('./transport.ts').catch(() => undefined);
if (mod) {
  if (!json) console.log('\ntransport: round trips between two processes on 127.0.0.1 (100-byte values)');
  await mod.runTransportBench({ json });
}
