/** Shared test fixtures: a RespServer over the real LocalKv and MemoryEngine on a free loopback port. */
import { RealClock, silentLogger } from '../../../src/core/index.ts';
import type { Clock, Logger } from '../../../src/core/index.ts';
import { MemoryEngine } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore } from '../../../src/replication/index.ts';
import type { ClusterView, KvApi, NodeInfo } from '../../../src/replication/index.ts';
import { Settings } from '../../../src/api/settings.ts';
import { RespServer } from '../../../src/api/resp/index.ts';
import type { RespServerOptions } from '../../../src/api/resp/index.ts';

export const nodeId = 'node-test-1';

/** A one-node cluster view: this node owns every partition. */
export function singleNodeCluster(respAddress: () => string | null): ClusterView {
  return {
    localId: nodeId,
    nodes(): NodeInfo[] {
      return [{ id: nodeId, address: '127.0.0.1:0', respAddress: respAddress(), httpAddress: null, dc: 'dc1', rack: 'r1', status: 'normal', liveness: 'up', partitions: 16384 }];
    },
    ring() {
      return { strategy: 'balanced', version: '1', partitionCount: 16384, replicationFactor: 1, ranges: [{ start: 0, end: 16383, replicas: [nodeId] }] };
    },
    replicasOf() {
      return { partition: 0, replicas: [nodeId], sloppy: [nodeId] };
    },
  };
}

export function localKv(clock: Clock = new RealClock()): KvApi {
  const store = new ReplicaStore({ engine: new MemoryEngine(), clock, nodeId });
  return new LocalKv({ store, clock });
}

export interface Started {
  server: RespServer;
  port: number;
  kv: KvApi;
  settings: Settings;
  close(): Promise<void>;
}

export async function startServer(options: Partial<RespServerOptions> & { settingsInit?: Record<string, string>; log?: Logger } = {}): Promise<Started> {
  const clock = options.clock ?? new RealClock();
  const kv = options.kv ?? localKv(clock);
  // One node answers alone, so the defaults ask for one replica.
  const settings = options.settings ?? new Settings({ 'default-read-consistency': 'one', 'default-write-consistency': 'one', ...options.settingsInit });
  let address: string | null = null;
  const server = new RespServer({
    kv,
    cluster: options.cluster ?? singleNodeCluster(() => address),
    settings,
    clock,
    log: options.log ?? silentLogger,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.onCommand ? { onCommand: options.onCommand } : {}),
    ...(options.info ? { info: options.info } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const bound = await server.listen(0, '127.0.0.1');
  address = `${bound.host}:${bound.port}`;
  return { server, port: bound.port, kv, settings, close: () => server.close() };
}

/** A free TCP port on loopback (bound then released). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisProcess {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts a real redis-server on a free port, without persistence; stop() kills exactly that pid. */
export async function startRedis(extraArgs: string[] = []): Promise<RedisProcess> {
  const { spawn } = await import('node:child_process');
  const { RawClient } = await import('./raw-client.ts');
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('redis-server did not start (is it installed? apt-get install redis-server)');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const c = await RawClient.open(port);
      const pong = await c.send(['PING']);
      c.close();
      if (pong.t === 'simple') break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    pid,
    async stop() {
      process.kill(pid, 'SIGKILL');
      await exited;
    },
  };
}
