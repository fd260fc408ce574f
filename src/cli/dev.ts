/**
 * `ringkv dev --nodes N`: a local cluster on loopback in one command. Spawns N
 * `ringkv start` processes with data under ./data/node-1 …, forwards their
 * logs with a node prefix, prints how to connect, and stops every node on
 * Ctrl-C / SIGTERM. If a node dies on its own, the others are stopped too and
 * the command fails: nothing is restarted silently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import type { CommandSpec, Parsed } from './args.ts';
import { UsageError, exitError, exitOk, intOption, stringOption } from './args.ts';
import { findBusyPort } from './ports.ts';

export const maxDevNodes = 16;
/** How long each node may take to answer /healthz after it is spawned. */
export const nodeReadyTimeoutMs = 30_000;
/** After SIGTERM, how long a node may take to drain before it is killed. */
export const nodeStopTimeoutMs = 10_000;
/** HTTP and cluster ports sit this far above the RESP port of the same node. */
export const httpPortOffset = 1000;
export const clusterPortOffset = 2000;

export const devSpec: CommandSpec = {
  name: 'dev',
  summary: 'Start a local cluster of N nodes on loopback, print how to connect, and stop them all on Ctrl-C.',
  options: {
    nodes: { type: 'string', short: 'n', value: '<N>', help: `Number of nodes, 1 to ${maxDevNodes} (default 3)` },
    data: { type: 'string', short: 'd', value: '<dir>', help: 'Parent data directory; node i keeps its data in <dir>/node-i (default ./data)' },
    'base-port': { type: 'string', value: '<port>', help: `RESP port of node 1 (default 7379); node i uses base+i-1 for RESP, +${httpPortOffset} for HTTP, +${clusterPortOffset} for the cluster` },
    host: { type: 'string', value: '<addr>', help: 'Loopback address to listen on (default 127.0.0.1)' },
    'wal-sync': { type: 'string', value: '<mode>', help: 'always (default), interval or none' },
    'log-level': { type: 'string', value: '<level>', help: 'Log level of the nodes (default info)' },
    secret: { type: 'string', value: '<secret>', help: 'Cluster secret (default: a random one for this run)' },
  },
  notes: ['Example:', '  ringkv dev --nodes 3            # RESP on 7379-7381, HTTP on 8379-8381'],
};

