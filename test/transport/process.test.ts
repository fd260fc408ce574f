/** The transport across a real process boundary, with a real SIGKILL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { UnavailableError, type WireMessage } from '../../src/core/index.ts';
import { parseAddress } from '../../src/transport/index.ts';
import { startTransport, testCluster, testSecret } from './helpers.ts';

const fixture = fileURLToPath(new URL('./fixtures/echo-node.ts', import.meta.url));

async function spawnEchoNode(nodeId: string, port = 0): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fixture], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, RINGKV_NODE_ID: nodeId, RINGKV_CLUSTER: testCluster, RINGKV_SECRET: testSecret, RINGKV_PORT: String(port) },
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  try {
    const address = await new Promise<string>((resolve, reject) => {
      lines.once('line', (line) => resolve((JSON.parse(line) as { address: string }).address));
      child.once('exit', (code) => reject(new Error(`the echo node exited with code ${String(code)} before listening`)));
    });
    return { child, address };
  } finally {
    lines.close();
  }
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

test('tcp across processes: a SIGKILLed peer is unavailable at once, and reachable again after it restarts on its port', async () => {
  const a = await startTransport({ nodeId: 'a', limits: { baseBackoffMs: 20, maxBackoffMs: 200 } });
  let node = await spawnEchoNode('b');
  const port = parseAddress(node.address).port;
  try {
    a.setAddress('b', node.address);
    const first = await a.request('b', { type: 'echo.q', value: new Uint8Array([9]), n: 7n }, 5_000);
    assert.equal(first.from, 'a');
    assert.equal((first.got as { n: bigint }).n, 7n);
    const firstPid = first.pid;

    await kill(node.child, 'SIGKILL');
    const started = performance.now();
    let error: unknown;
    try {
      await a.request('b', { type: 'echo.q' }, 5_000);
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof UnavailableError, `expected UnavailableError, got ${String(error)}`);
    assert.match(error.message, new RegExp(`node b at 127\\.0\\.0\\.1:${port}`));
    assert.ok(performance.now() - started < 4_000, 'a dead peer must not cost the whole timeout');

    node = await spawnEchoNode('b', port);
    let reply: WireMessage | undefined;
    for (let attempt = 0; attempt < 200 && reply === undefined; attempt++) {
      try {
        reply = await a.request('b', { type: 'echo.q' }, 2_000);
      } catch (caught) {
        assert.ok(caught instanceof UnavailableError, `unexpected ${String(caught)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    assert.ok(reply !== undefined, 'never reconnected to the restarted peer');
    assert.notEqual(reply.pid, firstPid, 'the reply must come from the new process');
  } finally {
    await a.close();
    await kill(node.child, 'SIGTERM');
  }
});
