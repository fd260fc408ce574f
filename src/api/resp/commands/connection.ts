/** Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, CLIENT. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { RespError, noAuthError, syntaxError, wrongPassError } from '../errors.ts';
import { command, sub } from './spec.ts';
import type { ClientState, CommandContext, CommandSpec, Handler, ServerState } from './types.ts';
import { intArg } from './values.ts';

/** The Redis version ringkv's RESP dialect follows (clients gate features on it). */
export const redisCompatVersion = '7.0.0';

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The `requirepass` setting (RespServer seeds it from `auth.password`), so CONFIG SET changes it. */
function defaultPassword(server: ServerState): string {
  return server.settings.get('requirepass') ?? '';
}

/** True while new connections must authenticate: a default password or named users exist. */
export function authRequired(server: ServerState): boolean {
  return defaultPassword(server) !== '' || Object.keys(server.auth.users ?? {}).length > 0;
}

/**
 * Checks `AUTH [user] pass`. The default user has the `requirepass`
 * password; with named users and no requirepass the default user is
 * disabled, so configuring users alone turns authentication on.
 */
function checkCredentials(server: ServerState, user: string | undefined, pass: string): string | undefined {
  const users = server.auth.users ?? {};
  if (user === undefined || user === 'default') {
    const password = defaultPassword(server);
    if (password !== '') return sameSecret(password, pass) ? 'default' : undefined;
    const own = Object.hasOwn(users, 'default') ? users['default'] : undefined;
    return own !== undefined && sameSecret(own, pass) ? 'default' : undefined;
  }
  const expected = Object.hasOwn(users, user) ? users[user] : undefined;
  return expected !== undefined && sameSecret(expected, pass) ? user : undefined;
}

const ping: Handler = (ctx, args) => {
  if (args.length > 2) throw new RespError(`ERR wrong number of arguments for 'ping' command`);
  if (args.length === 2) ctx.out.bulk(args[1] as Buffer);
  else ctx.out.simple('PONG');
};

const echo: Handler = (ctx, args) => {
  ctx.out.bulk(args[1] as Buffer);
};

