/**
 * RingkvNode wires one node together: identity and lock on the data
 * directory, the storage engine, the key-value API, the cluster view, the
 * runtime settings, metrics, and the RESP and HTTP listeners, plus (in
 * cluster mode) transport, gossip, ring and the replicated coordinator.
 * Start order is storage first, listeners, then the cluster layer; stop is
 * the reverse (stop accepting, drain, leave the cluster, close the engine,
 * release the lock), so no acknowledged write is in flight when the WAL closes.
 */
import type { Clock, Logger } from '../core/index.ts';
import { ClosedError, InvalidArgumentError, RealClock, RealFileSystem, createLogger, randomFromOs } from '../core/index.ts';
import type { Engine } from '../storage/index.ts';
import type { ClusterView, KvApi } from '../replication/index.ts';
import { LocalKv } from '../replication/index.ts';
import { minSecretBytes } from '../transport/index.ts';
import { Settings } from '../api/settings.ts';
import { RespServer } from '../api/resp/index.ts';
import { HttpServer, NodeMetrics, type RequestDefaults } from '../api/http/index.ts';
import { startCluster, type ClusterRuntime } from './cluster.ts';
import type { NodeConfig } from './config.ts';
import { loadIdentity } from './identity.ts';
import { LateClusterView, LateKv } from './late-bound.ts';
import { lockDataDir, type DataDirLock } from './lock.ts';
import { listenOrExplain } from './listen.ts';
import { infoSections, registerGauges, type NodeMode } from './observability.ts';
import { SingleNodeCluster } from './single-cluster.ts';
import { createNodeStore, openNodeEngine } from './storage.ts';
import { TailDiagnostics } from './tail-diag.ts';

/**
 * How often a node scans its whole store for tombstones and expired versions
 * older than the grace period. Daily: the engine's compaction filter drops
 * most of them in files it rewrites anyway, so the scan (every key read from
 * disk) only catches what compaction has not reached, and a day's delay is
 * small against the default 10-day grace period.
 */
export const purgeIntervalMs = 24 * 60 * 60_000;

export interface HostPort {
  host: string;
  port: number;
}

export interface NodeAddresses {
  resp: HostPort;
  http: HostPort;
  /** The inter-node listener; null when the node runs alone. */
  cluster: HostPort | null;
}

export type { NodeMode };

/** Runtime settings seeded from the node's config (see src/api/settings.ts). */
export function settingsFromConfig(config: NodeConfig): Settings {
  return new Settings({
    requirepass: config.requirepass ?? '',
    // The settings registry names the middle mode "batch"; the engine calls it "interval".
    'wal-sync': config.walSync === 'interval' ? 'batch' : config.walSync,
    appendonly: config.walSync === 'always' ? 'yes' : 'no',
  });
}

/**
 * A node joins a cluster when it has a cluster secret (inter-node traffic is
 * always authenticated); without one it runs alone with N = 1.
 */
export function modeOf(config: NodeConfig): NodeMode {
  if (config.clusterSecret === undefined) {
    if (config.seeds.length > 0) {
      throw new InvalidArgumentError('Seeds were given without a cluster secret: set --secret (or RINGKV_CLUSTER_SECRET) on every node of the cluster');
    }
    return 'standalone';
  }
  if (Buffer.byteLength(config.clusterSecret) < minSecretBytes) {
    throw new InvalidArgumentError(`The cluster secret is ${Buffer.byteLength(config.clusterSecret)} bytes: use at least ${minSecretBytes}`);
  }
  return 'cluster';
}

/** Settings a request falls back on when it names no level or timeout. */
const requestDefaultSettings = ['default-read-consistency', 'default-write-consistency', 'default-strict-quorum', 'request-timeout-ms'] as const;

/**
 * The HTTP front end's per-request defaults, read from the settings once and
 * again only after one of them changes (CONFIG SET), not on every request.
 */
export function requestDefaults(settings: Settings): () => RequestDefaults {
  let current: RequestDefaults | undefined;
  for (const name of requestDefaultSettings) {
    settings.onChange(name, () => {
      current = undefined;
    });
  }
  return () =>
    (current ??= Object.freeze({
      r: settings.getConsistency('default-read-consistency'),
      w: settings.getConsistency('default-write-consistency'),
      strict: settings.getBool('default-strict-quorum'),
      timeoutMs: settings.getInt('request-timeout-ms'),
    }));
}

