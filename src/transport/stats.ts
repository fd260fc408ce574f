/** Counters a node exports as metrics; all only ever grow. */
export interface TransportStats {
  messagesSent: number;
  messagesReceived: number;
  /** One-way messages not sent: peer unreachable, queue full, too large or unencodable. */
  messagesDropped: number;
  requestsSent: number;
  requestsReceived: number;
  /** Requests rejected because the per-peer queue or pending limit was reached. */
  requestsOverloaded: number;
  requestsTimedOut: number;
  /** Requests rejected because the peer could not be reached or the connection was lost. */
  requestsUnavailable: number;
  connectionsOpened: number;
  connectionsAccepted: number;
  /** Connections closed because the peer broke the protocol (bad frame, oversized frame). */
  protocolErrors: number;
  /** Inbound handshakes refused (wrong secret, wrong cluster, wrong version). */
  handshakesRejected: number;
}

export function emptyStats(): TransportStats {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    requestsSent: 0,
    requestsReceived: 0,
    requestsOverloaded: 0,
    requestsTimedOut: 0,
    requestsUnavailable: 0,
    connectionsOpened: 0,
    connectionsAccepted: 0,
    protocolErrors: 0,
    handshakesRejected: 0,
  };
}
