/**
 * Inter-node transport benchmark: round trips per second and latency between
 * two processes on 127.0.0.1, ringkv's TcpTransport against a bare Node TCP
 * ping-pong (length-prefixed raw buffers, writes corked per tick) in the same
 * run, with the same process layout: this process is the client, a spawned
 * child is the server. Each round trip carries a 100-byte value each way.
 *
 *   node --import tsx bench/transport.ts [--json] [--duration-ms 3000]
 *
 * RINGKV_BENCH_SERVER_NODE_ARGS adds node flags to the server child, to
 * profile it (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or "--trace-gc").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RealClock, randomFromOs, silentLogger, type WireMessage } from '../src/core/index.ts';
import { parseAddress, TcpTransport } from '../src/transport/index.ts';

export interface TransportBenchResult {
  readonly target: 'ringkv-transport' | 'bare-tcp';
  readonly inFlight: number;
  readonly roundTripsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /**
   * CPU time of the client process per round trip (user + system). On a
   * shared, loaded machine this is steadier than the rates, which also
   * measure everyone else's load.
   */
  readonly clientCpuUsPerRoundTrip: number;
}

export interface TransportBenchOptions {
  readonly json: boolean;
  /** Measured time per case, after a warm-up of a fifth of it. */
  readonly durationMs?: number;
  readonly inFlight?: readonly number[];
}

const valueBytes = 100;
const secretEnv = 'RINGKV_BENCH_SECRET';
const clusterName = 'bench';
const serverId = 'bench-server';
type Target = TransportBenchResult['target'];

// ---------------------------------------------------------------- server side (child process)

async function serveRingkv(): Promise<string> {
  const transport = await TcpTransport.listen({
    nodeId: serverId,
    clusterName,
    secret: process.env[secretEnv] ?? '',
    clock: new RealClock(),
    random: randomFromOs(),
    log: silentLogger,
  });
  transport.setHandler({
    onMessage() {},
    async onRequest(_from, message) {
      return { type: 'bench.ok', value: message.value };
    },
  });
  return transport.address;
}

/** Echoes every length-prefixed frame back; replies to one chunk leave in one write. */
async function serveBare(): Promise<string> {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => {});
    readFrames(socket, (frame) => {
      socket.cork();
      socket.write(frame);
      process.nextTick(() => socket.uncork());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
}

/** Calls `onFrame` with each whole frame (its 4-byte length prefix included). */
function readFrames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    let data = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (data.length >= 4) {
      const total = 4 + data.readUInt32BE(0);
      if (data.length < total) break;
      onFrame(data.subarray(0, total));
      data = data.subarray(total);
    }
    pending = data;
  });
}

// ---------------------------------------------------------------- client side

type Call = () => Promise<unknown>;

async function ringkvClient(address: string, secret: string): Promise<{ call: Call; close: () => Promise<void> }> {
  const transport = await TcpTransport.listen({
    nodeId: 'bench-client',
    clusterName,
    secret,
    clock: new RealClock(),
    random: randomFromOs(),
    log: silentLogger,
  });
  transport.setAddress(serverId, address);
  const message: WireMessage = { type: 'bench.put', key: 'user6284781860667377211', value: randomBytes(valueBytes) };
  return { call: () => transport.request(serverId, message, 10_000), close: () => transport.close() };
}

