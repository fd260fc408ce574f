#!/usr/bin/env node
/**
 * The `ringkv` command. Each subcommand declares its options once (args.ts),
 * which drives parsing and --help. Exit codes: 0 ok, 1 error, 2 usage,
 * 3 key not found (docs/operations.md).
 */
import { isRingkvError } from '../core/index.ts';
import type { CommandSpec, Parsed } from './args.ts';
import { UsageError, exitError, exitOk, exitUsage, helpText, parseCommand } from './args.ts';
import { devSpec, runDev } from './dev.ts';
import { delSpec, getSpec, incrSpec, putSpec, ringSpec, runDel, runGet, runIncr, runPut, runRing, runStatus, statusSpec } from './remote.ts';
import { runStart, startSpec } from './start.ts';

interface Command {
  spec: CommandSpec;
  run: (parsed: Parsed) => Promise<number>;
}

const commands: Command[] = [
  { spec: startSpec, run: runStart },
  { spec: devSpec, run: runDev },
  { spec: statusSpec, run: runStatus },
  { spec: ringSpec, run: runRing },
  { spec: getSpec, run: runGet },
  { spec: putSpec, run: runPut },
  { spec: delSpec, run: runDel },
  { spec: incrSpec, run: runIncr },
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.spec.name.length));
  return [
    'Usage: ringkv <command> [options]',
    '',
    'ringkv is a Dynamo-style distributed key-value store served over the Redis protocol and HTTP.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary.split('. ')[0]?.replace(/\.$/, '')}`),
    '',
    'Run "ringkv <command> --help" for the options of a command.',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? exitUsage : exitOk;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write('ringkv 0.1.0\n');
    return exitOk;
  }
  const command = commands.find((c) => c.spec.name === name);
  if (command === undefined) {
    process.stderr.write(`ringkv: unknown command "${name}"\n\n${mainHelp()}`);
    return exitUsage;
  }
  try {
    const parsed = parseCommand(command.spec, rest);
    if (parsed.values['help'] === true) {
      process.stdout.write(helpText(command.spec));
      return exitOk;
    }
    return await command.run(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`ringkv ${name}: ${error.message}\n\n${helpText(command.spec)}`);
      return exitUsage;
    }
    if (isRingkvError(error)) {
      // Bad settings are usage errors; everything else failed while running.
      process.stderr.write(`ringkv ${name}: ${error.message}\n`);
      return error.code === 'RINGKV_INVALID_ARGUMENT' && name === 'start' ? exitUsage : exitError;
    }
    process.stderr.write(`ringkv ${name}: ${(error as Error).stack ?? String(error)}\n`);
    return exitError;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Servers and sockets are closed by now; a lingering handle must not keep the CLI alive.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (error: unknown) => {
    process.stderr.write(`ringkv: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(exitError);
  },
);
