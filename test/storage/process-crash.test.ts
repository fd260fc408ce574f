/**
 * Real-process crash test: a child writes with sync `always` on the real file
 * system and reports each acknowledged key; the parent SIGKILLs it at a random
 * moment, reopens the database and checks that every acknowledged key is
 * there with its value. Repeated over many rounds on the same directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock, RealFileSystem, SeededRandom, silentLogger, utf8, fromUtf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import { crashTestOptions, crashTestValue } from './crash-shared.ts';

const rounds = Number(process.env.RINGKV_KILL_ROUNDS ?? 32);
const childPath = new URL('./crash-child.ts', import.meta.url).pathname;
const childTimeoutMs = 15_000;

/** Runs one child until it is killed `killAfterMs` after it is ready; returns the acknowledged numbers. */
function runChild(dir: string, round: number, killAfterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childPath, dir, String(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), childTimeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        else if (line !== '') acked.push(Number(line));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`child exited with ${code ?? signal} before the kill: ${stderr}`));
    });
  });
}

test(`SIGKILL at random moments loses no acknowledged write (${rounds} rounds)`, { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-kill-'));
  const random = new SeededRandom(Number(process.env.RINGKV_KILL_SEED ?? 7));
  const ackedByRound: number[][] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const acked = await runChild(dir, round, 10 + random.int(200));
      ackedByRound.push(acked);
      const db = await openLsm(dir, crashTestOptions, { fs: new RealFileSystem(), clock: new RealClock(), log: silentLogger });
      try {
        // Every round's acknowledged keys, not only this one's: earlier data must survive later crashes.
        for (let r = 0; r <= round; r++) {
          for (const n of ackedByRound[r] as number[]) {
            const want = crashTestValue(r, n);
            const got = await db.get(utf8(`r${r}-${n}`));
            assert.equal(got && fromUtf8(got.value), want, `round ${round}: key r${r}-${n} lost`);
            if (n % 10 === 9) {
              const twin = await db.get(utf8(`r${r}-${n}-twin`));
              assert.equal(twin && fromUtf8(twin.value), want, `round ${round}: batch twin of r${r}-${n} lost`);
            }
          }
        }
      } finally {
        await db.close();
      }
    }
    const total = ackedByRound.reduce((n, a) => n + a.length, 0);
    t.diagnostic(`acknowledged writes per round: ${ackedByRound.map((a) => a.length).join(' ')}`);
    // The kills must land while writing, not before the first write.
    assert.ok(ackedByRound.filter((a) => a.length > 0).length >= rounds / 2, `acknowledged per round: ${ackedByRound.map((a) => a.length)}`);
    assert.ok(total > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
