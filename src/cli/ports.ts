/** Finds listening conflicts before starting anything, so the error names the port and its purpose. */
import * as net from 'node:net';

export interface PortUse {
  port: number;
  what: string;
}

/** True when `port` on `host` can be bound right now. */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first of `ports` that is taken, or undefined when all are free. */
export async function findBusyPort(host: string, ports: readonly PortUse[]): Promise<PortUse | undefined> {
  for (const use of ports) {
    if (!(await isPortFree(host, use.port))) return use;
  }
  return undefined;
}
