/**
 * Issue 5's multi-process test: three real node processes on 127.0.0.1 with
 * N = 3; 10,000 keys written at W = 2 over HTTP while the third node is
 * killed with SIGKILL and later restarted on the same data directory; every
 * key is then readable at R = 3 with its last acknowledged value.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as nodePath from 'node:path';
import { freePortsIn, killIfRunning, startNode, tempDir, waitUntil, type RunningNode } from '../../node/process-helpers.ts';

const secret = { RINGKV_CLUSTER_SECRET: 'replication-multiprocess-secret-42' };
const keyCount = 10_000;
const concurrency = 32;
/** Attempts per write before the test gives up (a write may fail while a node dies). */
const maxAttempts = 5;
const formationTimeoutMs = 40_000;

// node:http with keep-alive costs the test process far less CPU per request than fetch.
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** `fresh`: on a new connection, not one of the agent's kept-alive sockets (which the server may have closed meanwhile). */
function request(url: string, method: string, body?: string, headers: Record<string, string> = {}, fresh = false): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: fresh ? false : agent, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `work(i)` for every i in [from, to) with `concurrency` in flight. */
async function pool(from: number, to: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await work(next++);
    }),
  );
}

const dir = tempDir('replication-mp');
const nodes: RunningNode[] = [];
let clusterPorts: number[] = [];
const args = (i: number): string[] => ['--node-id', `n${i + 1}`, '--cluster-port', String(clusterPorts[i]), '--replication-factor', '3', ...(i > 0 ? ['--seeds', `127.0.0.1:${clusterPorts[0]}`] : [])];

before(async () => {
  clusterPorts = await freePortsIn(30000, 10000, 3);
  // Each node is recorded as it starts, so that after() stops it even if another one fails to start.
  await Promise.all(
    [0, 1, 2].map(async (i) => {
      nodes[i] = await startNode(nodePath.join(dir.path, `n${i + 1}`), args(i), secret);
    }),
  );
  await waitUntil(
    'every node to be in the ring',
    async () =>
      (
        await Promise.all(
          nodes.map(async (n) => {
            const res = await fetch(`${n.http}/healthz`);
            await res.body?.cancel();
            return res.ok;
          }),
        )
      ).every(Boolean),
    formationTimeoutMs,
  );
});

after(() => {
  agent.destroy();
  for (const n of nodes) killIfRunning(n);
  dir.remove();
});

test('10,000 keys written at W = 2 across a SIGKILL and restart are all readable at R = 3', { timeout: 240_000 }, async () => {
  const expected = new Map<number, string>();
  const contexts = new Map<number, string>();
  let failedAttempts = 0;
  /** PUT with retries on the given nodes; records the value once acknowledged. */
  const put = async (i: number, value: string, targets: readonly RunningNode[], context?: string): Promise<void> => {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const node = targets[(i + attempt) % targets.length] as RunningNode;
      try {
        const res = await request(`${node.http}/v1/kv/mp:${i}?w=2`, 'PUT', value, context === undefined ? {} : { 'x-ringkv-context': context });
        if (res.status === 204) {
          expected.set(i, value);
          const ctx = res.headers['x-ringkv-context'];
          if (typeof ctx === 'string') contexts.set(i, ctx);
          return;
        }
      } catch {
        // The node died under the request: try another.
      }
      failedAttempts++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`PUT mp:${i} failed ${maxAttempts} times`);
  };

  const [n1, n2] = nodes as [RunningNode, RunningNode, RunningNode];
  // Phase A, all three up.
  await pool(0, 4000, (i) => put(i, `a${i}`, nodes));
  // Phase B: n3 dies mid-stream; writes go on through n1 and n2.
  const victim = nodes[2] as RunningNode;
  const phaseB = pool(4000, 8000, (i) => put(i, `b${i}`, [n1, n2]));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await victim.kill9();
  await phaseB;
  // Overwrites of phase-A keys while n3 is down, superseding what they saw.
  await pool(0, 400, (j) => put(j * 10, `o${j * 10}`, [n1, n2], contexts.get(j * 10)));
  // Phase C: n3 returns on its data directory and takes writes again.
  nodes[2] = await startNode(nodePath.join(dir.path, 'n3'), args(2), secret);
  await pool(8000, keyCount, (i) => put(i, `c${i}`, nodes));
  assert.equal(expected.size, keyCount);

  // Hints for n3 drain (every write it missed reaches it by handoff).
  const backlog = async (): Promise<number> => {
    let total = 0;
    for (const n of nodes) {
      const text = await (await fetch(`${n.http}/metrics`)).text();
      for (const m of text.matchAll(/^ringkv_handoff_backlog_hints\{[^}]*\} (\d+)$/gm)) total += Number(m[1]);
    }
    return total;
  };
  await waitUntil('hint queues to drain', async () => (await backlog()) === 0, 60_000);

  const wrong: string[] = [];
  await pool(0, keyCount, async (i) => {
    const node = nodes[i % 3] as RunningNode;
    const url = `${node.http}/v1/kv/mp:${i}?r=3`;
    // A keep-alive socket the server closed while idle (during the drain wait) fails with ECONNRESET: retry on a
    // new connection (the agent could hand out another socket closed the same way).
    const res = await request(url, 'GET', undefined, { accept: 'application/json' }).catch(() => request(url, 'GET', undefined, { accept: 'application/json' }, true));
    const body = JSON.parse(res.body.toString()) as { siblings?: Array<{ kind: string; value?: string }> };
    const values = (body.siblings ?? []).filter((s) => s.kind === 'value').map((s) => Buffer.from(s.value ?? '', 'base64').toString());
    // A retried blind write may leave two siblings of the same value; any other value is wrong.
    if (res.status >= 400 || values.length === 0 || values.some((v) => v !== expected.get(i))) {
      wrong.push(`mp:${i}: HTTP ${res.status} [${values.join(', ')}], expected ${expected.get(i)}`);
    }
  });
  assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} keys read wrong (failed write attempts: ${failedAttempts})`);
});
