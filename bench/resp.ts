/**
 * RESP benchmark: redis-benchmark against redis-server (the anchor), a single
 * ringkv node (`ringkv start` from the compiled build, standalone: N = 1) and
 * a bare Node server that answers +OK to everything (the ceiling of one Node
 * process), in one run.
 *
 *   npm run bench:resp -- [--json] [--requests 200000] [--warmup 200000]
 *                         [--only redis,ringkv,node-ceiling]
 *                         [--pipelines 1,16] [--syncs none,always] [--dist DIR]
 *                         [--server node|embedded|inprocess] [--cpu]
 *
 * Every server, redis-server included, first gets an unmeasured warm-up: the
 * same redis-benchmark invocation with --warmup requests (0 skips it). A
 * fresh Node process spends its first second compiling the hot paths (a
 * ringkv -P 16 GET runs at ~90k/s in its first 200 ms and ~300k/s once
 * compiled), and 200,000 requests at -P 16 last about one second, so without
 * it the figure measures V8's start more than the server. Redis needs no
 * warm-up; it gets one so both sides see the same sequence of requests.
 *
 * --cpu runs SET and GET as two redis-benchmark invocations and adds each
 * server's user+system CPU per request (`cpuUsPerOp`, from /proc), the
 * figure that moves when a command gets cheaper, whatever the load.
 *
 * --server embedded runs a bare RespServer over LocalKv in this script's
 * child instead of the real node (no metrics, no HTTP front end): the
 * difference between the two is what the node's own plumbing costs.
 *
 * --server inprocess runs that RespServer in this process with 50 fake
 * sockets instead of TCP and redis-benchmark, each sending `-P` commands
 * of redis-benchmark's shape and the next batch once every reply arrived,
 * and prints the CPU per command this process spent (`cpuUsPerOp`, which
 * includes the driver's reply count): what the server's own code costs
 * without the kernel's socket work or the other processes on the machine
 * taking the core in between, so two builds compare with less noise.
 *
 * Each server runs in its own child process; this process only drives
 * redis-benchmark (`--csv`) and parses ops/s and p50/p99. With --json it
 * prints one line per case:
 *   {"target","sync","pipeline","test","opsPerSec","p50Ms","p99Ms"}
 *
 * Internal modes (used by the benchmark itself):
 *   --serve ringkv --sync none|always --dir D [--inflight N]
 *                                                a ringkv RESP node on a free port (N: concurrent
 *                                                pipelined commands per connection, 1 = none)
 *   --serve ceiling                              the bare +OK server
 *   --dist D                                     the compiled build the ringkv server loads (default
 *                                                dist/; another build compares two trees in one run)
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SyncMode } from '../src/storage/index.ts';
import type { ClusterView } from '../src/replication/index.ts';

type Target = 'redis' | 'ringkv' | 'node-ceiling';
type Sync = 'none' | 'always';

interface Result {
  target: Target;
  sync: Sync;
  pipeline: number;
  test: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** With --cpu: the server process's user+system CPU per request, in microseconds. */
  cpuUsPerOp?: number;
}

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    requests: { type: 'string', default: '200000' },
    warmup: { type: 'string', default: '200000' },
    only: { type: 'string' },
    serve: { type: 'string' },
    sync: { type: 'string', default: 'none' },
    dir: { type: 'string' },
    inflight: { type: 'string' },
    dist: { type: 'string' },
    server: { type: 'string', default: 'node' },
    pipelines: { type: 'string', default: '1,16' },
    syncs: { type: 'string', default: 'none,always' },
    cpu: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

// ---------------------------------------------------------------- servers (child mode)

/**
 * The server runs the compiled dist/ build, as `npm start` and `ringkv start`
 * do: under tsx every function carries esbuild's keep-names wrapper, which
 * measured ~20 % more CPU per SET in-process. `npm run bench:resp` builds first.
 */
const distRoot = flags.dist ?? fileURLToPath(new URL('../dist/', import.meta.url));

