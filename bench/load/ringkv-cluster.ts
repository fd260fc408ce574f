/**
 * Three (by default) real ringkv node processes on 127.0.0.1 in cluster mode,
 * started like test/node/cluster-process.test.ts starts them, but from the
 * compiled build as `npm start` runs them: `node dist/cli/main.js start` with
 * a generated cluster secret in the environment, node 1 as every other node's
 * seed, RESP/HTTP on port 0 (learned from the `ready` log line), fixed free
 * cluster ports. Not through tsx: esbuild's keep-names wrapper around every
 * function measured ~20 % more CPU per write. `npm run bench:cluster` builds
 * dist/ first, so it is never stale.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from './driver.ts';
import { freePorts, spawnChild, waitUntil, type Child } from './processes.ts';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const cliEntry = join(repoRoot, 'dist/cli/main.js');
const nodeStartTimeoutMs = 30_000;
/** The claimant waits ~5 gossip intervals before proposing a ring; generous for a loaded 2-core machine. */
const formationTimeoutMs = 60_000;

export interface RingkvClusterOptions {
  dir: string;
  nodes: number;
  replicationFactor: number;
  walSync: 'always' | 'interval' | 'none';
  /** When set, every node runs under `--cpu-prof` and writes its profile here when it stops (not when SIGKILLed). */
  cpuProfDir?: string;
  /** Names the profiles: `<label>-<node id>.cpuprofile`. */
  label?: string;
  /** Extra node/V8 flags for every node process (experiments, e.g. `--single-threaded-gc`). */
  nodeFlags?: readonly string[];
}

export interface RingkvNodeProcess {
  id: string;
  child: Child;
  http: Endpoint;
  resp: Endpoint;
}

export interface RingkvCluster {
  nodes: RingkvNodeProcess[];
  stop(): Promise<void>;
}

async function getJson(endpoint: Endpoint, path: string): Promise<unknown> {
  const res = await fetch(`http://${endpoint.host}:${endpoint.port}${path}`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${path}: HTTP ${res.status}`);
  }
  return res.json();
}

export async function startRingkvCluster(options: RingkvClusterOptions): Promise<RingkvCluster> {
  if (!existsSync(cliEntry)) throw new Error(`${cliEntry} is missing: run \`npm run build\` first (npm run bench:cluster does)`);
  const secret = randomBytes(24).toString('hex');
  const clusterPorts = await freePorts(options.nodes);
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.stop()));
  };
  try {
    const nodes = await Promise.all(
      clusterPorts.map(async (clusterPort, i) => {
        const id = `n${i + 1}`;
        const profArgs = options.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir, '--cpu-prof-name', `${options.label ?? 'ringkv'}-${id}.cpuprofile`];
        const args = [
          ...(options.nodeFlags ?? []), ...profArgs, cliEntry, 'start',
          '--node-id', id,
          '--data', join(options.dir, id),
          '--host', '127.0.0.1',
          '--resp-port', '0',
          '--http-port', '0',
          '--cluster-port', String(clusterPort),
          '--wal-sync', options.walSync,
          '--replication-factor', String(options.replicationFactor),
          ...(i > 0 ? ['--seeds', `127.0.0.1:${clusterPorts[0]}`] : []),
        ];
        const child = spawnChild(`ringkv ${id}`, process.execPath, args, { RINGKV_CLUSTER_SECRET: secret }, repoRoot);
        children.push(child);
        const m = await child.waitFor(/"msg":"ready".*?"resp":"[^"]*:(\d+)","http":"[^"]*:(\d+)"/, nodeStartTimeoutMs);
        return { id, child, resp: { host: '127.0.0.1', port: Number(m[1]) }, http: { host: '127.0.0.1', port: Number(m[2]) } };
      }),
    );
    await waitUntil(
      `the ${options.nodes} ringkv nodes to agree on one ring`,
      async () => {
        for (const n of nodes) {
          const health = await fetch(`http://${n.http.host}:${n.http.port}/healthz`, { signal: AbortSignal.timeout(2000) });
          await health.body?.cancel();
          if (!health.ok) return false;
        }
        const rings = (await Promise.all(nodes.map((n) => getJson(n.http, '/v1/ring')))) as Array<{ version: string; replicationFactor: number; partitionsByNode: Record<string, number> }>;
        return new Set(rings.map((r) => r.version)).size === 1 && rings.every((r) => Object.keys(r.partitionsByNode).length === options.nodes && r.replicationFactor === options.replicationFactor);
      },
      formationTimeoutMs,
      250,
    );
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