async function bareClient(address: string): Promise<{ call: Call; close: () => Promise<void> }> {
  const { host, port } = parseAddress(address);
  const socket = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  // Replies come back in request order on one connection: a FIFO of resolvers.
  const waiting: Array<() => void> = [];
  let head = 0;
  readFrames(socket, () => {
    const resolve = waiting[head++];
    if (head > 4096) {
      waiting.splice(0, head);
      head = 0;
    }
    resolve?.();
  });
  const frame = Buffer.alloc(4 + valueBytes);
  frame.writeUInt32BE(valueBytes, 0);
  randomBytes(valueBytes).copy(frame, 4);
  let corked = false;
  const call: Call = () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      socket.write(frame);
    });
  return {
    call,
    close: async () => {
      socket.destroy();
    },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** `inFlight` loops, each issuing its next call as soon as the previous returns. */
async function measure(
  call: Call,
  inFlight: number,
  durationMs: number,
): Promise<{ roundTripsPerSec: number; p50Ms: number; p99Ms: number; clientCpuUsPerRoundTrip: number }> {
  const warmupMs = durationMs / 5;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const latencies: number[] = [];
  let cpuFrom: NodeJS.CpuUsage | undefined;
  let cpuTo: NodeJS.CpuUsage | undefined;
  let completed = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) {
        cpuTo ??= process.cpuUsage(cpuFrom);
        return;
      }
      if (t0 >= measureFrom) cpuFrom ??= process.cpuUsage();
      await call();
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
      if (cpuFrom !== undefined && cpuTo === undefined) completed++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const sorted = Float64Array.from(latencies).sort();
  const cpuUs = cpuTo === undefined ? NaN : cpuTo.user + cpuTo.system;
  return {
    roundTripsPerSec: Math.round(latencies.length / (durationMs / 1000)),
    p50Ms: round3(percentile(sorted, 50)),
    p99Ms: round3(percentile(sorted, 99)),
    clientCpuUsPerRoundTrip: round3(cpuUs / Math.max(1, completed)),
  };
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

async function startServer(target: Target, secret: string): Promise<{ child: ChildProcess; address: string }> {
  const tsx = import.meta.resolve('tsx');
  const extraArgs = (process.env.RINGKV_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  const child = spawn(process.execPath, [...extraArgs, '--import', tsx, fileURLToPath(import.meta.url), '--serve', target], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, [secretEnv]: secret },
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const address = await new Promise<string>((resolve, reject) => {
    // The first JSON line is the address; flags such as --trace-gc may print before it.
    lines.on('line', (line) => {
      if (line.startsWith('{')) resolve((JSON.parse(line) as { address: string }).address);
      else console.error(`[${target} server] ${line}`);
    });
    child.once('exit', (code) => reject(new Error(`The ${target} bench server exited with code ${String(code)} before listening`)));
  });
  // Keep draining the child's stdout: a full pipe would block the server mid-run.
  if (extraArgs.length === 0) child.stdout?.resume();
  return { child, address };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

export async function runTransportBench(options: TransportBenchOptions): Promise<TransportBenchResult[]> {
  const durationMs = options.durationMs ?? 3_000;
  const inFlights = options.inFlight ?? [1, 64];
  const secret = randomBytes(24).toString('base64');
  const results: TransportBenchResult[] = [];
  const targets = ['ringkv-transport', 'bare-tcp'] as const;
  const servers: Array<{ child: ChildProcess; address: string }> = [];
  const clients: Array<{ call: Call; close: () => Promise<void> }> = [];
  try {
    for (const target of targets) servers.push(await startServer(target, secret));
    clients.push(await ringkvClient((servers[0] as { address: string }).address, secret));
    clients.push(await bareClient((servers[1] as { address: string }).address));
    // Cases alternate between the two targets, so a change in the machine's
    // load during the run does not all fall on one side of the ratio.
    for (const inFlight of inFlights) {
      for (const [i, target] of targets.entries()) {
        const figures = await measure((clients[i] as { call: Call }).call, inFlight, durationMs);
        const result: TransportBenchResult = { target, inFlight, ...figures };
        results.push(result);
        if (options.json) console.log(JSON.stringify(result));
      }
    }
  } finally {
    for (const client of clients) await client.close();
    for (const server of servers) await stopServer(server.child);
  }
  if (!options.json) printTable(results);
  return results;
}

function printTable(results: readonly TransportBenchResult[]): void {
  console.log(`transport round trips, ${valueBytes}-byte values, client and server in two processes on 127.0.0.1`);
  console.log('target            in-flight  round-trips/s    p50 ms    p99 ms  client cpu us/rt');
  for (const r of results) {
    console.log(
      `${r.target.padEnd(17)} ${String(r.inFlight).padStart(9)} ${String(r.roundTripsPerSec).padStart(14)} ${r.p50Ms.toFixed(3).padStart(9)} ${r.p99Ms.toFixed(3).padStart(9)} ${r.clientCpuUsPerRoundTrip.toFixed(2).padStart(17)}`,
    );
  }
  for (const inFlight of new Set(results.map((r) => r.inFlight))) {
    const ours = results.find((r) => r.target === 'ringkv-transport' && r.inFlight === inFlight);
    const bare = results.find((r) => r.target === 'bare-tcp' && r.inFlight === inFlight);
    if (ours !== undefined && bare !== undefined) {
      console.log(`ratio ringkv/bare at ${inFlight} in flight: ${(ours.roundTripsPerSec / bare.roundTripsPerSec).toFixed(2)} (throughput), ${(ours.p99Ms / bare.p99Ms).toFixed(2)} (p99)`);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      serve: { type: 'string' },
      'duration-ms': { type: 'string' },
    },
  });
  if (values.serve !== undefined) {
    const address = values.serve === 'ringkv-transport' ? await serveRingkv() : await serveBare();
    console.log(JSON.stringify({ address }));
    // Exit with the parent: stdin closes when it goes away.
    process.stdin.on('end', () => process.exit(0)).resume();
    process.on('SIGTERM', () => process.exit(0));
    return;
  }
  const durationMs = values['duration-ms'] === undefined ? undefined : Number(values['duration-ms']);
  await runTransportBench({ json: values.json, ...(durationMs === undefined ? {} : { durationMs }) });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
