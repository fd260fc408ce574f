/** `ringkv status | ring | get | put | del | incr`: talk to a running node over its HTTP API. */
import { readFileSync } from 'node:fs';
import { RingkvHttpClient } from '../client/index.ts';
import type { CommandSpec, OptionSpec, Parsed } from './args.ts';
import { UsageError, boolOption, exitNotFound, exitOk, intOption, stringOption } from './args.ts';

const connectionOptions: Record<string, OptionSpec> = {
  host: { type: 'string', value: '<addr>', help: 'Node HTTP host (default 127.0.0.1)' },
  port: { type: 'string', short: 'p', value: '<port>', help: 'Node HTTP port (default 8379)' },
  url: { type: 'string', value: '<url>', help: 'Node base URL instead of --host/--port, e.g. http://10.0.0.5:8379' },
  token: { type: 'string', value: '<token>', help: 'Bearer token (or RINGKV_HTTP_TOKEN)' },
  timeout: { type: 'string', value: '<ms>', help: 'Give up after this many milliseconds (default 10000)' },
  json: { type: 'boolean', help: 'Print the JSON answer' },
};

export const statusSpec: CommandSpec = { name: 'status', summary: 'Show the nodes of the cluster: liveness, status, dc/rack, addresses, partitions, keys.', options: connectionOptions };
export const ringSpec: CommandSpec = {
  name: 'ring',
  summary: 'Show the ring: strategy, version, partitions per node and (with --ranges) every partition range with its replicas.',
  options: { ...connectionOptions, ranges: { type: 'boolean', help: 'List every range with its replicas' } },
};
export const getSpec: CommandSpec = {
  name: 'get',
  args: '<key>',
  summary: 'Read a key. One version prints its value; siblings print one per line with the context to resolve them. Exit code 3 when the key does not exist.',
  options: { ...connectionOptions, r: { type: 'string', value: '<level>', help: 'Read consistency: one, quorum, all, local_quorum or a number' }, strict: { type: 'boolean', help: 'Strict quorum (home replicas only)' } },
};
export const putSpec: CommandSpec = {
  name: 'put',
  args: '<key> [value]',
  summary: 'Write a value (from the argument, --file, or standard input when the value is "-").',
  options: {
    ...connectionOptions,
    file: { type: 'string', short: 'f', value: '<path>', help: 'Read the value from a file' },
    ttl: { type: 'string', value: '<seconds>', help: 'Expire the value after this many seconds' },
    context: { type: 'string', value: '<base64>', help: 'Causal context from a get: the write supersedes what that read saw' },
    w: { type: 'string', value: '<level>', help: 'Write consistency: one, quorum, all, local_quorum or a number' },
    strict: { type: 'boolean', help: 'Strict quorum (home replicas only)' },
  },
  notes: ['Examples:', '  ringkv put greeting hello', '  echo -n hello | ringkv put greeting -', '  ringkv put session:1 data --ttl 60'],
};
export const delSpec: CommandSpec = {
  name: 'del',
  args: '<key>',
  summary: 'Delete a key (a tombstone superseding the given context, or everything the node has seen).',
  options: {
    ...connectionOptions,
    context: { type: 'string', value: '<base64>', help: 'Causal context from a get' },
    w: { type: 'string', value: '<level>', help: 'Write consistency' },
    strict: { type: 'boolean', help: 'Strict quorum (home replicas only)' },
  },
};
export const incrSpec: CommandSpec = {
  name: 'incr',
  args: '<key> [by]',
  summary: 'Add to a counter (default 1; negative to subtract) and print its new value. Concurrent increments on different nodes all count.',
  options: { ...connectionOptions, w: { type: 'string', value: '<level>', help: 'Write consistency' } },
};

