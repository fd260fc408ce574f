/** src/transport: the inter-node TCP transport. Other subsystems import only this file. */
export { TcpTransport, minSecretBytes, type TcpTransportOptions } from './tcp-transport.ts';
export { defaultTransportLimits, protocolVersion, type TransportLimits } from './constants.ts';
export type { TransportStats } from './stats.ts';
export { parseAddress, formatAddress, type HostPort } from './address.ts';
