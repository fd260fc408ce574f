/**
 * fsync — what one append + fdatasync costs on this machine's disk, for a
 * file that grows with each append (a plain log: every fdatasync also
 * journals the new size) against one written full of zeros and synced
 * first (the preallocated WAL, LsmOptions.walPreallocate: the appends
 * overwrite allocated blocks, data only):
 *
 *   node --import tsx bench/fsync.ts [--syncs 2000] [--bytes 8192] [--processes 1] [--dir DIR] [--json]
 *
 * `--processes N` runs N writers at once, each on its own file (three nodes
 * of a local cluster on one disk). Prints per mode the latency of append +
 * fdatasync (p50/p90/p99 µs) and the writer's CPU per sync (user, system),
 * the system part being what the kernel spends per sync in the writer's
 * context (the journal thread's share is not counted). The modes alternate,
 * so a drift in the machine's load falls on both.
 */
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    syncs: { type: 'string', default: '2000' },
    bytes: { type: 'string', default: '8192' },
    processes: { type: 'string', default: '1' },
    dir: { type: 'string' },
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '2' },
    /** Internal: run one writer and print its JSON line. */
    child: { type: 'string' },
  },
});

type Mode = 'growing' | 'preallocated';

interface WriterResult {
  mode: Mode;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  userUsPerSync: number;
  systemUsPerSync: number;
}

function writer(mode: Mode, dir: string, syncs: number, bytes: number): WriterResult {
  const path = join(dir, `fsync-${mode}-${process.pid}`);
  const fd = openSync(path, 'w');
  const data = Buffer.alloc(bytes, 7);
  if (mode === 'preallocated') {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < syncs * bytes; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, syncs * bytes - at), at);
    fsyncSync(fd);
  }
  const micros: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < syncs; i++) {
    const start = process.hrtime.bigint();
    writeSync(fd, data, 0, bytes, i * bytes);
    fdatasyncSync(fd);
    micros.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  const used = process.cpuUsage(cpu);
  closeSync(fd);
  rmSync(path, { force: true });
  micros.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(micros[Math.min(micros.length - 1, Math.floor(q * micros.length))] as number);
  return { mode, p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99), userUsPerSync: Math.round(used.user / syncs), systemUsPerSync: Math.round(used.system / syncs) };
}

function runChild(mode: Mode, dir: string): Promise<WriterResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child', mode, '--dir', dir, '--syncs', args.syncs, '--bytes', args.bytes], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as WriterResult) : reject(new Error(`writer exited with ${code}`))));
  });
}

if (args.child !== undefined) {
  const mode = args.child === 'preallocated' ? 'preallocated' : 'growing';
  process.stdout.write(JSON.stringify(writer(mode, args.dir ?? tmpdir(), Number(args.syncs), Number(args.bytes))));
} else {
  const dir = mkdtempSync(join(args.dir ?? tmpdir(), 'ringkv-fsync-'));
  const processes = Number(args.processes);
  try {
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const mode of ['growing', 'preallocated'] as const) {
        const results = await Promise.all(Array.from({ length: processes }, () => runChild(mode, dir)));
        for (const r of results) {
          if (args.json) process.stdout.write(`${JSON.stringify({ ...r, bytes: Number(args.bytes), processes })}\n`);
          else process.stdout.write(`${mode.padEnd(12)} ${args.bytes} B x ${processes}: p50 ${r.p50Us} µs  p90 ${r.p90Us}  p99 ${r.p99Us}  cpu/sync user ${r.userUsPerSync} µs, system ${r.systemUsPerSync} µs\n`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
