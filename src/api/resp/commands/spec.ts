/** Building blocks for the command table. */
import type { CommandFlag, CommandSpec, Handler } from './types.ts';

export interface CommandInput {
  name: string;
  arity: number;
  flags: readonly CommandFlag[];
  firstKey?: number;
  lastKey?: number;
  keyStep?: number;
  group: string;
  summary: string;
  since?: string;
  complexity?: string;
  aclCategories?: readonly string[];
  handler?: Handler;
  subcommands?: readonly CommandSpec[];
}

export function command(input: CommandInput): CommandSpec {
  return {
    name: input.name,
    arity: input.arity,
    flags: input.flags,
    firstKey: input.firstKey ?? 0,
    lastKey: input.lastKey ?? 0,
    keyStep: input.keyStep ?? 0,
    group: input.group,
    summary: input.summary,
    since: input.since ?? '1.0.0',
    aclCategories: input.aclCategories ?? [],
    ...(input.complexity === undefined ? {} : { complexity: input.complexity }),
    ...(input.handler === undefined ? {} : { handler: input.handler }),
    ...(input.subcommands === undefined ? {} : { subcommands: input.subcommands }),
  };
}

/** A subcommand spec named 'container|sub'. */
export function sub(container: string, name: string, arity: number, flags: readonly CommandFlag[], handler: Handler, summary: string, group = 'server'): CommandSpec {
  return command({ name: `${container}|${name}`, arity, flags, group, summary, handler, aclCategories: ['@slow'] });
}