function clientFrom(parsed: Parsed): RingkvHttpClient {
  const url = stringOption(parsed, 'url');
  const host = stringOption(parsed, 'host') ?? '127.0.0.1';
  const port = intOption(parsed, 'port', 1, 65535) ?? 8379;
  const token = stringOption(parsed, 'token') ?? process.env['RINGKV_HTTP_TOKEN'];
  const timeoutMs = intOption(parsed, 'timeout', 1, 3_600_000);
  const baseUrl = url ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new RingkvHttpClient({ baseUrl, ...(token ? { token } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')}\n`;
}

function positionals(parsed: Parsed, min: number, max: number, usage: string): string[] {
  if (parsed.positionals.length < min || parsed.positionals.length > max) throw new UsageError(`Expected ${usage}, got ${parsed.positionals.length} argument(s)`);
  return parsed.positionals;
}

export async function runStatus(parsed: Parsed): Promise<number> {
  positionals(parsed, 0, 0, 'no arguments');
  const cluster = await clientFrom(parsed).cluster();
  if (boolOption(parsed, 'json')) {
    process.stdout.write(`${JSON.stringify(cluster, null, 2)}\n`);
    return exitOk;
  }
  const rows = [['NODE', 'LIVENESS', 'STATUS', 'DC/RACK', 'RESP', 'HTTP', 'CLUSTER', 'PARTITIONS', 'KEYS']];
  for (const n of cluster.nodes) {
    rows.push([
      n.id === cluster.self ? `${n.id}*` : n.id,
      n.liveness,
      n.status,
      `${n.dc}/${n.rack}`,
      n.respAddress ?? '-',
      n.httpAddress ?? '-',
      n.address === '' ? '-' : n.address,
      String(n.partitions),
      n.keys === null ? '?' : String(n.keys),
    ]);
  }
  const up = cluster.nodes.filter((n) => n.liveness === 'up').length;
  process.stdout.write(`${table(rows)}${up} of ${cluster.nodes.length} nodes up (* = the node answering)\n`);
  return exitOk;
}

export async function runRing(parsed: Parsed): Promise<number> {
  positionals(parsed, 0, 0, 'no arguments');
  const ring = await clientFrom(parsed).ring();
  if (boolOption(parsed, 'json')) {
    process.stdout.write(`${JSON.stringify(ring, null, 2)}\n`);
    return exitOk;
  }
  let out = `strategy ${ring.strategy}, version ${ring.version}, ${ring.partitionCount} partitions, N = ${ring.replicationFactor}, ${ring.ranges.length} ranges\n\n`;
  const rows = [['NODE', 'PRIMARY PARTITIONS', 'SHARE']];
  for (const [node, count] of Object.entries(ring.partitionsByNode).sort()) rows.push([node, String(count), `${((100 * count) / ring.partitionCount).toFixed(1)}%`]);
  out += table(rows);
  if (boolOption(parsed, 'ranges')) {
    out += '\n';
    out += table([['START', 'END', 'REPLICAS'], ...ring.ranges.map((r) => [String(r.start), String(r.end), r.replicas.join(',')])]);
  }
  process.stdout.write(out);
  return exitOk;
}

export async function runGet(parsed: Parsed): Promise<number> {
  const [key] = positionals(parsed, 1, 1, '<key>') as [string];
  const r = stringOption(parsed, 'r');
  const result = await clientFrom(parsed).get(key, { ...(r ? { r } : {}), ...(boolOption(parsed, 'strict') ? { strict: true } : {}) });
  if (result === undefined) {
    process.stderr.write(`(not found) ${key}\n`);
    return exitNotFound;
  }
  if (boolOption(parsed, 'json')) {
    process.stdout.write(
      `${JSON.stringify({
        context: result.context,
        siblings: result.siblings.map((s) => ({ ...s, value: s.value === undefined ? undefined : Buffer.from(s.value).toString('base64'), count: s.count?.toString() })),
      }, null, 2)}\n`,
    );
    return exitOk;
  }
  const live = result.siblings.filter((s) => s.kind !== 'tombstone');
  const render = (s: (typeof live)[number]): Buffer => (s.kind === 'counter' ? Buffer.from(String(s.count)) : Buffer.from(s.value ?? new Uint8Array()));
  if (result.siblings.length === 1 && live[0] !== undefined) {
    process.stdout.write(render(live[0]));
    if (process.stdout.isTTY) process.stdout.write('\n');
    return exitOk;
  }
  process.stdout.write(`${result.siblings.length} siblings; write with --context ${result.context} to resolve them\n`);
  result.siblings.forEach((s, i) => {
    process.stdout.write(`[${i + 1}] ${s.kind === 'tombstone' ? '(deleted)' : render(s).toString('utf8')}  (writer ${s.writer})\n`);
  });
  return exitOk;
}

export async function runPut(parsed: Parsed): Promise<number> {
  const args = positionals(parsed, 1, 2, '<key> [value]');
  const file = stringOption(parsed, 'file');
  let value: Uint8Array;
  if (file !== undefined) {
    if (args.length > 1) throw new UsageError('Give the value either as an argument or with --file, not both');
    try {
      value = readFileSync(file);
    } catch (error) {
      throw new UsageError(`Cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  } else if (args[1] === undefined) {
    throw new UsageError('Missing the value: ringkv put <key> <value>, --file <path>, or "-" for standard input');
  } else if (args[1] === '-') {
    value = readFileSync(0);
  } else {
    value = Buffer.from(args[1], 'utf8');
  }
  const ttlSeconds = intOption(parsed, 'ttl', 1, 315_360_000);
  const context = stringOption(parsed, 'context');
  const w = stringOption(parsed, 'w');
  const newContext = await clientFrom(parsed).put(args[0] as string, value, {
    ...(ttlSeconds ? { ttlSeconds } : {}),
    ...(context ? { context } : {}),
    ...(w ? { w } : {}),
    ...(boolOption(parsed, 'strict') ? { strict: true } : {}),
  });
  process.stdout.write(boolOption(parsed, 'json') ? `${JSON.stringify({ ok: true, context: newContext })}\n` : `OK (context ${newContext})\n`);
  return exitOk;
}

export async function runDel(parsed: Parsed): Promise<number> {
  const [key] = positionals(parsed, 1, 1, '<key>') as [string];
  const context = stringOption(parsed, 'context');
  const w = stringOption(parsed, 'w');
  await clientFrom(parsed).del(key, { ...(context ? { context } : {}), ...(w ? { w } : {}), ...(boolOption(parsed, 'strict') ? { strict: true } : {}) });
  process.stdout.write(boolOption(parsed, 'json') ? `${JSON.stringify({ ok: true })}\n` : 'OK\n');
  return exitOk;
}

export async function runIncr(parsed: Parsed): Promise<number> {
  const args = positionals(parsed, 1, 2, '<key> [by]');
  const byText = args[1] ?? '1';
  if (!/^-?\d{1,19}$/.test(byText)) throw new UsageError(`The increment must be a whole number, got "${byText}"`);
  const w = stringOption(parsed, 'w');
  const value = await clientFrom(parsed).incr(args[0] as string, BigInt(byText), w ? { w } : {});
  process.stdout.write(boolOption(parsed, 'json') ? `${JSON.stringify({ value: value.toString() })}\n` : `${value}\n`);
  return exitOk;
}
