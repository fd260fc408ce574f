/**
 * etcd through its gRPC-gateway JSON API: POST {prefix}/kv/range and
 * {prefix}/kv/put with base64 keys and values. Reads are etcd's default,
 * linearizable (a ReadIndex round through the leader), the counterpart of
 * ringkv's quorum read.
 */
import { Endpoints, isConnectionRefused, type Driver, type Endpoint } from './driver.ts';
import { HttpClients, statusError, type HttpResponse } from './http.ts';
import { keyName } from './workload.ts';

export class EtcdDriver implements Driver {
  readonly target = 'etcd';
  private readonly endpoints: Endpoints;
  private readonly clients: HttpClients;
  private readonly keys64: string[];

  /** `prefix` is the gateway's path prefix this etcd version serves (`/v3` or `/v3beta`). */
  constructor(
    endpoints: readonly Endpoint[],
    private readonly prefix: string,
    keys: number,
  ) {
    this.endpoints = new Endpoints(endpoints);
    this.clients = new HttpClients(endpoints);
    this.keys64 = Array.from({ length: keys }, (_, i) => Buffer.from(keyName(i)).toString('base64'));
  }

  async read(client: number, record: number): Promise<void> {
    const res = await this.post(client, '/kv/range', `{"key":"${this.keys64[record] ?? ''}"}`);
    if (res.status !== 200) throw statusError(this.target, 'read', res);
  }

  async update(client: number, record: number, value: Buffer): Promise<void> {
    const res = await this.post(client, '/kv/put', `{"key":"${this.keys64[record] ?? ''}","value":"${value.toString('base64')}"}`);
    if (res.status !== 200) throw statusError(this.target, 'update', res);
  }

  async close(): Promise<void> {
    this.clients.close();
  }

  private async post(client: number, path: string, json: string): Promise<HttpResponse> {
    const index = this.endpoints.indexFor(client);
    try {
      return await this.clients.request(client, index, 'POST', this.prefix + path, 'content-type: application/json\r\n', json);
    } catch (error) {
      if (isConnectionRefused(error)) this.endpoints.markDown(index);
      throw error;
    }
  }
}