function hostPort(address: string): HostPort {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

interface Parts {
  engine: Engine;
  purging: { stop(): void };
  resp: RespServer;
  http: HttpServer;
  cluster: ClusterRuntime | undefined;
  lock: DataDirLock;
  log: Logger;
  diag: TailDiagnostics | undefined;
}

export class RingkvNode {
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly id: string,
    readonly generation: number,
    readonly mode: NodeMode,
    readonly addresses: NodeAddresses,
    readonly kv: KvApi,
    readonly cluster: ClusterView,
    readonly settings: Settings,
    readonly metrics: NodeMetrics,
    private readonly parts: Parts,
  ) {}

  /** Opens everything and starts listening; on any failure, closes what was opened. */
  static async start(config: NodeConfig, options: { log?: Logger; clock?: Clock } = {}): Promise<RingkvNode> {
    const mode = modeOf(config);
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
      log.info('starting', { mode, generation, dataDir: config.dataDir, walSync: config.walSync, pid: process.pid });

      // Off unless RINGKV_DIAG_TAIL is set: then the engine's disk calls are timed too.
      const diag = TailDiagnostics.fromEnv();
      diag?.start(nodeId);
      cleanups.unshift(async () => diag?.stop());
      const engine = await openNodeEngine(config, { fs: diag === undefined ? fs : diag.wrapFs(fs), clock, log });
      cleanups.unshift(() => engine.close());
      const store = createNodeStore(config, engine, clock, nodeId);
      // Tombstones and expired versions past the grace period are dropped by a periodic pass,
      // so deletes and TTLs give their space back (docs/consistency.md).
      const purging = store.startPurging(purgeIntervalMs, (result, error) => {
        if (error !== undefined) {
          if (!(error instanceof ClosedError)) log.warn('purge pass failed', { error });
        } else if (result !== undefined && (result.versionsDropped > 0 || result.keysRemoved > 0)) {
          log.info('purged expired versions and tombstones', { ...result });
        }
      });
      cleanups.unshift(async () => purging.stop());

      const advertise = config.advertiseHost ?? config.host;
      const alone = new SingleNodeCluster({
        id: nodeId,
        address: mode === 'cluster' ? `${advertise}:${config.clusterPort}` : '',
        respAddress: null,
        httpAddress: null,
        dc: config.dc,
        rack: config.rack,
      });
      const kv = new LateKv();
      const view = new LateClusterView(alone);
      if (mode === 'standalone') kv.target = new LocalKv({ store, clock });

      const settings = settingsFromConfig(config);
      const metrics = new NodeMetrics({ defaultLabels: { node: nodeId } });
      let runtime: ClusterRuntime | undefined;

      const resp = new RespServer({
        kv,
        cluster: view,
        settings,
        clock,
        log: log.child({ component: 'resp' }),
        auth: { ...(config.requirepass ? { password: config.requirepass } : {}), users: config.users },
        onCommand: (name, durationMs, ok) => metrics.observe('resp', name, durationMs, ok),
        info: () => infoSections(engine, view, runtime, { mode, generation }),
      });
      const respAddress = await listenOrExplain('RESP', '--resp-port', config.host, config.respPort, () => resp.listen(config.respPort, config.host));
      cleanups.unshift(() => resp.close());

      const http = new HttpServer({
        kv,
        cluster: view,
        clock,
        log: log.child({ component: 'http' }),
        metrics,
        settings,
        ...(config.httpToken === undefined ? {} : { token: config.httpToken }),
        maxValueBytes: () => settings.getInt('max-value-bytes'),
        // The same defaults RESP uses, so a CONFIG SET applies to both front ends.
        defaults: requestDefaults(settings),
        localStats: () => ({ keys: engine.stats().approximateKeys, generation, mode }),
        health: () =>
          runtime === undefined
            ? { ok: mode === 'standalone', detail: { mode } }
            : { ok: runtime.ready(), detail: { mode, ring: runtime.claimant.ring()?.version ?? null, members: runtime.membership.members().length } },
      });
      const httpAddress = await listenOrExplain('HTTP', '--http-port', config.host, config.httpPort, () => http.listen(config.httpPort, config.host));
      cleanups.unshift(() => http.close());

      const frontEnds = { resp: `${advertise}:${respAddress.port}`, http: `${advertise}:${httpAddress.port}` };
      alone.setAddresses({ respAddress: frontEnds.resp, httpAddress: frontEnds.http });
      if (mode === 'cluster') {
        runtime = await listenOrExplain('the cluster', '--cluster-port', config.host, config.clusterPort, () =>
          startCluster({ config, nodeId, generation, secret: config.clusterSecret as string, store, frontEnds, env: { clock, random, log, fs }, ...(diag === undefined ? {} : { probe: diag.probe }) }),
        );
        const started = runtime;
        cleanups.unshift(() => started.stop());
        kv.target = runtime.replication.kv;
        view.target = runtime.view;
      }

      registerGauges(metrics, engine, view, resp, runtime);
      const addresses: NodeAddresses = { resp: respAddress, http: httpAddress, cluster: runtime === undefined ? null : hostPort(runtime.transport.address) };
      log.info('ready', {
        resp: `${respAddress.host}:${respAddress.port}`,
        http: `${httpAddress.host}:${httpAddress.port}`,
        cluster: runtime?.transport.address ?? null,
        seeds: config.seeds,
        generation,
      });
      return new RingkvNode(nodeId, generation, mode, addresses, kv, view, settings, metrics, { engine, purging, resp, http, cluster: runtime, lock, log, diag });
    } catch (error) {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
      throw error;
    }
  }

  /** Stops accepting, drains in-flight requests, leaves the cluster, closes the engine and releases the data directory. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const { resp, http, cluster, engine, purging, lock, log, diag } = this.parts;
      diag?.stop();
      log.info('draining');
      purging.stop();
      await Promise.all([resp.close(), http.close()]);
      await cluster?.stop();
      await engine.close();
      lock.release();
      log.info('stopped');
    })();
    return this.stopped;
  }
}