const auth: Handler = (ctx, args) => {
  if (args.length > 3) throw syntaxError();
  const user = args.length === 3 ? (args[1] as Buffer).toString() : undefined;
  const pass = (args[args.length - 1] as Buffer).toString();
  if (user === undefined && !authRequired(ctx.server)) {
    throw new RespError('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  }
  authenticate(ctx.client, ctx.server, user, pass);
  ctx.out.ok();
};

function authenticate(client: ClientState, server: ServerState, user: string | undefined, pass: string): void {
  const who = checkCredentials(server, user, pass);
  if (who === undefined) throw wrongPassError();
  client.authenticated = true;
  client.user = who;
}

/** Redis accepts client names made of printable ASCII without spaces. */
function validName(name: Buffer): boolean {
  for (const c of name) if (c < 33 || c > 126) return false;
  return true;
}

const hello: Handler = (ctx, args) => {
  let protocol = ctx.client.out.protocol;
  if (args.length >= 2) {
    const raw = args[1] as Buffer;
    const version = /^\d{1,18}$/.test(raw.toString('latin1')) ? Number(raw.toString('latin1')) : Number.NaN;
    if (Number.isNaN(version)) throw new RespError('ERR Protocol version is not an integer or out of range');
    if (version < 2 || version > 3) throw new RespError('NOPROTO unsupported protocol version');
    protocol = version as 2 | 3;
  }
  let name: Buffer | undefined;
  let credentials: { user: string; pass: string } | undefined;
  for (let j = 2; j < args.length; j++) {
    const opt = (args[j] as Buffer).toString().toLowerCase();
    const left = args.length - j - 1;
    if (opt === 'auth' && left >= 2) {
      credentials = { user: (args[j + 1] as Buffer).toString(), pass: (args[j + 2] as Buffer).toString() };
      j += 2;
    } else if (opt === 'setname' && left >= 1) {
      name = args[j + 1] as Buffer;
      j += 1;
    } else throw new RespError(`ERR Syntax error in HELLO option '${(args[j] as Buffer).toString()}'`);
  }
  if (credentials !== undefined) authenticate(ctx.client, ctx.server, credentials.user, credentials.pass);
  if (!ctx.client.authenticated) {
    throw new RespError('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time');
  }
  if (name !== undefined) {
    if (!validName(name)) throw new RespError('ERR Client names cannot contain spaces, newlines or special characters.');
    ctx.client.name = name.toString();
  }
  ctx.client.out.protocol = protocol;
  const out = ctx.out;
  out.map(7);
  out.bulk('server');
  out.bulk('redis');
  out.bulk('version');
  out.bulk(redisCompatVersion);
  out.bulk('proto');
  out.integer(protocol);
  out.bulk('id');
  out.integer(ctx.client.id);
  out.bulk('mode');
  out.bulk('standalone');
  out.bulk('role');
  out.bulk('master');
  out.bulk('modules');
  out.array(0);
};

const select: Handler = (ctx, args) => {
  const index = intArg(args[1]);
  if (index !== 0n) throw new RespError('ERR DB index is out of range');
  ctx.out.ok();
};

const quit: Handler = (ctx) => {
  ctx.client.closeAfterReply = true;
  ctx.out.ok();
};

/** One line of CLIENT LIST / CLIENT INFO, in Redis's field order (the fields ringkv has). */
export function clientLine(client: ClientState, nowMs: number): string {
  const age = Math.floor((nowMs - client.createdMs) / 1000);
  const idle = Math.floor((nowMs - client.lastCommandMs) / 1000);
  return (
    `id=${client.id} addr=${client.remoteAddress} laddr=${client.localAddress} fd=-1 name=${client.name} age=${age} idle=${idle} ` +
    `flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=${client.out.pendingBytes} ` +
    `tot-mem=0 events=r cmd=${client.lastCommand} user=${client.user} redir=-1 resp=${client.out.protocol} ` +
    `lib-name=${client.libName} lib-ver=${client.libVersion}\n`
  );
}

const clientId: Handler = (ctx) => ctx.out.integer(ctx.client.id);
const clientGetname: Handler = (ctx) => {
  if (ctx.client.name === '') ctx.out.nullBulk();
  else ctx.out.bulk(ctx.client.name);
};
const clientSetname: Handler = (ctx, args) => {
  const name = args[2] as Buffer;
  if (!validName(name)) throw new RespError('ERR Client names cannot contain spaces, newlines or special characters.');
  ctx.client.name = name.toString();
  ctx.out.ok();
};
const clientInfo: Handler = (ctx) => ctx.out.verbatim(clientLine(ctx.client, ctx.server.clock.nowMs()));
const clientList: Handler = (ctx) => {
  const now = ctx.server.clock.nowMs();
  ctx.out.verbatim([...ctx.server.clients()].map((c) => clientLine(c, now)).join(''));
};
const clientSetinfo: Handler = (ctx, args) => {
  const attr = (args[2] as Buffer).toString().toLowerCase();
  const value = args[3] as Buffer;
  if (attr !== 'lib-name' && attr !== 'lib-ver') throw new RespError(`ERR Unrecognized option '${(args[2] as Buffer).toString()}'`);
  if (!validName(value)) throw new RespError(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
  if (attr === 'lib-name') ctx.client.libName = value.toString();
  else ctx.client.libVersion = value.toString();
  ctx.out.ok();
};
const clientNoop: Handler = (ctx) => ctx.out.ok();

function helpLines(ctx: CommandContext, lines: string[]): void {
  ctx.out.array(lines.length);
  for (const line of lines) ctx.out.simple(line);
}

const clientHelp: Handler = (ctx) =>
  helpLines(ctx, [
    'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
    'ID', '    Return the ID of the current connection.',
    'INFO', '    Return information about the current client connection.',
    'LIST', '    Return information about client connections.',
    'GETNAME', '    Return the name of the current connection.',
    'SETNAME <connection-name>', '    Assign the name <connection-name> to the current connection.',
    'SETINFO <LIB-NAME|LIB-VER> <value>', '    Set client library name or version.',
    'HELP', '    Print this help.',
  ]);

const c = (name: string, arity: number, flags: CommandSpec['flags'], handler: Handler, summary: string, since = '1.0.0'): CommandSpec =>
  command({ name, arity, flags, group: 'connection', summary, since, aclCategories: ['@connection'], handler });

export const connectionCommands: CommandSpec[] = [
  c('ping', -1, ['fast'], ping, 'Returns the server\'s liveliness response.'),
  c('echo', 2, ['fast'], echo, 'Returns the given string.'),
  c('auth', -2, ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'], auth, 'Authenticates the connection.'),
  c('hello', -1, ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'], hello, 'Handshakes with the Redis server.', '6.0.0'),
  c('select', 2, ['loading', 'stale', 'fast'], select, 'Changes the selected database.'),
  c('quit', -1, ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'], quit, 'Closes the connection.'),
  command({
    name: 'client', arity: -2, flags: [], group: 'connection', summary: 'A container for client connection commands.', since: '2.4.0',
    subcommands: [
      sub('client', 'id', 2, ['noscript', 'loading', 'stale'], clientId, 'Returns the unique client ID of the connection.', 'connection'),
      sub('client', 'getname', 2, ['noscript', 'loading', 'stale'], clientGetname, 'Returns the name of the connection.', 'connection'),
      sub('client', 'setname', 3, ['noscript', 'loading', 'stale'], clientSetname, 'Sets the connection name.', 'connection'),
      sub('client', 'info', 2, ['noscript', 'loading', 'stale'], clientInfo, 'Returns information about the connection.', 'connection'),
      sub('client', 'list', -2, ['admin', 'noscript', 'loading', 'stale'], clientList, 'Lists open connections.', 'connection'),
      sub('client', 'setinfo', 4, ['noscript', 'loading', 'stale'], clientSetinfo, 'Sets information specific to the client or connection.', 'connection'),
      sub('client', 'no-evict', 3, ['admin', 'noscript', 'loading', 'stale'], clientNoop, 'Accepted for compatibility; ringkv never evicts clients.', 'connection'),
      sub('client', 'no-touch', 3, ['noscript', 'loading', 'stale'], clientNoop, 'Accepted for compatibility; ringkv keeps no access times.', 'connection'),
      sub('client', 'help', 2, ['loading', 'stale'], clientHelp, 'Returns helpful text about the different subcommands.', 'connection'),
    ],
  }),
];

export { helpLines, noAuthError };