async function fromDist<T>(module: string): Promise<T> {
  const path = join(distRoot, module);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first (npm run bench:resp does)`);
  return (await import(path)) as T;
}

async function serveRingkv(sync: SyncMode, dir: string): Promise<void> {
  const { RealClock, RealFileSystem, createLogger } = await fromDist<typeof import('../src/core/index.ts')>('core/index.js');
  const { openLsm } = await fromDist<typeof import('../src/storage/index.ts')>('storage/index.js');
  const { LocalKv, ReplicaStore } = await fromDist<typeof import('../src/replication/index.ts')>('replication/index.js');
  const { Settings } = await fromDist<typeof import('../src/api/settings.ts')>('api/settings.js');
  const { RespServer } = await fromDist<typeof import('../src/api/resp/index.ts')>('api/resp/index.js');
  const clock = new RealClock();
  const log = createLogger({ level: 'warn' });
  const engine = await openLsm(dir, { sync }, { fs: new RealFileSystem(), clock, log });
  const nodeId = 'bench-node';
  const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
  let address: string | null = null;
  const cluster: ClusterView = {
    localId: nodeId,
    nodes: () => [{ id: nodeId, address: '', respAddress: address, httpAddress: null, dc: 'dc1', rack: 'r1', status: 'normal', liveness: 'up', partitions: 16384 }],
    ring: () => ({ strategy: 'balanced', version: '1', partitionCount: 16384, replicationFactor: 1, ranges: [{ start: 0, end: 16383, replicas: [nodeId] }] }),
    replicasOf: () => ({ partition: 0, replicas: [nodeId], sloppy: [nodeId] }),
  };
  const settings = new Settings({
    'default-read-consistency': 'one',
    'default-write-consistency': 'one',
    'wal-sync': sync === 'always' ? 'always' : 'none',
    appendonly: sync === 'always' ? 'yes' : 'no',
  });
  const inflight = flags.inflight === undefined ? {} : { limits: { maxInflightCommands: Number(flags.inflight) } };
  const server = new RespServer({ kv, cluster, settings, clock, log, ...inflight });
  const bound = await server.listen(0, '127.0.0.1');
  address = `${bound.host}:${bound.port}`;
  process.stdout.write(`READY ${bound.port}\n`);
  process.on('SIGTERM', () => {
    void server
      .close()
      .then(() => engine.close())
      .finally(() => process.exit(0));
  });
}

async function serveCeiling(): Promise<void> {
  const ok = Buffer.from('+OK\r\n');
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      // One +OK per command: count the commands' leading '*' (redis-benchmark sends multibulk).
      let n = 0;
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 42 && (i === 0 || chunk[i - 1] === 10)) n++;
      if (n > 0) socket.write(n === 1 ? ok : Buffer.concat(Array.from({ length: n }, () => ok)));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    process.stdout.write(`READY ${address.port}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------- driver

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Running {
  port: number;
  child: ChildProcess;
}

function waitReady(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with code ${code} before it was ready: ${out}`)));
  });
}

/** The real node: `ringkv start`, standalone, on free ports; ready when it logs its RESP address. */
async function startRingkvNode(sync: Sync, dir: string): Promise<Running> {
  const main = join(flags.dist ?? distRoot, 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm run bench:resp does)`);
  const args = [main, 'start', '--data', dir, '--resp-port', '0', '--http-port', '0', '--wal-sync', sync, '--log-level', 'info'];
  // The node logs to stderr (JSON when it is not a TTY).
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /"msg":"ready".*?"resp":"[^"]*:(\d+)"/.exec(out);
      if (m) {
        // Keep draining the log so the node never blocks on a full pipe.
        child.stderr?.off('data', onData);
        child.stderr?.resume();
        resolve(Number(m[1]));
      }
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`ringkv exited with code ${code} before it was ready: ${out}`)));
  });
  return { port, child };
}

async function startNodeServer(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { port: await waitReady(child), child };
}

async function startRedis(sync: Sync, dir: string): Promise<Running> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', 'yes', '--appendfsync', sync === 'always' ? 'always' : 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const pong = await new Promise<string>((resolve) => execFile('redis-cli', ['-p', String(port), 'ping'], (_e, stdout) => resolve(stdout.trim())));
    if (pong === 'PONG') return { port, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not answer PING');
}

