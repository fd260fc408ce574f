/**
 * A 3-member (by default) etcd cluster on 127.0.0.1: every listener explicit
 * and on loopback, each member with its own data directory, a fresh cluster
 * token per run. etcd's defaults stay (WAL fsync on every raft batch, the
 * counterpart of ringkv's `--wal-sync always` group commit).
 */
import { join } from 'node:path';
import type { Endpoint } from './driver.ts';
import { HttpConnection } from './http.ts';
import { freePorts, spawnChild, waitUntil, type Child } from './processes.ts';

export const etcdBinary = '/usr/bin/etcd';
const formationTimeoutMs = 30_000;

export interface EtcdMember {
  name: string;
  child: Child;
  client: Endpoint;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** The gateway prefix this etcd serves: `/v3` (3.4+) or `/v3beta` (3.3). */
  prefix: string;
  /** Index in `members` of the current leader. */
  leaderIndex(): Promise<number>;
  stop(): Promise<void>;
}

interface Status {
  header?: { member_id?: string };
  leader?: string;
}

async function post(endpoint: Endpoint, path: string, body: string): Promise<{ status: number; json: unknown }> {
  const connection = await HttpConnection.open(endpoint.host, endpoint.port);
  try {
    const res = await connection.request('POST', path, 'content-type: application/json\r\n', body);
    let json: unknown = undefined;
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch {
      // Not JSON (e.g. a 404 page): the status says enough.
    }
    return { status: res.status, json };
  } finally {
    connection.close();
  }
}

export async function startEtcdCluster(dir: string, size = 3): Promise<EtcdCluster> {
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[size + i]}`;
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const token = `ringkv-bench-${process.pid}-${Date.now()}`;
  const members: EtcdMember[] = names.map((name, i) => ({
    name,
    client: { host: '127.0.0.1', port: ports[i] as number },
    child: spawnChild(`etcd ${name}`, etcdBinary, [
      '--name', name,
      '--data-dir', join(dir, name),
      '--listen-client-urls', clientUrl(i),
      '--advertise-client-urls', clientUrl(i),
      '--listen-peer-urls', peerUrl(i),
      '--initial-advertise-peer-urls', peerUrl(i),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--log-level', 'warn',
    ]),
  }));
  const stop = async (): Promise<void> => {
    await Promise.all(members.map((m) => m.child.stop()));
  };
  try {
    let prefix = '/v3';
    await waitUntil(
      'every etcd member to report a leader',
      async () => {
        for (const m of members) {
          if (!m.child.running()) throw new Error(`${m.child.name} exited:\n${m.child.output().slice(-3000)}`);
          let res = await post(m.client, `${prefix}/maintenance/status`, '{}');
          if (res.status === 404 && prefix === '/v3') {
            prefix = '/v3beta';
            res = await post(m.client, `${prefix}/maintenance/status`, '{}');
          }
          const leader = (res.json as Status | undefined)?.leader;
          if (res.status !== 200 || leader === undefined || leader === '0') return false;
        }
        return true;
      },
      formationTimeoutMs,
      250,
    );
    const leaderIndex = async (): Promise<number> => {
      for (let i = 0; i < members.length; i++) {
        const res = await post((members[i] as EtcdMember).client, `${prefix}/maintenance/status`, '{}');
        const status = res.json as Status | undefined;
        if (status?.leader !== undefined && status.leader === status.header?.member_id) return i;
      }
      throw new Error('No etcd member says it is the leader');
    };
    return { members, prefix, leaderIndex, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
