/**
 * ringkv over RESP: one connection per client, `GET` and `SET`. Each
 * connection first sets its consistency with `RINGKV.CONSISTENCY R n W n`
 * and reads it back, so R/W = 2 is checked, not assumed
 * (docs/protocol/resp.md). ringkv's `SET` reads the key and writes with that
 * read's context, so an update is a quorum read plus a quorum write on the
 * server side: no siblings pile up.
 */
import { Endpoints, isConnectionRefused, type Driver, type Endpoint } from './driver.ts';
import { RespConnection, RespError, type RespReply } from './resp-client.ts';
import { keyName } from './workload.ts';

export interface RingkvRespOptions {
  readQuorum: number;
  writeQuorum: number;
}

/** RESP2 renders the CONSISTENCY map as a flat [field, value, …] array. */
function field(reply: RespReply, name: string): string | undefined {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const k = reply[i];
    const v = reply[i + 1];
    if (k !== undefined && String(k) === name) return v === undefined || v === null ? undefined : String(v);
  }
  return undefined;
}

function render(reply: RespReply): string {
  if (Array.isArray(reply)) return `[${reply.map(render).join(', ')}]`;
  if (reply instanceof RespError) return `-${reply.message}`;
  return Buffer.isBuffer(reply) ? JSON.stringify(reply.toString('utf8')) : String(reply);
}

export class RingkvRespDriver implements Driver {
  readonly target = 'ringkv-resp';
  private readonly endpoints: Endpoints;
  private readonly connections = new Map<number, Promise<RespConnection>>();

  constructor(
    endpoints: readonly Endpoint[],
    private readonly options: RingkvRespOptions,
  ) {
    this.endpoints = new Endpoints(endpoints);
  }

  async read(client: number, record: number): Promise<void> {
    const reply = await this.send(client, ['GET', keyName(record)]);
    if (reply instanceof RespError) throw new Error(`${this.target} read: ${reply.message}`);
  }

  async update(client: number, record: number, value: Buffer): Promise<void> {
    const reply = await this.send(client, ['SET', keyName(record), value]);
    if (reply !== 'OK') throw new Error(`${this.target} update: ${reply instanceof RespError ? reply.message : String(reply)}`);
  }

  async close(): Promise<void> {
    for (const pending of this.connections.values()) {
      const connection = await pending.catch(() => undefined);
      connection?.close();
    }
    this.connections.clear();
  }

  private async send(client: number, args: Array<string | Buffer>): Promise<RespReply> {
    const connection = await this.connection(client);
    return connection.command(args);
  }

  /** The client's live connection, opened (and consistency set) on first use or after its node died. */
  private async connection(client: number): Promise<RespConnection> {
    const existing = this.connections.get(client);
    if (existing !== undefined) {
      const connection = await existing.catch(() => undefined);
      if (connection !== undefined && !connection.closed) return connection;
      this.connections.delete(client);
    }
    const opening = this.open(client);
    this.connections.set(client, opening);
    return opening;
  }

  private async open(client: number): Promise<RespConnection> {
    const index = this.endpoints.indexFor(client);
    const { host, port } = this.endpoints.get(index);
    let connection: RespConnection;
    try {
      connection = await RespConnection.open(host, port);
    } catch (error) {
      if (isConnectionRefused(error)) this.endpoints.markDown(index);
      throw error;
    }
    const { readQuorum: r, writeQuorum: w } = this.options;
    const set = await connection.command(['RINGKV.CONSISTENCY', 'R', String(r), 'W', String(w)]);
    const now = await connection.command(['RINGKV.CONSISTENCY']);
    if (set !== 'OK' || field(now, 'r') !== String(r) || field(now, 'w') !== String(w)) {
      connection.close();
      throw new Error(`${this.target}: RINGKV.CONSISTENCY R ${r} W ${w} did not apply on ${host}:${port}: answered ${render(set)}, then ${render(now)}`);
    }
    return connection;
  }
}
