/**
 * ringkv over its HTTP API (docs/protocol/http.md): GET/PUT /v1/kv/{key} with
 * r=2 / w=2 on every request.
 *
 * An update sends the causal context this generator last saw for the key
 * (from a read or from the previous write's answer), as a client that wants
 * "overwrite" semantics must: a blind PUT would keep every earlier version as
 * a sibling (docs/consistency.md) and, after 64 of them, be refused. Two
 * clients updating the same key with the same context still create siblings;
 * the next read returns them (300) with a context that resolves them. This
 * keeps one round trip per update, like etcd's put.
 */
import { Endpoints, isConnectionRefused, type Driver, type Endpoint } from './driver.ts';
import { HttpClients, statusError, type HttpResponse } from './http.ts';
import { keyName } from './workload.ts';

const contextHeader = 'x-ringkv-context';

export interface RingkvHttpOptions {
  readQuorum: number;
  writeQuorum: number;
}

export class RingkvHttpDriver implements Driver {
  readonly target = 'ringkv-http';
  private readonly endpoints: Endpoints;
  private readonly clients: HttpClients;
  /** Record → the latest causal context seen for it. */
  private readonly contexts = new Map<number, string>();

  constructor(
    endpoints: readonly Endpoint[],
    private readonly options: RingkvHttpOptions,
  ) {
    this.endpoints = new Endpoints(endpoints);
    this.clients = new HttpClients(endpoints);
  }

  async read(client: number, record: number): Promise<void> {
    const res = await this.send(client, 'GET', `/v1/kv/${keyName(record)}?r=${this.options.readQuorum}`, '');
    // 300: concurrent versions, a successful read; 404: the key holds only a tombstone or nothing.
    if (res.status !== 200 && res.status !== 300 && res.status !== 404) throw statusError(this.target, 'read', res);
    this.remember(record, res.headers[contextHeader]);
  }

  async update(client: number, record: number, value: Buffer): Promise<void> {
    const context = this.contexts.get(record);
    const headers = context === undefined ? 'content-type: application/octet-stream\r\n' : `content-type: application/octet-stream\r\n${contextHeader}: ${context}\r\n`;
    const res = await this.send(client, 'PUT', `/v1/kv/${keyName(record)}?w=${this.options.writeQuorum}`, headers, value);
    if (res.status !== 204) throw statusError(this.target, 'update', res);
    this.remember(record, res.headers[contextHeader]);
  }

  async close(): Promise<void> {
    this.clients.close();
  }

  private remember(record: number, context: string | undefined): void {
    if (typeof context === 'string' && context !== '') this.contexts.set(record, context);
  }

  private async send(client: number, method: string, path: string, headers: string, body?: Buffer): Promise<HttpResponse> {
    const index = this.endpoints.indexFor(client);
    try {
      return await this.clients.request(client, index, method, path, headers, body);
    } catch (error) {
      if (isConnectionRefused(error)) this.endpoints.markDown(index);
      throw error;
    }
  }
}
