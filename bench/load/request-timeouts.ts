/**
 * Request timeouts for the generator's connections, checked by one sweep a
 * second rather than a socket timeout per request: node:net re-arms a
 * socket's timeout on every read and write, timer work that was ~1.5 % of the
 * generator's CPU (bench/RESULTS.md, cluster, session 12).
 */

export interface Expirable {
  /** Fails the connection if a request has waited past the timeout at `nowMs` (Date.now()). */
  expireIfLate(nowMs: number): void;
}

const watched = new Set<Expirable>();
let sweeper: NodeJS.Timeout | undefined;
const sweepEveryMs = 1000;

function sweep(): void {
  const now = Date.now();
  for (const connection of watched) connection.expireIfLate(now);
}

/** Checks `connection` once a second until `unwatch`. */
export function watch(connection: Expirable): void {
  watched.add(connection);
  if (sweeper === undefined) {
    sweeper = setInterval(sweep, sweepEveryMs);
    sweeper.unref();
  }
}

export function unwatch(connection: Expirable): void {
  watched.delete(connection);
  if (watched.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}
