/**
 * Wire constants and default limits of the inter-node protocol. The byte
 * layout they describe is written down in docs/protocol/wire.md (version 2);
 * change the two together.
 */

/** The protocol version in every frame header and in the handshake. */
export const protocolVersion = 2;

/** version u8, type u8, request id u32 BE, body length u32 BE (wire.md §2). */
export const frameHeaderBytes = 10;

/** Frame types (wire.md §3). Types with the high bit set may be ignored by a receiver that does not know them. */
export const FrameType = {
  challenge: 0x01,
  hello: 0x02,
  welcome: 0x03,
  message: 0x10,
  request: 0x11,
  reply: 0x12,
  error: 0x13,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Unknown frame types at or above this value are skipped; below it they close the connection. */
export const firstIgnorableFrameType = 0x80;

/** Bytes of the random nonce each side contributes to the handshake. */
export const handshakeNonceBytes = 32;

/** Limits, each overridable per transport (TcpTransportOptions.limits). */
export interface TransportLimits {
  /** Largest frame body accepted or sent once the handshake is done. */
  readonly maxFrameBytes: number;
  /** Largest frame body accepted before the peer has proved it knows the secret. */
  readonly maxHandshakeFrameBytes: number;
  /** Bytes queued for one peer (not yet taken by the kernel) before send drops and request rejects. */
  readonly maxQueuedBytesPerPeer: number;
  /** Requests to one peer awaiting a reply before request rejects with OverloadedError. */
  readonly maxPendingRequestsPerPeer: number;
  /** Requests from one inbound connection being handled at once before we stop reading from it. */
  readonly maxInboundInFlightPerConnection: number;
  /** Inbound connections (authenticated or not) held at once; more are refused at accept. */
  readonly maxInboundConnections: number;
  /** Time to finish the handshake, both sides. */
  readonly handshakeTimeoutMs: number;
  /** Time for a TCP connect. */
  readonly connectTimeoutMs: number;
  /** First reconnect delay after a failure; doubles per failure up to maxBackoffMs. */
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
}

export const defaultTransportLimits: TransportLimits = {
  // Values are capped at 512 KiB; partition streaming batches stay well below this.
  maxFrameBytes: 16 * 1024 * 1024,
  maxHandshakeFrameBytes: 1024,
  maxQueuedBytesPerPeer: 64 * 1024 * 1024,
  maxPendingRequestsPerPeer: 8192,
  maxInboundInFlightPerConnection: 1024,
  maxInboundConnections: 1024,
  handshakeTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  baseBackoffMs: 50,
  maxBackoffMs: 5_000,
};
