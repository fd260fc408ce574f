/**
 * Child processes the benchmark starts (ringkv nodes, etcd members): output
 * kept (the tail) for error messages, readiness awaited by log pattern, and
 * stopped only by the pids started here — on normal completion, on an error,
 * and from an exit hook if the benchmark itself is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';

/** Output kept per process: enough for the error that explains a failed start. */
const outputTailBytes = 64 * 1024;
const stopGraceMs = 10_000;

export interface Child {
  readonly name: string;
  readonly pid: number;
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  kill9(): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  stop(): Promise<void>;
}

const started = new Set<Child>();

function killAllStarted(): void {
  for (const child of started) {
    if (!child.running()) continue;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

let hooksInstalled = false;

/** Kills every child still running when the benchmark exits or is interrupted (call once from the entry point). */
export function installCleanupHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllStarted);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAllStarted();
      process.exit(130);
    });
  }
}

export function spawnChild(name: string, command: string, args: string[], env: Record<string, string> = {}, cwd?: string): Child {
  const proc: ChildProcess = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  if (proc.pid === undefined) throw new Error(`Could not start ${name} (${command})`);
  const pid = proc.pid;
  let out = '';
  let exitState: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Set<() => void>();
  // Diagnostics: BENCH_CHILD_LOG_DIR keeps every child's whole output (e.g. a node's --trace-gc-nvp lines).
  const logDir = process.env.BENCH_CHILD_LOG_DIR;
  const logFile = logDir === undefined || logDir === '' ? undefined : join(logDir, `${name.replace(/[^\w.-]+/g, '_')}-${pid}.log`);
  const onData = (chunk: Buffer): void => {
    if (logFile !== undefined) appendFileSync(logFile, chunk);
    out += chunk.toString('utf8');
    if (out.length > outputTailBytes * 2) out = out.slice(-outputTailBytes);
    for (const w of [...waiters]) w();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      exitState = { code, signal };
      for (const w of [...waiters]) w();
      resolve(exitState);
    }),
  );
  const child: Child = {
    name,
    pid,
    output: () => out,
    exited,
    running: () => exitState === undefined,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (exitState !== undefined) {
            done();
            reject(new Error(`${name} exited (code ${exitState.code}, signal ${exitState.signal}) before ${pattern} appeared:\n${out.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${pattern} from ${name}:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async kill9() {
      if (exitState === undefined) process.kill(pid, 'SIGKILL');
      await exited;
    },
    async stop() {
      if (exitState !== undefined) return;
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (exitState === undefined) process.kill(pid, 'SIGKILL');
      }, stopGraceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  started.add(child);
  void exited.then(() => started.delete(child));
  return child;
}

/** A port the OS just handed out on 127.0.0.1 (listen on 0, close): free unless another process grabs it in between. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; attempt < count * 20 && ports.size < count; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`Found only ${ports.size} of ${count} free ports on 127.0.0.1`);
  return [...ports];
}

/** Polls `check` until it holds or `timeoutMs` passes. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const userHz = 100;

/** User + system CPU a running process (all its threads) has used so far, in µs; undefined once it is gone. */
export function processCpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1_000_000) / userHz : undefined;
  } catch {
    return undefined;
  }
}

/** Sums the CPU the given processes use between `start()` and `stop()`, counting only those alive at both ends. */
export function cpuMeter(pids: () => readonly number[]): { stop(): number } {
  const before = new Map<number, number>();
  for (const pid of pids()) {
    const micros = processCpuMicros(pid);
    if (micros !== undefined) before.set(pid, micros);
  }
  return {
    stop() {
      let total = 0;
      for (const [pid, start] of before) {
        const end = processCpuMicros(pid);
        if (end !== undefined) total += end - start;
      }
      return total;
    },
  };
}
