/** "host:port" addresses, with IPv6 hosts in brackets ("[::1]:7000"). */
import { InvalidArgumentError } from '../core/index.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parseAddress(address: string): HostPort {
  const colon = address.lastIndexOf(':');
  const rawHost = colon > 0 ? address.slice(0, colon) : '';
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const portText = address.slice(colon + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (host === '' || !(port >= 1 && port <= 65535)) {
    throw new InvalidArgumentError(`Cannot use "${address}" as a node address: expected host:port with a port from 1 to 65535`);
  }
  return { host, port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
