/**
 * RingkvNode wires one node together: identity and lock on the data
 * directory, the storage engine, the key-value API, the cluster view, the
 * runtime settings, metrics, and the RESP and HTTP listeners. Start order is
 * storage first, listeners last; stop is the reverse (stop accepting, drain,
 * close the engine, release the lock), so no acknowledged write is in flight
 * when the WAL closes.
 */
import type { Clock, Logger } from '../core/index.ts';
import { RealClock, RealFileSystem, createLogger, joinPath, randomFromOs } from '../core/index.ts';
import type { Engine } from '../storage/index.ts';
import type { ClusterView, KvApi } from '../replication/index.ts';
import { LocalKv, ReplicaStore } from '../replication/index.ts';
import { Settings } from '../api/settings.ts';
import { RespServer } from '../api/resp/index.ts';
import { HttpServer, NodeMetrics, flattenStats } from '../api/http/index.ts';
import type { NodeConfig } from './config.ts';
import { loadIdentity } from './identity.ts';
import { lockDataDir, type DataDirLock } from './lock.ts';
import { listenOrExplain } from './listen.ts';
import { SingleNodeCluster } from './single-cluster.ts';
import { openNodeEngine } from './storage.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface NodeAddresses {
  resp: HostPort;
  http: HostPort;
}

/** Runtime settings seeded from the node's config (see src/api/settings.ts). */
export function settingsFromConfig(config: NodeConfig): Settings {
  return new Settings({
    requirepass: config.requirepass ?? '',
    // The settings registry names the middle mode "batch"; the engine calls it "interval".
    'wal-sync': config.walSync === 'interval' ? 'batch' : config.walSync,
    appendonly: config.walSync === 'always' ? 'yes' : 'no',
  });
}

export class RingkvNode {
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly id: string,
    readonly generation: number,
    readonly addresses: NodeAddresses,
    readonly kv: KvApi,
    readonly cluster: ClusterView,
    readonly settings: Settings,
    readonly metrics: NodeMetrics,
    private readonly parts: { engine: Engine; resp: RespServer; http: HttpServer; lock: DataDirLock; log: Logger },
  ) {}

  /** Opens everything and starts listening; on any failure, closes what was opened. */
  static async start(config: NodeConfig, options: { log?: Logger; clock?: Clock } = {}): Promise<RingkvNode> {
    const fs = new RealFileSystem();
    const clock = options.clock ?? new RealClock();
    const random = randomFromOs();
    const baseLog = options.log ?? createLogger({ level: config.logLevel });

    await fs.mkdirp(config.dataDir);
    const lock = lockDataDir(config.dataDir);
    const cleanups: Array<() => Promise<void>> = [async () => lock.release()];
    try {
      const { nodeId, generation } = await loadIdentity(fs, config.dataDir, config.nodeId, random);
      const log = baseLog.child({ node: nodeId });
      log.info('starting', { generation, dataDir: config.dataDir, walSync: config.walSync, pid: process.pid });
      if (config.seeds.length > 0) {
        log.warn('seeds are ignored: this build runs each node on its own (N = 1) until the cluster layer is wired', { seeds: config.seeds });
      }

      const engine = await openNodeEngine(config, { fs, clock, log });
      cleanups.unshift(() => engine.close());
      const store = new ReplicaStore({ engine, clock, nodeId });
      const kv: KvApi = new LocalKv({ store, clock });

      const advertise = config.advertiseHost ?? config.host;
      const cluster = new SingleNodeCluster({
        id: nodeId,
        address: `${advertise}:${config.clusterPort}`,
        respAddress: null,
        httpAddress: null,
        dc: config.dc,
        rack: config.rack,
      });
      const settings = settingsFromConfig(config);
      const metrics = new NodeMetrics({ defaultLabels: { node: nodeId } });
      metrics.addGauge('ringkv_storage_keys', 'Live keys held by the storage engine (approximate).', [], () => [{ labels: {}, value: engine.stats().approximateKeys }]);
      metrics.addGauge('ringkv_storage_stat', 'Storage engine statistics by name (see src/storage/README.md).', ['stat'], () => flattenStats(engine.stats()));
      metrics.addGauge('ringkv_cluster_nodes', 'Nodes of the cluster by liveness, as this node sees them.', ['liveness'], () => {
        const counts = { up: 0, suspect: 0, down: 0 };
        for (const n of cluster.nodes()) counts[n.liveness]++;
        return Object.entries(counts).map(([liveness, value]) => ({ labels: { liveness }, value }));
      });

      const resp = new RespServer({
        kv,
        cluster,
        settings,
        clock,
        log: log.child({ component: 'resp' }),
        auth: { ...(config.requirepass ? { password: config.requirepass } : {}), users: config.users },
        onCommand: (name, durationMs, ok) => metrics.observe('resp', name, durationMs, ok),
      });
      const respAddress = await listenOrExplain('RESP', '--resp-port', config.host, config.respPort, () => resp.listen(config.respPort, config.host));
      cleanups.unshift(() => resp.close());
      metrics.addGauge('ringkv_resp_clients', 'Connected RESP clients.', [], () => [{ labels: {}, value: resp.stats().connectedClients }]);

      const http = new HttpServer({
        kv,
        cluster,
        clock,
        log: log.child({ component: 'http' }),
        metrics,
        ...(config.httpToken === undefined ? {} : { token: config.httpToken }),
        maxValueBytes: () => settings.getInt('max-value-bytes'),
        defaults: () => ({ timeoutMs: settings.getInt('request-timeout-ms') }),
        localStats: () => ({ keys: engine.stats().approximateKeys, generation, dataDir: joinPath(config.dataDir) }),
      });
      const httpAddress = await listenOrExplain('HTTP', '--http-port', config.host, config.httpPort, () => http.listen(config.httpPort, config.host));
      cleanups.unshift(() => http.close());

      cluster.setAddresses({ respAddress: `${advertise}:${respAddress.port}`, httpAddress: `${advertise}:${httpAddress.port}` });
      const addresses = { resp: respAddress, http: httpAddress };
      log.info('ready', { resp: `${respAddress.host}:${respAddress.port}`, http: `${httpAddress.host}:${httpAddress.port}`, generation });
      return new RingkvNode(nodeId, generation, addresses, kv, cluster, settings, metrics, { engine, resp, http, lock, log });
    } catch (error) {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
      throw error;
    }
  }

  /** Stops accepting, drains in-flight requests, closes the engine and releases the data directory. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const { resp, http, engine, lock, log } = this.parts;
      log.info('draining');
      await Promise.all([resp.close(), http.close()]);
      await engine.close();
      lock.release();
      log.info('stopped');
    })();
    return this.stopped;
  }
}
