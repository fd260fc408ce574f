/** Turns "address in use" and friends into messages that say which listener, which port and what to do. */
import { InvalidArgumentError, IoError, isRingkvError } from '../core/index.ts';

export async function listenOrExplain<T>(what: string, flag: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    // A typed error from a lower layer keeps its message unless an OS listen error is behind it.
    const os = isRingkvError(error) ? (error.cause as NodeJS.ErrnoException | undefined) : (error as NodeJS.ErrnoException);
    const code = os?.code;
    if (isRingkvError(error) && !['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND'].includes(code ?? '')) throw error;
    if (code === 'EADDRINUSE') {
      throw new InvalidArgumentError(`Cannot listen for ${what} on ${host}:${port}: the port is already in use (another ringkv node or Redis?). Choose another with ${flag}`, { cause: error });
    }
    if (code === 'EACCES') {
      throw new InvalidArgumentError(`Cannot listen for ${what} on ${host}:${port}: permission denied (ports below 1024 need privileges). Choose another with ${flag}`, { cause: error });
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new InvalidArgumentError(`Cannot listen for ${what} on ${host}:${port}: this machine has no such address. Check --host`, { cause: error });
    }
    throw new IoError(`Cannot listen for ${what} on ${host}:${port}: ${code ?? String(error)}`, { cause: error });
  }
}
