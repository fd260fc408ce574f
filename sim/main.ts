/**
 * `npm run sim -- --scenario <name> [--seeds N] [--first S] [--seed S] [--nodes N] [--json]`
 *
 * Runs a scenario from sim/scenarios/<name>.ts over consecutive seeds (or one
 * seed with --seed), prints each failure with the command that replays it,
 * and a summary. Exit code 1 when any run fails. Unrecognised --key=value
 * flags are passed to the scenario in `options.extra`.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { aggregateMetrics, type Scenario } from './scenario.ts';

const scenarioNamePattern = /^[a-z0-9][a-z0-9-]*$/;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) fail(`--${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

/** `word` as a POSIX shell reads it back: quoted unless it is plainly safe. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

async function loadScenario(name: string): Promise<Scenario> {
  if (!scenarioNamePattern.test(name)) fail(`--scenario must be a name such as "membership", got "${name}"`);
  let module: { scenario?: Scenario };
  try {
    module = (await import(`./scenarios/${name}.ts`)) as { scenario?: Scenario };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`scenarios/${name}.ts`)) {
      fail(`No scenario "${name}": expected a file sim/scenarios/${name}.ts`);
    }
    throw error;
  }
  if (module.scenario === undefined) fail(`sim/scenarios/${name}.ts does not export "scenario"`);
  return module.scenario;
}

async function main(): Promise<void> {
  const { values, tokens } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'membership' },
      seeds: { type: 'string' },
      first: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
    strict: false,
    tokens: true,
  });
  const name = String(values.scenario);
  const scenario = await loadScenario(name);
  const nodes = positiveInt(values.nodes as string | undefined, 'nodes', scenario.defaultNodes);
  const single = values.seed === undefined ? undefined : positiveInt(values.seed as string, 'seed', 0);
  const count = single === undefined ? positiveInt(values.seeds as string | undefined, 'seeds', 10) : 1;
  const first = single ?? positiveInt(values.first as string | undefined, 'first', 1);
  const known = new Set(['scenario', 'seeds', 'first', 'seed', 'nodes', 'json', 'verbose']);
  const extra: Record<string, string> = {};
  for (const token of tokens ?? []) {
    if (token.kind === 'option' && !known.has(token.name)) extra[token.name] = token.value ?? 'true';
  }

  // The scenario's own flags change the run, so the replay command carries them.
  const replayFlags = Object.entries(extra)
    .map(([key, value]) => ` ${shellWord(`--${key}=${value}`)}`)
    .join('');

  const started = performance.now();
  let failures = 0;
  let faultsInjected = 0;
  let opsChecked: number | undefined;
  const metrics: Record<string, number> = {};
  const failedSeeds: number[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = await scenario.run(seed, { nodes, extra });
    faultsInjected += result.faultsInjected;
    if (result.opsChecked !== undefined) opsChecked = (opsChecked ?? 0) + result.opsChecked;
    if (result.metrics !== undefined) aggregateMetrics(metrics, result.metrics);
    if (!result.ok) {
      failures++;
      failedSeeds.push(seed);
      process.stderr.write(
        `FAIL ${name} seed ${seed}: ${result.failure ?? 'no reason given'}\n` +
          `  replay: npm run sim -- --scenario ${name} --nodes ${nodes} --seed ${seed}${replayFlags}\n`,
      );
    } else if (values.verbose) {
      process.stderr.write(`ok   ${name} seed ${seed} faults=${result.faultsInjected} trace=${result.traceHash ?? '-'}\n`);
    }
  }
  const elapsedMs = Math.round(performance.now() - started);
  const derived = scenario.summarize?.(metrics, count) ?? {};
  const summary = {
    scenario: name,
    nodes,
    firstSeed: first,
    runs: count,
    failures,
    failedSeeds,
    faultsInjected,
    ...(opsChecked !== undefined ? { opsChecked } : {}),
    metrics,
    ...derived,
    elapsedMs,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    process.stdout.write(`${name}: ${count} runs, ${failures} failures, ${faultsInjected} faults injected, ${elapsedMs} ms\n`);
    for (const [key, value] of Object.entries({ ...metrics, ...derived })) process.stdout.write(`  ${key}: ${Number.isInteger(value) ? value : value.toFixed(4)}\n`);
  }
  process.exitCode = failures > 0 ? 1 : 0;
}

await main();