async function stop(r: Running): Promise<void> {
  if (r.child.exitCode !== null) return;
  const exited = new Promise((resolve) => r.child.once('exit', resolve));
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Runs redis-benchmark and parses its CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms". */
function redisBenchmark(port: number, pipeline: number, requests: number, tests = 'set,get'): Promise<Array<{ test: string; opsPerSec: number; p50Ms: number; p99Ms: number }>> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', tests, '-n', String(requests), '-r', '100000', '-d', '100', '-c', '50', '-P', String(pipeline), '--csv'];
  return new Promise((resolve, reject) => {
    execFile('redis-benchmark', args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`redis-benchmark failed: ${error.message} ${stderr}`));
        return;
      }
      const rows: Array<{ test: string; opsPerSec: number; p50Ms: number; p99Ms: number }> = [];
      const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('"'));
      const header = (lines[0] ?? '').split(',').map((h) => h.replace(/"/g, ''));
      const col = (name: string): number => header.indexOf(name);
      for (const line of lines.slice(1)) {
        const cells = line.split(',').map((c) => c.replace(/"/g, ''));
        rows.push({
          test: cells[col('test')] ?? '',
          opsPerSec: Number(cells[col('rps')]),
          p50Ms: Number(cells[col('p50_latency_ms')]),
          p99Ms: Number(cells[col('p99_latency_ms')]),
        });
      }
      resolve(rows);
    });
  });
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const userHz = 100;

/** A process's user+system CPU so far in ms, from /proc (0 where there is none). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / userHz;
  } catch {
    return 0;
  }
}

interface Case {
  target: Target;
  sync: Sync;
  start(dir: string): Promise<Running>;
}

async function main(): Promise<void> {
  const requests = Number(flags.requests);
  const warmup = Number(flags.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup is a number of requests (0 for none), not ${flags.warmup}`);
  const only = flags.only?.split(',');
  const syncs = flags.syncs.split(',');
  const pipelines = flags.pipelines.split(',').map(Number);
  const distArgs = flags.dist === undefined ? [] : ['--dist', flags.dist];
  if (flags.server === 'inprocess') {
    await mainInProcess(requests, warmup, syncs as Sync[], pipelines);
    return;
  }
  if (flags.server !== 'node' && flags.server !== 'embedded') throw new Error(`--server is node, embedded or inprocess, not ${flags.server}`);
  const startRingkv = (sync: Sync, dir: string): Promise<Running> =>
    flags.server === 'embedded' ? startNodeServer(['--serve', 'ringkv', '--sync', sync, '--dir', dir, ...distArgs]) : startRingkvNode(sync, dir);
  const cases: Case[] = [
    { target: 'redis', sync: 'none', start: (dir: string) => startRedis('none', dir) },
    { target: 'ringkv', sync: 'none', start: (dir: string) => startRingkv('none', dir) },
    { target: 'node-ceiling', sync: 'none', start: () => startNodeServer(['--serve', 'ceiling']) },
    { target: 'redis', sync: 'always', start: (dir: string) => startRedis('always', dir) },
    { target: 'ringkv', sync: 'always', start: (dir: string) => startRingkv('always', dir) },
  ].filter((c) => (only === undefined || only.includes(c.target)) && syncs.includes(c.sync)) as Case[];
  const results: Result[] = [];
  for (const c of cases) {
    for (const pipeline of pipelines) {
      // Progress on stderr: the whole run takes minutes.
      process.stderr.write(`bench:resp ${c.target} sync=${c.sync} -P ${pipeline}${warmup > 0 ? ` (after ${warmup} warm-up requests)` : ''} …\n`);
      const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-resp-'));
      const running = await c.start(dir);
      try {
        if (warmup > 0) await redisBenchmark(running.port, pipeline, warmup);
        // With --cpu, SET and GET run as two invocations so each gets its own CPU reading.
        for (const tests of flags.cpu ? ['set', 'get'] : ['set,get']) {
          const before = cpuMs(running.child.pid);
          const rows = await redisBenchmark(running.port, pipeline, requests, tests);
          const spentMs = cpuMs(running.child.pid) - before;
          for (const row of rows) {
            const result: Result = { target: c.target, sync: c.sync, pipeline, test: row.test, opsPerSec: row.opsPerSec, p50Ms: row.p50Ms, p99Ms: row.p99Ms };
            if (flags.cpu) result.cpuUsPerOp = Math.round((spentMs * 1000 * 100) / requests) / 100;
            results.push(result);
            if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          }
        }
      } finally {
        await stop(running);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  if (!flags.json) printTable(results);
}

// ---------------------------------------------------------------- in-process driver

/** Clients of the in-process run, as redis-benchmark's -c. */
const inProcessClients = 50;
/** Key range and value size of the in-process run, as redis-benchmark's -r and -d. */
const inProcessKeys = 100_000;
const inProcessValueBytes = 100;

