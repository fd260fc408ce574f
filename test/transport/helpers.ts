/** Shared set-up for the TCP transport tests: real sockets on 127.0.0.1, port 0. */
import { MemoryLogger, RealClock, SeededRandom, type Logger } from '../../src/core/index.ts';
import { TcpTransport, type TransportLimits } from '../../src/transport/index.ts';

export const testSecret = 'a test cluster secret of 32 byte';
export const testCluster = 'test-cluster';

export interface StartOptions {
  readonly nodeId: string;
  readonly secret?: string;
  readonly clusterName?: string;
  readonly port?: number;
  readonly limits?: Partial<TransportLimits>;
  readonly log?: Logger;
  readonly seed?: number;
}

export function startTransport(options: StartOptions): Promise<TcpTransport> {
  return TcpTransport.listen({
    nodeId: options.nodeId,
    clusterName: options.clusterName ?? testCluster,
    secret: options.secret ?? testSecret,
    port: options.port ?? 0,
    clock: new RealClock(),
    random: new SeededRandom(options.seed ?? 1),
    log: options.log ?? new MemoryLogger(),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
}

/** Polls `condition` every few milliseconds; bounded by `limitMs`. */
export async function waitUntil(condition: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = performance.now() + limitMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}
