/**
 * The two halves of the handshake (docs/protocol/wire.md §4) over a
 * Connection: `accept` for the listening side, `dial` for the connecting side.
 * Both resolve with the authenticated peer's node id, or reject and close the
 * connection with a logged reason. `onReady` runs synchronously on success so
 * the caller installs its data-frame handler before any further byte is read.
 */
import {
  ProtocolError,
  TimeoutError,
  UnauthorizedError,
  type Clock,
  type NodeId,
} from '../core/index.ts';
import { errorFromBody, errorToBody, packBody, unpackBody } from './codec.ts';
import { FrameType, protocolVersion } from './constants.ts';
import type { Connection } from './connection.ts';
import {
  helloProof,
  newNonce,
  parseChallenge,
  parseHello,
  parseWelcome,
  proofMatches,
  welcomeProof,
} from './handshake.ts';

export interface HandshakeContext {
  readonly localId: NodeId;
  readonly clusterName: string;
  readonly secret: Uint8Array;
  readonly clock: Clock;
}

/** Runs one handshake phase machine with a deadline; settles once. */
function phase(
  conn: Connection,
  ctx: HandshakeContext,
  timeoutMs: number,
  what: string,
  start: (settle: { resolve: (id: NodeId) => void; reject: (error: Error) => void }) => void,
): Promise<NodeId> {
  return new Promise<NodeId>((resolve, reject) => {
    let done = false;
    const timer = ctx.clock.setTimer(timeoutMs, () => {
      finish(new TimeoutError(`No ${what} from ${conn.remote} within ${timeoutMs} ms`));
      conn.close({ error: new TimeoutError(`handshake not finished within ${timeoutMs} ms`), routine: false });
    });
    const finish = (outcome: NodeId | Error): void => {
      if (done) return;
      done = true;
      timer.cancel();
      if (typeof outcome === 'string') resolve(outcome);
      else reject(outcome);
    };
    conn.onClose((reason) => finish(reason.error));
    try {
      start({ resolve: finish, reject: finish });
    } catch (error) {
      finish(error as Error);
    }
  });
}

/** Listening side: challenge, check the hello, answer with our own proof. */
export function acceptHandshake(conn: Connection, ctx: HandshakeContext, timeoutMs: number, onReady: (peer: NodeId) => void): Promise<NodeId> {
  return phase(conn, ctx, timeoutMs, 'hello', ({ resolve, reject }) => {
    const serverNonce = newNonce();
    const refuse = (error: Error): void => {
      conn.write(FrameType.error, 0, packBody(errorToBody(error)));
      conn.close({ error, routine: false }, true);
      reject(error);
    };
    conn.setFrameHandler((frame) => {
      if (frame.type !== FrameType.hello) throw new ProtocolError(`Expected a hello frame, got frame type ${frame.type}`);
      const hello = parseHello(unpackBody(frame.body));
      if (hello.version !== protocolVersion) {
        refuse(new ProtocolError(`Node ${hello.nodeId} speaks protocol version ${hello.version}; this node speaks version ${protocolVersion}`));
        return;
      }
      if (hello.cluster !== ctx.clusterName) {
        refuse(new UnauthorizedError(`Node ${hello.nodeId} belongs to cluster "${hello.cluster}", but this node belongs to "${ctx.clusterName}"`));
        return;
      }
      const expected = helloProof(ctx.secret, ctx.clusterName, hello.nodeId, serverNonce, hello.nonce);
      if (!proofMatches(expected, hello.proof)) {
        refuse(new UnauthorizedError(`Node ${hello.nodeId} at ${conn.remote} failed authentication: it does not have this cluster's secret`));
        return;
      }
      conn.peerId = hello.nodeId;
      conn.write(FrameType.welcome, 0, packBody({
        nodeId: ctx.localId,
        proof: welcomeProof(ctx.secret, ctx.clusterName, ctx.localId, hello.nodeId, serverNonce, hello.nonce),
      }));
      onReady(hello.nodeId);
      resolve(hello.nodeId);
    });
    conn.write(FrameType.challenge, 0, packBody({ nonce: serverNonce }));
  });
}

/** Connecting side: answer the challenge, then check the listener's proof. */
export function dialHandshake(conn: Connection, ctx: HandshakeContext, timeoutMs: number, onReady: (peer: NodeId) => void): Promise<NodeId> {
  return phase(conn, ctx, timeoutMs, 'handshake', ({ resolve, reject }) => {
    const clientNonce = newNonce();
    let serverNonce: Uint8Array | undefined;
    conn.setFrameHandler((frame) => {
      if (frame.type === FrameType.error) {
        // The listener refused us and says why (wrong cluster, wrong secret, version).
        const error = errorFromBody(unpackBody(frame.body), conn.remote);
        conn.close({ error, routine: false });
        reject(error);
        return;
      }
      if (serverNonce === undefined) {
        if (frame.type !== FrameType.challenge) throw new ProtocolError(`Expected a challenge frame, got frame type ${frame.type}`);
        serverNonce = parseChallenge(unpackBody(frame.body)).nonce;
        conn.write(FrameType.hello, 0, packBody({
          version: protocolVersion,
          nodeId: ctx.localId,
          cluster: ctx.clusterName,
          nonce: clientNonce,
          proof: helloProof(ctx.secret, ctx.clusterName, ctx.localId, serverNonce, clientNonce),
        }));
        return;
      }
      if (frame.type !== FrameType.welcome) throw new ProtocolError(`Expected a welcome frame, got frame type ${frame.type}`);
      const welcome = parseWelcome(unpackBody(frame.body));
      const expected = welcomeProof(ctx.secret, ctx.clusterName, welcome.nodeId, ctx.localId, serverNonce, clientNonce);
      if (!proofMatches(expected, welcome.proof)) {
        const error = new UnauthorizedError(`The node at ${conn.remote} failed authentication: it does not have this cluster's secret`);
        conn.close({ error, routine: false });
        reject(error);
        return;
      }
      conn.peerId = welcome.nodeId;
      onReady(welcome.nodeId);
      resolve(welcome.nodeId);
    });
  });
}
