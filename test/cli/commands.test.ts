/**
 * The `ringkv` commands against a real node process: get/put/del/incr,
 * status and ring output, --help, usage errors and exit codes (0 ok,
 * 1 error, 2 usage, 3 not found), and clear errors for bad settings and busy
 * ports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as nodePath from 'node:path';
import { main } from '../../src/cli/cli.ts';
import { killIfRunning, processWaitMs, spawnCli, startNode, tempDir, withTimeout, type RunningNode } from '../node/process-helpers.ts';

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; output: string }> {
  const child = spawnCli(args, { env });
  let stdout = '';
  child.child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const { code } = await withTimeout(child.exited, processWaitMs, `ringkv ${args.join(' ')}`);
  return { code, stdout, output: child.output() };
}

describe('ringkv commands against a running node', () => {
  const dir = tempDir('cli');
  let node: RunningNode;
  let port: string;

  before(async () => {
    node = await startNode(dir.path, ['--node-id', 'cli-node', '--http-token', 'tok'], {});
    port = String(node.httpPort);
  });
  after(() => {
    killIfRunning(node);
    dir.remove();
  });

  test('put, get, incr, del and a missing key (exit 3)', async () => {
    const auth = ['--port', port, '--token', 'tok'];
    const put = await run(['put', 'greeting', 'hello world', ...auth]);
    assert.equal(put.code, 0, put.output);
    assert.match(put.stdout, /^OK \(context [A-Za-z0-9+/=]+\)/);
    const get = await run(['get', 'greeting', ...auth]);
    assert.equal(get.code, 0, get.output);
    assert.equal(get.stdout, 'hello world');
    const [json, incr] = await Promise.all([run(['get', 'greeting', '--json', ...auth]), run(['incr', 'visits', '7', ...auth])]);
    const parsed = JSON.parse(json.stdout) as { siblings: Array<{ kind: string; value: string }> };
    assert.equal(Buffer.from(parsed.siblings[0]?.value ?? '', 'base64').toString(), 'hello world');
    assert.equal(incr.stdout.trim(), '7');

    const del = await run(['del', 'greeting', ...auth]);
    assert.equal(del.code, 0);
    const missing = await run(['get', 'greeting', ...auth]);
    assert.equal(missing.code, 3);
    assert.match(missing.output, /\(not found\) greeting/);
  });

  test('put reads the value from a file; the token can come from the environment', async () => {
    const file = nodePath.join(dir.path, 'value.bin');
    writeFileSync(file, Buffer.from([1, 2, 3, 250]));
    const put = await run(['put', 'blob', '--file', file, '--port', port], { RINGKV_HTTP_TOKEN: 'tok' });
    assert.equal(put.code, 0, put.output);
    const res = await fetch(`${node.http}/v1/kv/blob`, { headers: { authorization: 'Bearer tok' } });
    assert.deepEqual([...new Uint8Array(await res.arrayBuffer())], [1, 2, 3, 250]);
  });

  test('status and ring describe the node', async () => {
    // Independent commands: run them side by side.
    const [status, ring, json] = await Promise.all([
      run(['status', '--port', port, '--token', 'tok']),
      run(['ring', '--port', port, '--token', 'tok', '--ranges']),
      run(['status', '--json', '--port', port, '--token', 'tok']),
    ]);
    assert.equal(status.code, 0, status.output);
    assert.match(status.stdout, /^NODE\s+LIVENESS\s+STATUS/);
    assert.match(status.stdout, /cli-node\*\s+up\s+normal\s+dc1\/rack1/);
    assert.match(status.stdout, /1 of 1 nodes up/);
    assert.equal(ring.code, 0, ring.output);
    assert.match(ring.stdout, /strategy balanced, version 1, 16384 partitions, N = 1, 1 ranges/);
    assert.match(ring.stdout, /cli-node\s+16384\s+100\.0%/);
    assert.match(ring.stdout, /0\s+16383\s+cli-node/);
    assert.equal((JSON.parse(json.stdout) as { self: string }).self, 'cli-node');
  });

  test('a wrong token is an error (exit 1) that says what to do', async () => {
    const denied = await run(['get', 'x', '--port', port, '--token', 'wrong']);
    assert.equal(denied.code, 1);
    assert.match(denied.output, /requires a bearer token/);
  });
});

describe('ringkv usage and errors', () => {
  // Argument errors never reach a command's I/O, so they run in process (no child per case).
  async function inProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  test('--help lists the commands; each command has its own help', async () => {
    const help = await inProcess(['--help']);
    assert.equal(help.code, 0);
    for (const name of ['start', 'dev', 'status', 'ring', 'get', 'put', 'del', 'incr']) assert.match(help.out, new RegExp(`\\n  ${name} `));
    const putHelp = await inProcess(['put', '--help']);
    assert.equal(putHelp.code, 0);
    assert.match(putHelp.out, /Usage: ringkv put <key> \[value\] \[options\]/);
    assert.match(putHelp.out, /--ttl <seconds>/);
    // And the real executable prints it too.
    const real = await run(['--help']);
    assert.equal(real.code, 0);
    assert.match(real.stdout, /Usage: ringkv <command> \[options\]/);
  });

  test('usage errors exit 2 with the command usage', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['get'], /Expected <key>, got 0 argument/],
      [['get', 'k', '--bogus'], /Unknown option '--bogus'/],
      [['put', 'k'], /Missing the value/],
      [['incr', 'k', '1.5'], /The increment must be a whole number/],
      [['dev', '--nodes', '99'], /--nodes must be a whole number from 1 to 16/],
      [['start', '--resp-port', '70000'], /Invalid setting respPort: expected a port number from 0 to 65535, got "70000"/],
      [['start', '--wal-sync', 'sometimes'], /Invalid setting walSync: "sometimes" is not one of always, interval, none/],
      [['start', '--seeds', '127.0.0.1:9379'], /Seeds were given without a cluster secret: set --secret/],
      [['start', '--secret', 'short'], /The cluster secret is 5 bytes: use at least 16/],
      [['start', 'extra'], /ringkv start takes no arguments/],
    ];
    for (const [args, pattern] of cases) {
      const r = await inProcess(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, pattern);
    }
    // The executable maps them to its exit status.
    const real = await run(['get']);
    assert.equal(real.code, 2);
    assert.match(real.output, /Usage: ringkv get <key>/);
  });

  test('an unreachable node is exit 1 with a hint', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const r = await run(['status', '--port', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.output, /Cannot reach ringkv at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): is the node running\?/);
  });

  test('start on a busy port names the listener and the flag', async () => {
    const dir = tempDir('busy');
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await run(['start', '--data', dir.path, '--resp-port', String(port), '--http-port', '0']);
      assert.equal(r.code, 1);
      assert.match(r.output, new RegExp(`Cannot listen for RESP on 127\\.0\\.0\\.1:${port}: the port is already in use .*--resp-port`));
    } finally {
      blocker.close();
      dir.remove();
    }
  });

  test('a config file is read; unknown settings in it are named', async () => {
    const dir = tempDir('conf');
    try {
      const bad = nodePath.join(dir.path, 'bad.json');
      writeFileSync(bad, JSON.stringify({ respPort: 0, colour: 'blue' }));
      const r = await run(['start', '--config', bad]);
      assert.equal(r.code, 2);
      assert.match(r.output, /Unknown setting "colour" in config file/);
      const good = nodePath.join(dir.path, 'good.json');
      writeFileSync(good, JSON.stringify({ dataDir: nodePath.join(dir.path, 'data'), respPort: 0, httpPort: 0, nodeId: 'from-file', dc: 'eu' }));
      const node = await startNode(nodePath.join(dir.path, 'data'), ['--config', good]);
      try {
        const cluster = (await (await fetch(`${node.http}/v1/cluster`)).json()) as { nodes: Array<{ id: string; dc: string }> };
        assert.deepEqual(cluster.nodes.map((n) => [n.id, n.dc]), [['from-file', 'eu']]);
      } finally {
        await node.stop();
      }
    } finally {
      dir.remove();
    }
  });
});
