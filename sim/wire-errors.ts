/**
 * Errors crossing the simulated network. A remote handler's RingkvError is
 * rebuilt on the caller's side as the same class with the same code and
 * fields, as the TCP transport does, so callers can match on `code` and
 * `instanceof` whichever transport they run over.
 */
import { ProtocolError, RingkvError, errorDetails, errorFromCode, isKnownErrorCode, type ErrorDetails } from '../src/core/index.ts';

export interface WireError extends Readonly<ErrorDetails> {
  readonly name: string;
  readonly code: string | null;
  readonly message: string;
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof RingkvError) return { name: error.name, code: error.code, message: error.message, ...errorDetails(error) };
  if (error instanceof Error) return { name: error.name, code: null, message: error.message };
  return { name: 'Error', code: null, message: String(error) };
}

/** Rebuilds the error; a remote failure that was not a RingkvError becomes a ProtocolError naming it. */
export function errorFromWire(wire: WireError): Error {
  if (!isKnownErrorCode(wire.code)) return new ProtocolError(`The remote handler failed with ${wire.name}: ${wire.message}`);
  return errorFromCode(wire.code, wire.message, wire);
}
