/**
 * `ringkv dev --nodes N` in a temp working directory: it prints how to
 * connect, every node answers, SIGINT stops them all cleanly; a node that
 * dies on its own brings the whole dev cluster down (nothing restarts
 * silently); a busy port is named before anything starts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as nodePath from 'node:path';
import { Redis } from 'ioredis';
import { isPortFree } from '../../src/cli/ports.ts';
import { isAlive, killIfRunning, processWaitMs, spawnCli, tempDir, withTimeout, type Spawned } from '../node/process-helpers.ts';

/** A base port whose RESP, HTTP (+1000) and cluster (+2000) ports are all free for `count` nodes. */
async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // [20000, 28016): apart from the cluster test's fixed ports and below the ephemeral range.
    const base = 20000 + Math.floor(Math.random() * 6000);
    const ports = [0, 1000, 2000].flatMap((offset) => Array.from({ length: count }, (_, i) => base + offset + i));
    const free = await Promise.all(ports.map((p) => isPortFree('127.0.0.1', p)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('No free base port found in 50 attempts');
}

function pidsOf(output: string): number[] {
  return [...output.matchAll(/ pid (\d+)/g)].map((m) => Number(m[1]));
}

describe('ringkv dev', () => {
  const started: Spawned[] = [];
  const dirs: Array<{ remove(): void }> = [];
  after(() => {
    for (const s of started) killIfRunning(s);
    for (const d of dirs) d.remove();
  });

  test('starts N nodes that form one cluster, prints how to connect, and SIGINT stops them all', async () => {
    const cwd = tempDir('dev');
    dirs.push(cwd);
    const base = await freeBasePort(2);
    const dev = spawnCli(['dev', '--nodes', '2', '--base-port', String(base)], { cwd: cwd.path });
    started.push(dev);
    await dev.waitFor(/Press Ctrl-C to stop all nodes/);
    const out = dev.output();
    assert.match(out, new RegExp(`redis-cli -p ${base} set hello world`));
    assert.match(out, new RegExp(`curl http://127\\.0\\.0\\.1:${base + 1000}/v1/kv/hello`));
    assert.match(out, new RegExp(`admin page: http://127\\.0\\.0\\.1:${base + 1000}/`));
    assert.match(out, /\[node-1\] .*"msg":"ready"/, 'node logs are forwarded with a prefix');
    const pids = pidsOf(out);
    assert.equal(pids.length, 2);

    // The nodes form one cluster: a write through node 1 reads back through node 2.
    const one = new Redis({ port: base, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    const two = new Redis({ port: base + 1, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      assert.equal(await one.set('dev:key', 'written on node-1'), 'OK');
      assert.equal(await two.get('dev:key'), 'written on node-1');
      assert.equal(await two.incrby('dev:count', 2), 2);
      assert.equal(await one.incrby('dev:count', 3), 5);
    } finally {
      one.disconnect();
      two.disconnect();
    }
    // Each node turns itself 'normal' when it adopts the ring; the others learn it by gossip a round later.
    const view = async (): Promise<string[][]> => {
      const cluster = (await (await fetch(`http://127.0.0.1:${base + 1000}/v1/cluster`)).json()) as { nodes: Array<{ id: string; liveness: string; status: string }> };
      return cluster.nodes.map((n) => [n.id, n.liveness, n.status]);
    };
    const expected = [['node-1', 'up', 'normal'], ['node-2', 'up', 'normal']];
    let seen = await view();
    for (let i = 0; i < 50 && JSON.stringify(seen) !== JSON.stringify(expected); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      seen = await view();
    }
    assert.deepEqual(seen, expected);
    for (let i = 0; i < 2; i++) {
      const health = (await (await fetch(`http://127.0.0.1:${base + 1000 + i}/healthz`)).json()) as { node: string };
      assert.equal(health.node, `node-${i + 1}`);
      assert.equal(readFileSync(nodePath.join(cwd.path, 'data', `node-${i + 1}`, 'NODE_ID'), 'utf8').trim(), `node-${i + 1}`);
    }

    process.kill(dev.pid, 'SIGINT');
    const { code } = await withTimeout(dev.exited, processWaitMs, 'dev to stop');
    assert.equal(code, 0, dev.output());
    assert.match(dev.output(), /node-1 exited with code 0/);
    assert.match(dev.output(), /node-2 exited with code 0/);
    for (const pid of pids) assert.equal(isAlive(pid), false, `node pid ${pid} still running`);
    // Clean shutdown released the data directories.
    assert.equal(existsSync(nodePath.join(cwd.path, 'data', 'node-1', 'LOCK')), false);
  });

  test('a node that dies on its own stops the others and dev exits 1', async () => {
    const cwd = tempDir('dev-crash');
    dirs.push(cwd);
    const base = await freeBasePort(2);
    const dev = spawnCli(['dev', '--nodes', '2', '--base-port', String(base)], { cwd: cwd.path });
    started.push(dev);
    await dev.waitFor(/Press Ctrl-C to stop all nodes/);
    const [first, second] = pidsOf(dev.output()) as [number, number];
    process.kill(second, 'SIGKILL');
    const { code } = await withTimeout(dev.exited, processWaitMs, 'dev to notice the dead node');
    assert.equal(code, 1);
    assert.match(dev.output(), /node-2 exited unexpectedly/);
    assert.equal(isAlive(first), false, 'the surviving node was stopped too');
  });

  test('a port already in use is named and nothing starts', async () => {
    const cwd = tempDir('dev-busy');
    dirs.push(cwd);
    const base = await freeBasePort(1);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(base + 1000, '127.0.0.1', resolve));
    try {
      const dev = spawnCli(['dev', '--nodes', '1', '--base-port', String(base)], { cwd: cwd.path });
      started.push(dev);
      const { code } = await withTimeout(dev.exited, processWaitMs, 'dev to refuse');
      assert.equal(code, 1);
      assert.match(dev.output(), new RegExp(`port ${base + 1000} \\(HTTP port of node-1\\) on 127\\.0\\.0\\.1 is already in use`));
      assert.equal(existsSync(nodePath.join(cwd.path, 'data')), false, 'no node was started');
    } finally {
      blocker.close();
    }
  });
});
