/**
 * Starting real `ringkv` processes for tests: `node --import tsx
 * src/cli/main.ts …` from the repository root, logs captured, ports learned
 * from the node's "ready" log line (nodes listen on port 0), and stopped only
 * by the pid we started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPortFree } from '../../src/cli/ports.ts';

export const repoRoot = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliEntry = nodePath.join(repoRoot, 'src/cli/main.ts');
/**
 * tsx by absolute URL: `--import tsx` would resolve from the child's cwd (a temp
 * dir in the dev tests), and `ringkv dev` hands its execArgv on to the nodes.
 */
export const tsxImport = import.meta.resolve('tsx');
/** Bound for any wait on a child process, so a broken node fails the test instead of hanging it. */
export const processWaitMs = 20_000;
/** Bound for a node to log "ready": tsx compiles the sources on a cold start, which takes long on a loaded 2-core machine. */
export const startWaitMs = 60_000;

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(nodePath.join(tmpdir(), `ringkv-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves with the exit code (or 128 + signal number style: null code gives -1). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when a line of the combined output matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export function spawnCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Spawned {
  const child = spawn(process.execPath, ['--import', tsxImport, cliEntry, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const onData = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    for (const w of [...waiters]) {
      const m = out.match(w.pattern);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    pid: child.pid as number,
    output: () => out,
    exited,
    waitFor(pattern, timeoutMs = processWaitMs) {
      const m = out.match(pattern);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${pattern} in:\n${out}`)), timeoutMs);
        const waiter = {
          pattern,
          resolve: (match: RegExpMatchArray) => {
            clearTimeout(timer);
            resolve(match);
          },
        };
        waiters.push(waiter);
        void exited.then(({ code }) => {
          if (waiters.includes(waiter)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(waiter), 1);
            reject(new Error(`Process exited (code ${code}) before ${pattern} appeared:\n${out}`));
          }
        });
      });
    },
  };
}

export interface RunningNode extends Spawned {
  respPort: number;
  httpPort: number;
  http: string;
  /** SIGTERM, then wait for a clean exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill9(): Promise<void>;
}

export async function startNode(dataDir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<RunningNode> {
  const spawned = spawnCli(['start', '--data', dataDir, '--resp-port', '0', '--http-port', '0', '--cluster-port', '0', ...extra], { env });
  let m: RegExpMatchArray;
  try {
    m = await spawned.waitFor(/"msg":"ready".*?"resp":"[^"]*:(\d+)","http":"[^"]*:(\d+)"/, startWaitMs);
  } catch (error) {
    // The caller never gets a handle to stop it: a live child would keep the test file (and the suite) from exiting.
    killIfRunning(spawned);
    throw error;
  }
  const respPort = Number(m[1]);
  const httpPort = Number(m[2]);
  return {
    ...spawned,
    respPort,
    httpPort,
    http: `http://127.0.0.1:${httpPort}`,
    async stop() {
      process.kill(spawned.pid, 'SIGTERM');
      return withTimeout(spawned.exited, processWaitMs, 'node to stop after SIGTERM');
    },
    async kill9() {
      process.kill(spawned.pid, 'SIGKILL');
      await withTimeout(spawned.exited, processWaitMs, 'node to die after SIGKILL');
    },
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Kills a child we started if it is still running (test cleanup). */
export function killIfRunning(spawned: Spawned | undefined): void {
  if (spawned === undefined || spawned.child.exitCode !== null || spawned.child.signalCode !== null) return;
  try {
    process.kill(spawned.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 200 ms until it holds; a check that throws counts as not yet. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * `count` distinct free ports in [from, from + span). Cluster ports are fixed
 * per node (a restarted node comes back on its old address), so process tests
 * pick them up front; each test file uses its own range so files running side
 * by side do not collide.
 */
export async function freePortsIn(from: number, span: number, count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; attempt < 200 && ports.length < count; attempt++) {
    const port = from + Math.floor(Math.random() * span);
    if (!ports.includes(port) && (await isPortFree('127.0.0.1', port))) ports.push(port);
  }
  if (ports.length !== count) throw new Error(`Found ${ports.length} of ${count} free ports in [${from}, ${from + span})`);
  return ports;
}
