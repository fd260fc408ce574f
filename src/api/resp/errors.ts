/**
 * The one place where ringkv's typed errors become RESP error replies. A
 * handler throws RespError for a reply Redis defines ("ERR syntax error"), or
 * lets a RingkvError through; everything else is an internal error, logged.
 */
import { isRingkvError } from '../../core/index.ts';
import type { Logger } from '../../core/index.ts';

/** An error reply with its full text, code first: "ERR syntax error", "WRONGPASS …". */
export class RespError extends Error {
  constructor(readonly reply: string) {
    super(reply);
    this.name = 'RespError';
  }
}

export const syntaxError = (): RespError => new RespError('ERR syntax error');
export const notIntegerError = (): RespError => new RespError('ERR value is not an integer or out of range');
export const notFloatError = (): RespError => new RespError('ERR value is not a valid float');
export const noAuthError = (): RespError => new RespError('NOAUTH Authentication required.');
export const wrongPassError = (): RespError => new RespError('WRONGPASS invalid username-password pair or user is disabled.');

export function invalidExpireError(command: string): RespError {
  return new RespError(`ERR invalid expire time in '${command}' command`);
}

/** The reply text for anything a command threw. */
export function errorReply(error: unknown, log: Logger, command: string): string {
  if (error instanceof RespError) return error.reply;
  if (isRingkvError(error)) {
    switch (error.code) {
      case 'RINGKV_INVALID_ARGUMENT':
      case 'RINGKV_NOT_FOUND':
      case 'RINGKV_CONFLICT':
      case 'RINGKV_PROTOCOL':
        return `ERR ${error.message}`;
      case 'RINGKV_UNAVAILABLE':
        return `UNAVAILABLE ${error.message}`;
      case 'RINGKV_TIMEOUT':
        return `TIMEOUT ${error.message}`;
      case 'RINGKV_OVERLOADED':
        return `OVERLOADED ${error.message}`;
      case 'RINGKV_RATE_LIMITED':
        return `RATELIMITED ${error.message}`;
      case 'RINGKV_UNAUTHORIZED':
        return `NOPERM ${error.message}`;
      case 'RINGKV_CLOSED':
        return `ERR ${error.message}`;
      case 'RINGKV_CORRUPTION':
      case 'RINGKV_IO':
        log.error('storage error while serving a command', { command, error });
        return `ERR ${error.message}`;
    }
  }
  log.error('internal error while serving a command', { command, error });
  const message = error instanceof Error ? error.message : String(error);
  return `ERR internal error: ${message}`;
}