interface DevNode {
  name: string;
  respPort: number;
  httpPort: number;
  clusterPort: number;
  dataDir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

const useColour = process.stderr.isTTY === true;
const palette = ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m', '\x1b[31m'];

/** A JSON log line from a node, rendered readably when a person is watching. */
function renderLogLine(prefix: string, line: string): string {
  if (!useColour || !line.startsWith('{')) return `${prefix} ${line}\n`;
  try {
    const record = JSON.parse(line) as Record<string, unknown>;
    const { time, level, msg, ...fields } = record;
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${prefix} ${String(time ?? '').slice(11, 23)} ${String(level ?? '').toUpperCase().padEnd(5)} ${String(msg ?? '')}${extra ? ` ${extra}` : ''}\n`;
  } catch {
    return `${prefix} ${line}\n`;
  }
}

function forward(stream: NodeJS.ReadableStream | null, prefix: string): void {
  if (stream === null) return;
  createInterface({ input: stream }).on('line', (line) => process.stderr.write(renderLogLine(prefix, line)));
}

async function waitReady(node: DevNode, host: string): Promise<void> {
  const deadline = Date.now() + nodeReadyTimeoutMs;
  while (Date.now() < deadline) {
    if (node.exitCode !== undefined) throw new Error(`${node.name} exited with code ${node.exitCode} while starting (see its log above)`);
    try {
      const res = await fetch(`http://${host}:${node.httpPort}/healthz`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${node.name} did not answer http://${host}:${node.httpPort}/healthz within ${nodeReadyTimeoutMs} ms`);
}

async function stopAll(nodes: DevNode[]): Promise<boolean> {
  let clean = true;
  for (const node of nodes) {
    if (node.exitCode === undefined && node.child.pid !== undefined) {
      try {
        process.kill(node.child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  }
  await Promise.all(
    nodes.map(async (node) => {
      const timer = setTimeout(() => {
        if (node.exitCode === undefined && node.child.pid !== undefined) {
          process.stderr.write(`ringkv dev: ${node.name} did not stop within ${nodeStopTimeoutMs} ms: killing it\n`);
          process.kill(node.child.pid, 'SIGKILL');
        }
      }, nodeStopTimeoutMs);
      const code = await node.exited;
      clearTimeout(timer);
      if (code !== 0) clean = false;
    }),
  );
  return clean;
}

function connectInfo(nodes: DevNode[], host: string, dataRoot: string): string {
  const first = nodes[0] as DevNode;
  const lines = [
    '',
    `ringkv dev: ${nodes.length} node${nodes.length === 1 ? '' : 's'} on ${host}, data under ${dataRoot}`,
    '',
    ...nodes.map(
      (n) => `  ${n.name}  RESP ${host}:${n.respPort}  HTTP http://${host}:${n.httpPort}  cluster ${host}:${n.clusterPort}  pid ${n.child.pid ?? '?'}`,
    ),
    '',
    'Connect:',
    `  redis-cli -p ${first.respPort} set hello world`,
    `  redis-cli -p ${first.respPort} get hello`,
    `  curl -X PUT --data-binary world http://${host}:${first.httpPort}/v1/kv/hello`,
    `  curl http://${host}:${first.httpPort}/v1/kv/hello`,
    `  ringkv status --port ${first.httpPort}`,
    `  admin page: http://${host}:${first.httpPort}/`,
    '',
    'Press Ctrl-C to stop all nodes.',
    '',
  ];
  return lines.join('\n');
}

export async function runDev(parsed: Parsed): Promise<number> {
  if (parsed.positionals.length > 0) throw new UsageError(`ringkv dev takes no arguments, got "${parsed.positionals.join(' ')}"`);
  const count = intOption(parsed, 'nodes', 1, maxDevNodes) ?? 3;
  const basePort = intOption(parsed, 'base-port', 1, 65535 - clusterPortOffset - maxDevNodes) ?? 7379;
  const host = stringOption(parsed, 'host') ?? '127.0.0.1';
  const dataRoot = stringOption(parsed, 'data') ?? './data';
  const secret = stringOption(parsed, 'secret') ?? randomBytes(24).toString('base64url');

  const plan = Array.from({ length: count }, (_, i) => ({
    name: `node-${i + 1}`,
    respPort: basePort + i,
    httpPort: basePort + httpPortOffset + i,
    clusterPort: basePort + clusterPortOffset + i,
    dataDir: nodePath.join(dataRoot, `node-${i + 1}`),
  }));
  const busy = await findBusyPort(
    host,
    plan.flatMap((p) => [
      { port: p.respPort, what: `RESP port of ${p.name}` },
      { port: p.httpPort, what: `HTTP port of ${p.name}` },
      { port: p.clusterPort, what: `cluster port of ${p.name}` },
    ]),
  );
  if (busy !== undefined) {
    process.stderr.write(
      `ringkv dev: port ${busy.port} (${busy.what}) on ${host} is already in use: is Redis or another ringkv running? Stop it or choose other ports with --base-port.\n`,
    );
    return exitError;
  }

  // The entry script that is running now (dist/cli/main.js, or src/cli/main.ts under tsx).
  const entry = process.argv[1] as string;
  const seed = `${host}:${(plan[0] as (typeof plan)[number]).clusterPort}`;
  const nodes: DevNode[] = plan.map((p, i) => {
    const args = [
      ...process.execArgv,
      entry,
      'start',
      '--node-id', p.name,
      '--data', p.dataDir,
      '--host', host,
      '--resp-port', String(p.respPort),
      '--http-port', String(p.httpPort),
      '--cluster-port', String(p.clusterPort),
      '--rack', `rack${i + 1}`,
      '--wal-sync', stringOption(parsed, 'wal-sync') ?? 'always',
      '--log-level', stringOption(parsed, 'log-level') ?? 'info',
      ...(i > 0 ? ['--seeds', seed] : []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The secret goes through the environment so it is not visible in ps.
      env: { ...process.env, RINGKV_CLUSTER_SECRET: secret },
    });
    const colour = useColour ? (palette[i % palette.length] as string) : '';
    const prefix = useColour ? `${colour}[${p.name}]\x1b[0m` : `[${p.name}]`;
    forward(child.stdout, prefix);
    forward(child.stderr, prefix);
    const node: DevNode = {
      ...p,
      child,
      exitCode: undefined,
      exited: new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          node.exitCode = code ?? (signal ? 128 : null);
          resolve(node.exitCode);
        });
      }),
    };
    return node;
  });

  let stopping = false;
  const finish = async (reason: string): Promise<boolean> => {
    stopping = true;
    process.stderr.write(`ringkv dev: ${reason}: stopping ${nodes.length} node(s)\n`);
    const clean = await stopAll(nodes);
    for (const n of nodes) process.stderr.write(`ringkv dev: ${n.name} exited with code ${n.exitCode}\n`);
    return clean;
  };

  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      void finish(`received ${signal}`).then((clean) => resolve(clean ? exitOk : exitError));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (const node of nodes) {
      void node.exited.then((code) => {
        if (stopping) return;
        void finish(`${node.name} exited unexpectedly with code ${code}`).then(() => resolve(exitError));
      });
    }
    process.stderr.write(`ringkv dev: waiting for ${nodes.length} node(s) to answer /healthz${nodes.length > 1 ? ' (a cluster first agrees on its ring, a few seconds)' : ''}\n`);
    Promise.all(nodes.map((n) => waitReady(n, host))).then(
      () => {
        if (!stopping) process.stdout.write(connectInfo(nodes, host, dataRoot));
      },
      (error: unknown) => {
        if (stopping) return;
        void finish((error as Error).message).then(() => resolve(exitError));
      },
    );
  });
}
