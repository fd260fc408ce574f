/**
 * The command table: every command ringkv speaks over RESP, declared as data
 * (name, arity, flags, key positions, handler). Dispatch, arity checks,
 * COMMAND output and cluster routing all read this one table.
 */
import { clusterCommands } from './cluster.ts';
import { connectionCommands } from './connection.ts';
import { keyspaceCommands } from './keyspace.ts';
import { ringkvCommands } from './ringkv.ts';
import { serverCommands } from './server.ts';
import { stringCommands } from './strings.ts';
import type { CommandSpec } from './types.ts';

export class CommandTable {
  readonly all: readonly CommandSpec[];
  private readonly byName = new Map<string, CommandSpec>();
  private readonly subByName = new Map<string, Map<string, CommandSpec>>();

  constructor(specs: readonly CommandSpec[] = [...connectionCommands, ...serverCommands, ...stringCommands, ...keyspaceCommands, ...clusterCommands, ...ringkvCommands]) {
    this.all = specs;
    for (const spec of specs) {
      if (this.byName.has(spec.name)) throw new Error(`Command ${spec.name} is declared twice`);
      // Both spellings, so the hot path usually finds a command without lower-casing it.
      this.byName.set(spec.name, spec);
      this.byName.set(spec.name.toUpperCase(), spec);
      if (spec.subcommands !== undefined) {
        const subs = new Map<string, CommandSpec>();
        for (const s of spec.subcommands) subs.set(s.name.slice(spec.name.length + 1), s);
        this.subByName.set(spec.name, subs);
      }
    }
  }

  /** A command by name in any case ('GET', 'get', 'Get'); 'config|get' finds a subcommand. */
  lookup(name: string): CommandSpec | undefined {
    const hit = this.byName.get(name) ?? this.byName.get(name.toLowerCase());
    if (hit !== undefined) return hit;
    const bar = name.indexOf('|');
    if (bar < 0) return undefined;
    return this.subcommand(name.slice(0, bar).toLowerCase(), name.slice(bar + 1));
  }

  /** A top-level command only, as dispatch needs ('config|get' is not a command name on the wire). */
  command(name: string): CommandSpec | undefined {
    return this.byName.get(name) ?? this.byName.get(name.toLowerCase());
  }

  subcommand(container: string, name: string): CommandSpec | undefined {
    return this.subByName.get(container)?.get(name.toLowerCase());
  }
}

/** Redis's text for an unknown command, quoting up to 128 characters of its arguments. */
export function unknownCommandReply(args: readonly Buffer[]): string {
  let quoted = '';
  for (let i = 1; i < args.length && quoted.length < 128; i++) {
    quoted += `'${(args[i] as Buffer).toString().slice(0, 128 - quoted.length)}' `;
  }
  return `ERR unknown command '${(args[0] as Buffer).toString().slice(0, 128)}', with args beginning with: ${quoted}`;
}

export function unknownSubcommandReply(container: string, sub: Buffer): string {
  return `ERR unknown subcommand '${sub.toString().slice(0, 128)}'. Try ${container.toUpperCase()} HELP.`;
}

export function arityReply(name: string): string {
  return `ERR wrong number of arguments for '${name}' command`;
}

export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity > 0 ? argc === spec.arity : argc >= -spec.arity;
}
