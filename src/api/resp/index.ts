/** src/api/resp: the RESP (Redis protocol) front end. Other layers import only this file. */
export { RespServer, defaultConnectionLimits, type RespServerOptions, type RespServerStats } from './server.ts';
export type { ConnectionLimits } from './client.ts';
export { RespParser, defaultParserLimits, splitArgs, type ParserLimits } from './parser.ts';
export { ReplyWriter, type ProtocolVersion } from './reply.ts';
export { CommandTable } from './commands/table.ts';
export type { AuthConfig, CommandSpec, CommandFlag } from './commands/types.ts';
export { keySlot, redisNodeId, slotCount } from './commands/cluster.ts';
export { globMatch } from './glob.ts';
