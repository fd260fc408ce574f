/**
 * What the load generator needs from a target: one read and one update,
 * issued by numbered clients (client i never has two operations in flight).
 * Drivers spread clients over the target's endpoints and fail over when one
 * refuses connections (a killed node), as a client given every node's
 * address would.
 */

export interface Driver {
  readonly target: string;
  /** Reads `record`; resolves on success, including "not found". */
  read(client: number, record: number): Promise<void>;
  /** Overwrites `record` with `value`. */
  update(client: number, record: number, value: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** Per-request bound, so a stuck target ends the phase on time instead of hanging it. */
export const requestTimeoutMs = 10_000;

export interface Endpoint {
  host: string;
  port: number;
}

/** The target's addresses, with the ones seen refusing connections skipped for the rest of the run. */
export class Endpoints {
  private readonly down: boolean[];
  constructor(readonly list: readonly Endpoint[]) {
    if (list.length === 0) throw new Error('A target needs at least one endpoint');
    this.down = list.map(() => false);
  }

  /** Client i's endpoint: i mod n, or the next one up. */
  indexFor(client: number): number {
    const n = this.list.length;
    for (let step = 0; step < n; step++) {
      const i = (client + step) % n;
      if (!this.down[i]) return i;
    }
    return client % n;
  }

  get(index: number): Endpoint {
    return this.list[index] as Endpoint;
  }

  markDown(index: number): void {
    this.down[index] = true;
  }
}

/** Errors that mean nothing listens there any more (as opposed to a slow or failing request). */
export function isConnectionRefused(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ECONNREFUSED';
}
