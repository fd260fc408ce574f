/**
 * The one place where ringkv's typed errors become HTTP statuses and JSON
 * bodies: `{ "error": { "code": "RINGKV_…", "message": "…", … } }`.
 * Codes are stable (docs/protocol/http.md); messages are for humans.
 */
import type { ErrorCode } from '../../core/index.ts';
import { RateLimitedError, RingkvError, UnavailableError } from '../../core/index.ts';

/** The core codes plus the few that only HTTP has. */
export type HttpErrorCode = ErrorCode | 'RINGKV_PAYLOAD_TOO_LARGE' | 'RINGKV_METHOD_NOT_ALLOWED' | 'RINGKV_INTERNAL';

export interface HttpErrorBody {
  error: {
    code: HttpErrorCode;
    message: string;
    answered?: number;
    required?: number;
    retryAfterMs?: number;
  };
}

/** An error raised by the HTTP layer itself, already carrying its status. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: HttpErrorCode;
  readonly headers: Record<string, string>;

  constructor(status: number, code: HttpErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const statusByCode: Record<ErrorCode, number> = {
  RINGKV_NOT_FOUND: 404,
  RINGKV_CORRUPTION: 500,
  RINGKV_IO: 500,
  RINGKV_INVALID_ARGUMENT: 400,
  RINGKV_UNAVAILABLE: 503,
  RINGKV_TIMEOUT: 504,
  RINGKV_OVERLOADED: 503,
  RINGKV_RATE_LIMITED: 429,
  RINGKV_CLOSED: 503,
  RINGKV_CONFLICT: 409,
  RINGKV_UNAUTHORIZED: 401,
  RINGKV_PROTOCOL: 400,
};

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: HttpErrorBody;
}

export function errorReply(error: unknown): ErrorReply {
  if (error instanceof HttpError) {
    return { status: error.status, headers: error.headers, body: { error: { code: error.code, message: error.message } } };
  }
  if (error instanceof RingkvError) {
    const body: HttpErrorBody = { error: { code: error.code, message: error.message } };
    const headers: Record<string, string> = {};
    if (error instanceof UnavailableError) {
      body.error.answered = error.answered;
      body.error.required = error.required;
    }
    if (error instanceof RateLimitedError) {
      body.error.retryAfterMs = error.retryAfterMs;
      headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
    }
    if (error.code === 'RINGKV_OVERLOADED' || error.code === 'RINGKV_CLOSED') headers['retry-after'] = '1';
    if (error.code === 'RINGKV_UNAUTHORIZED') headers['www-authenticate'] = 'Bearer realm="ringkv"';
    return { status: statusByCode[error.code], headers, body };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'RINGKV_INTERNAL', message: `Internal error: ${error instanceof Error ? error.message : String(error)}` } },
  };
}
