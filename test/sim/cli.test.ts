/** `npm run sim`: the JSON summary, the replay line of a failure and the exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sim(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'sim/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('sim CLI: --json prints one summary object with runs, failures and faultsInjected', () => {
  const { status, stdout, stderr } = sim('--scenario', 'membership', '--seeds', '2', '--nodes', '4', '--json');
  assert.equal(status, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const summary = JSON.parse(lines[0] as string) as Record<string, unknown>;
  assert.equal(summary.runs, 2);
  assert.equal(summary.failures, 0);
  assert.ok(typeof summary.faultsInjected === 'number' && summary.faultsInjected > 0);
  assert.equal(summary.falseDownsPerPairHour, 0);
});

test('sim CLI: a failing seed is printed with its replay command and exits 1', () => {
  const { status, stderr } = sim('--scenario', 'membership', '--nodes', '2', '--seed', '77', '--window=1500');
  assert.equal(status, 1);
  assert.match(stderr, /FAIL membership seed 77: .*at least 3 nodes/);
  // The scenario's own flags are part of the run, so the replay carries them.
  assert.match(stderr, /replay: npm run sim -- --scenario membership --nodes 2 --seed 77 --window=1500\n/);
});

test('sim CLI: an unknown scenario or a bad number is a usage error', () => {
  const missing = sim('--scenario', 'no-such-scenario');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /No scenario "no-such-scenario": expected a file sim\/scenarios\/no-such-scenario\.ts/);
  const bad = sim('--scenario', '../etc');
  assert.equal(bad.status, 2);
  const seeds = sim('--scenario', 'membership', '--seeds', 'many');
  assert.equal(seeds.status, 2);
  assert.match(seeds.stderr, /--seeds must be a non-negative integer, got "many"/);
});
