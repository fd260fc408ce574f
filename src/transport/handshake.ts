/**
 * Mutual challenge-response authentication with a shared cluster secret
 * (docs/protocol/wire.md §4). Each side proves it knows the secret by an
 * HMAC over both sides' fresh nonces, so the secret never crosses the wire
 * and a recorded handshake cannot be replayed.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../core/index.ts';
import { handshakeNonceBytes, protocolVersion } from './constants.ts';

export const helloLabel = 'ringkv hello';
export const welcomeLabel = 'ringkv welcome';

/** HMAC-SHA256 over the label and fields, each prefixed by its length (u32 BE) so fields cannot run together. */
export function handshakeProof(secret: Uint8Array, label: string, fields: ReadonlyArray<string | Uint8Array>): Buffer {
  const hmac = createHmac('sha256', secret);
  for (const field of [label, ...fields]) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(bytes.length, 0);
    hmac.update(length);
    hmac.update(bytes);
  }
  return hmac.digest();
}

export function proofMatches(expected: Uint8Array, got: unknown): boolean {
  return got instanceof Uint8Array && got.length === expected.length && timingSafeEqual(got, expected);
}

export function newNonce(): Buffer {
  // Nonces come from the OS, not the injected Random: a seeded, replayable
  // stream would make the challenge predictable to an attacker.
  return randomBytes(handshakeNonceBytes);
}

export interface ChallengeBody {
  readonly nonce: Uint8Array;
}

export interface HelloBody {
  readonly version: number;
  readonly nodeId: string;
  readonly cluster: string;
  readonly nonce: Uint8Array;
  readonly proof: Uint8Array;
}

export interface WelcomeBody {
  readonly nodeId: string;
  readonly proof: Uint8Array;
}

function field<T>(value: unknown, name: string, check: (v: unknown) => v is T, frame: string): T {
  if (!check(value)) throw new ProtocolError(`Handshake ${frame} frame has no valid "${name}" field`);
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number';
const isNonce = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.length === handshakeNonceBytes;
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseChallenge(value: unknown): ChallengeBody {
  const map = field(value, 'body', isMap, 'challenge');
  return { nonce: field(map.nonce, 'nonce', isNonce, 'challenge') };
}

export function parseHello(value: unknown): HelloBody {
  const map = field(value, 'body', isMap, 'hello');
  return {
    version: field(map.version, 'version', isNumber, 'hello'),
    nodeId: field(map.nodeId, 'nodeId', isString, 'hello'),
    cluster: field(map.cluster, 'cluster', isString, 'hello'),
    nonce: field(map.nonce, 'nonce', isNonce, 'hello'),
    proof: field(map.proof, 'proof', isBytes, 'hello'),
  };
}

export function parseWelcome(value: unknown): WelcomeBody {
  const map = field(value, 'body', isMap, 'welcome');
  return {
    nodeId: field(map.nodeId, 'nodeId', isString, 'welcome'),
    proof: field(map.proof, 'proof', isBytes, 'welcome'),
  };
}

export function helloProof(secret: Uint8Array, cluster: string, clientId: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return handshakeProof(secret, helloLabel, [String(protocolVersion), cluster, clientId, serverNonce, clientNonce]);
}

export function welcomeProof(secret: Uint8Array, cluster: string, serverId: string, clientId: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Buffer {
  return handshakeProof(secret, welcomeLabel, [String(protocolVersion), cluster, serverId, clientId, clientNonce, serverNonce]);
}