/** Counts complete RESP replies (simple, error, integer, bulk) across writes, without allocating. */
class ReplyCounter {
  count = 0;
  /** Bytes of a bulk body and its CRLF still to pass. */
  private skip = 0;
  private inLine = false;
  private bulk = false;
  private negative = false;
  private length = 0;

  add(data: Uint8Array): void {
    const n = data.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        this.skip -= take;
        i += take;
        if (this.skip === 0) this.count++;
        continue;
      }
      const c = data[i++] as number;
      if (!this.inLine) {
        this.inLine = true;
        this.bulk = c === 36;
        this.negative = false;
        this.length = 0;
      } else if (c === 10) {
        this.inLine = false;
        if (this.bulk && !this.negative) this.skip = this.length + 2;
        else this.count++;
      } else if (this.bulk) {
        if (c === 45) this.negative = true;
        else if (c >= 48 && c <= 57) this.length = this.length * 10 + c - 48;
      }
    }
  }
}

async function mainInProcess(requests: number, warmup: number, syncs: Sync[], pipelines: number[]): Promise<void> {
  const { EventEmitter } = await import('node:events');
  const { RealClock, RealFileSystem, createLogger } = await fromDist<typeof import('../src/core/index.ts')>('core/index.js');
  const { openLsm } = await fromDist<typeof import('../src/storage/index.ts')>('storage/index.js');
  const { LocalKv, ReplicaStore } = await fromDist<typeof import('../src/replication/index.ts')>('replication/index.js');
  const { Settings } = await fromDist<typeof import('../src/api/settings.ts')>('api/settings.js');
  const { RespServer } = await fromDist<typeof import('../src/api/resp/index.ts')>('api/resp/index.js');
  const value = 'x'.repeat(inProcessValueBytes);
  // xorshift32, uniform over the keys like redis-benchmark's random() % -r. (The LCG
  // used before multiplied past 2^53 and reached only ~3 600 distinct keys, a fifth of
  // them repeating within 800 requests: unlike the TCP runs, many SETs met a pending write.)
  let seed = 12345;
  const nextKey = (): string => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return `key:${String((seed >>> 0) % inProcessKeys).padStart(12, '0')}`;
  };
  const frame = (test: string, key: string): string =>
    test === 'set' ? `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n` : `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`;
  for (const sync of syncs) {
    for (const pipeline of pipelines) {
      const dir = mkdtempSync(join(tmpdir(), 'ringkv-bench-resp-inprocess-'));
      const clock = new RealClock();
      const log = createLogger({ level: 'warn' });
      const engine = await openLsm(dir, { sync }, { fs: new RealFileSystem(), clock, log });
      const nodeId = 'bench-node';
      const kv = new LocalKv({ store: new ReplicaStore({ engine, clock, nodeId }), clock });
      const cluster: ClusterView = {
        localId: nodeId,
        nodes: () => [],
        ring: () => ({ strategy: 'balanced', version: '1', partitionCount: 16384, replicationFactor: 1, ranges: [] }),
        replicasOf: () => ({ partition: 0, replicas: [nodeId], sloppy: [nodeId] }),
      };
      const settings = new Settings({ 'default-read-consistency': 'one', 'default-write-consistency': 'one' });
      const server = new RespServer({ kv, cluster, settings, clock, log, onCommand: () => {} });
      let onWrite: ((client: FakeSocket, data: Uint8Array) => void) | undefined;
      class FakeSocket extends EventEmitter {
        readonly remoteAddress = '127.0.0.1';
        readonly remotePort = 1;
        readonly localAddress = '127.0.0.1';
        readonly localPort = 2;
        readonly writableLength = 0;
        destroyed = false;
        readonly counter = new ReplyCounter();
        setNoDelay(): void {}
        cork(): void {}
        uncork(): void {}
        pause(): void {}
        resume(): void {}
        destroySoon(): void {}
        destroy(): void {
          this.destroyed = true;
        }
        write(data: Uint8Array): boolean {
          onWrite?.(this, data);
          return true;
        }
      }
      const sockets: FakeSocket[] = [];
      // A bench reaching into the server's accept: the same path a TCP connection takes after the kernel.
      const accept = (server as unknown as { accept(socket: FakeSocket): void }).accept.bind(server);
      for (let c = 0; c < inProcessClients; c++) {
        const socket = new FakeSocket();
        accept(socket);
        sockets.push(socket);
      }
      const run = async (test: string, count: number): Promise<number> => {
        const batches: Buffer[] = [];
        for (let i = 0; i < count; i += pipeline) {
          let text = '';
          for (let j = 0; j < pipeline; j++) text += frame(test, nextKey());
          batches.push(Buffer.from(text, 'latin1'));
        }
        let next = 0;
        let answered = 0;
        const before = process.cpuUsage();
        await new Promise<void>((resolve) => {
          const send = (socket: FakeSocket): void => {
            if (next >= batches.length) return;
            socket.counter.count = 0;
            socket.emit('data', batches[next++]);
          };
          onWrite = (socket, data) => {
            socket.counter.add(data);
            if (socket.counter.count < pipeline) return;
            if (++answered >= batches.length) resolve();
            // The next batch as a new event, as the next socket read would be.
            else setImmediate(() => send(socket));
          };
          for (const socket of sockets) send(socket);
        });
        onWrite = undefined;
        const spent = process.cpuUsage(before);
        return (spent.user + spent.system) / (batches.length * pipeline);
      };
      try {
        if (warmup > 0) {
          await run('set', warmup);
          await run('get', warmup);
        }
        for (const test of ['set', 'get']) {
          const groupsBefore = Number(engine.stats().groupCommits ?? 0);
          const cpuUsPerOp = Math.round((await run(test, requests)) * 100) / 100;
          const groups = Number(engine.stats().groupCommits ?? 0) - groupsBefore;
          // Each group costs one fdatasync (~100 µs of kernel CPU here): its share per write is a floor no code above the engine cuts.
          const perGroup = groups > 0 ? { writesPerGroupCommit: Math.round((requests / groups) * 10) / 10 } : {};
          const row = { target: 'ringkv', server: 'inprocess', sync, pipeline, test: test.toUpperCase(), cpuUsPerOp, ...perGroup };
          process.stdout.write(`${flags.json ? JSON.stringify(row) : `ringkv in-process sync=${sync} -P ${pipeline} ${row.test}: ${cpuUsPerOp.toFixed(2)} µs cpu/op`}\n`);
        }
      } finally {
        for (const socket of sockets) socket.emit('close');
        await server.close();
        await engine.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

function printTable(results: Result[]): void {
  const redisOps = (sync: Sync, pipeline: number, test: string): number | undefined =>
    results.find((r) => r.target === 'redis' && r.sync === sync && r.pipeline === pipeline && r.test === test)?.opsPerSec;
  const lines = ['target        sync    -P  test   ops/s       p50 ms  p99 ms  ×redis(same sync)'];
  for (const r of results) {
    const anchor = redisOps(r.sync, r.pipeline, r.test);
    const ratio = anchor === undefined ? '' : (r.opsPerSec / anchor).toFixed(2);
    const cpu = r.cpuUsPerOp === undefined ? '' : `  ${r.cpuUsPerOp.toFixed(2)} µs cpu/op`;
    lines.push(
      `${r.target.padEnd(13)} ${r.sync.padEnd(7)} ${String(r.pipeline).padStart(2)}  ${r.test.padEnd(5)} ${r.opsPerSec.toFixed(0).padStart(10)}  ${r.p50Ms.toFixed(3).padStart(6)}  ${r.p99Ms.toFixed(3).padStart(6)}  ${ratio.padEnd(4)}${cpu}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (flags.serve === 'ringkv') {
  const sync = flags.sync === 'always' ? 'always' : 'none';
  if (flags.dir === undefined) throw new Error('--serve ringkv needs --dir');
  await serveRingkv(sync, flags.dir);
} else if (flags.serve === 'ceiling') {
  await serveCeiling();
} else {
  await main();
}
