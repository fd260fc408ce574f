/**
 * The `ringkv` dispatcher. Each subcommand declares its options once
 * (args.ts), which drives parsing and --help. Exit codes: 0 ok, 1 error,
 * 2 usage, 3 key not found (docs/operations.md). main.ts is the executable.
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

/** Where the dispatcher writes its own help and error text (commands write to the process streams). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return name === undefined ? exitUsage : exitOk;
  }
  if (name === '--version' || name === '-v') {
    io.out('ringkv 0.1.0\n');
    return exitOk;
  }
  const command = commands.find((c) => c.spec.name === name);
  if (command === undefined) {
    io.err(`ringkv: unknown command "${name}"\n\n${mainHelp()}`);
    return exitUsage;
  }
  try {
    const parsed = parseCommand(command.spec, rest);
    if (parsed.values['help'] === true) {
      io.out(helpText(command.spec));
      return exitOk;
    }
    return await command.run(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`ringkv ${name}: ${error.message}\n\n${helpText(command.spec)}`);
      return exitUsage;
    }
    if (isRingkvError(error)) {
      // Bad settings are usage errors; everything else failed while running.
      io.err(`ringkv ${name}: ${error.message}\n`);
      return error.code === 'RINGKV_INVALID_ARGUMENT' && name === 'start' ? exitUsage : exitError;
    }
    io.err(`ringkv ${name}: ${(error as Error).stack ?? String(error)}\n`);
    return exitError;
  }
}
