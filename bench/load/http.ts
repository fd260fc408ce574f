/** A minimal HTTP/1.1 client over node:http with keep-alive, cheap enough that the generator is not the bottleneck. */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { requestTimeoutMs } from './driver.ts';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One agent per endpoint, keep-alive, so each closed-loop client reuses its socket. */
export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
}

export function httpRequest(
  agent: Agent,
  host: string,
  port: number,
  method: string,
  path: string,
  headers: Record<string, string | number>,
  body?: Buffer | string,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host, port, method, path, headers, timeout: requestTimeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`${method} ${path} on ${host}:${port} took over ${requestTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** An error carrying the response, so the generator can report what the target said. */
export function statusError(target: string, what: string, res: HttpResponse): Error {
  const text = res.body.toString('utf8').slice(0, 300);
  return new Error(`${target} ${what}: HTTP ${res.status} ${text}`);
}
