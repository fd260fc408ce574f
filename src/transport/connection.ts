/**
 * One TCP connection: frame decoding, coalesced writes, and a close that
 * always says why. It knows nothing of peers or requests; the handshake and
 * the transport install the frame handler for each phase.
 */
import type { Socket } from 'node:net';
import type { Logger, NodeId } from '../core/index.ts';
import { frameHeaderBytes, protocolVersion } from './constants.ts';
import { FrameDecoder, type Frame } from './frame.ts';

/** Size of each write buffer; frames of one turn are packed into it (a larger frame gets its own). */
const outBufferBytes = 64 * 1024;

/**
 * A turn that produces more than this is written in pieces, so one busy turn
 * neither grows the buffer without bound nor holds the first frames back
 * until the last is encoded. (Smaller pieces let the two processes overlap
 * more but cost syscalls; on a loaded 2-core machine no setting between 4 KiB
 * and 64 KiB measured reliably better, so it matches the buffer size.)
 */
const flushThresholdBytes = outBufferBytes;

export type ConnectionRole = 'outbound' | 'inbound';

/** A close reason that is routine (shutdown, idle peer gone) is logged at debug, anything else at warn. */
export interface CloseReason {
  readonly error: Error;
  readonly routine: boolean;
}

export class Connection {
  readonly remote: string;
  /** The authenticated peer, once the handshake has succeeded. */
  peerId: NodeId | undefined;
  /** Requests from this peer being handled now (inbound back-pressure). */
  inFlight = 0;
  private open = true;
  /** Reading stopped for back-pressure (setReading). */
  private paused = false;
  private closeReason: CloseReason | undefined;
  private readonly decoder: FrameDecoder;
  /** Frames of this turn are written straight into one buffer: no per-frame header allocation or concat. */
  private outBuf: Buffer = Buffer.allocUnsafe(0);
  private outBytes = 0;
  /** Bytes the socket still held at the last flush; it only shrinks until the next flush. */
  private socketBacklog = 0;
  private flushQueued = false;
  private onFrame: (frame: Frame) => void = () => {};
  private readonly closeListeners: Array<(reason: CloseReason) => void> = [];
  private readonly flushNow = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(
    readonly socket: Socket,
    readonly role: ConnectionRole,
    private readonly log: Logger,
    maxHandshakeFrameBytes: number,
    remote?: string,
  ) {
    this.remote = remote ?? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.decoder = new FrameDecoder(maxHandshakeFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.recordError(error));
    socket.on('end', () => this.recordError(new Error('the peer closed the connection')));
    socket.on('close', () => this.finish());
    socket.on('drain', () => {
      this.socketBacklog = socket.writableLength;
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Installs the handler for the next phase (handshake, then data). A throw closes the connection. */
  setFrameHandler(handler: (frame: Frame) => void): void {
    this.onFrame = handler;
  }

  setMaxFrameBytes(bytes: number): void {
    this.decoder.maxBodyBytes = bytes;
  }

  onClose(listener: (reason: CloseReason) => void): void {
    if (this.open) this.closeListeners.push(listener);
    else queueMicrotask(() => listener(this.closeReason as CloseReason));
  }

  /** Bytes written by us and not yet taken by the kernel. */
  queuedBytes(): number {
    return this.outBytes + this.socketBacklog;
  }

  /**
   * Queues one frame. Frames written in the same turn of the event loop go
   * out in one socket write (flushed from setImmediate), so many small
   * messages share a syscall.
   */
  write(type: number, requestId: number, body: Buffer): void {
    if (!this.open) return;
    const frameBytes = frameHeaderBytes + body.length;
    if (this.outBytes + frameBytes > this.outBuf.length) this.growOut(frameBytes);
    const buf = this.outBuf;
    const at = this.outBytes;
    buf[at] = protocolVersion;
    buf[at + 1] = type;
    buf.writeUInt32BE(requestId >>> 0, at + 2);
    buf.writeUInt32BE(body.length, at + 6);
    body.copy(buf, at + frameHeaderBytes);
    this.outBytes = at + frameBytes;
    if (this.outBytes >= flushThresholdBytes) {
      this.flush();
      return;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Once per event-loop turn, not per microtask: the replies finished by
      // every I/O callback of this turn (socket reads, fsync completions)
      // share one write syscall instead of one each.
      setImmediate(this.flushNow);
    }
  }

  flush(): void {
    if (!this.open || this.outBytes === 0) return;
    const data = this.outBuf.subarray(0, this.outBytes);
    this.socket.write(data);
    this.socketBacklog = this.socket.writableLength;
    // Nearly always the kernel took everything at once and the buffer can be
    // refilled; otherwise the socket keeps `data` until it is sent, and only
    // the rest of the buffer is still ours.
    this.outBuf = this.socketBacklog === 0 ? this.outBuf : this.outBuf.subarray(this.outBytes);
    this.outBytes = 0;
  }

  private growOut(frameBytes: number): void {
    const size = Math.max(outBufferBytes, this.outBytes + frameBytes);
    const next = Buffer.allocUnsafe(size);
    this.outBuf.copy(next, 0, 0, this.outBytes);
    this.outBuf = next;
  }

  /**
   * Stops or restarts reading: while stopped no further frame is delivered,
   * not even one already received, and TCP flow control slows the sender.
   */
  setReading(reading: boolean): void {
    if (!this.open || reading === !this.paused) return;
    this.paused = !reading;
    if (this.paused) {
      this.socket.pause();
      return;
    }
    this.socket.resume();
    // Frames that arrived in the chunk that paused us are still buffered.
    // Deliver them from a fresh microtask, not from inside whatever call
    // resumed us (a reply being written).
    queueMicrotask(() => this.deliverBuffered());
  }

  /**
   * Closes the connection now and logs why. Queued frames are flushed first
   * when `flushFirst` is set (a handshake rejection tells the peer why).
   */
  close(reason: CloseReason, flushFirst = false): void {
    if (!this.open) return;
    this.closeReason ??= reason;
    const fields = { remote: this.remote, peer: this.peerId, role: this.role, reason: reason.error.message };
    if (reason.routine) this.log.debug('Closing connection', fields);
    else this.log.warn(`Closing the connection with ${this.peerId ?? this.remote}: ${reason.error.message}`, fields);
    if (flushFirst) {
      this.flush();
      this.open = false;
      this.socket.end();
      // A peer that never reads must not keep the socket alive.
      this.socket.setTimeout(1_000, () => this.socket.destroy());
    } else {
      this.open = false;
      this.socket.destroy();
    }
  }

  private receive(chunk: Buffer): void {
    if (!this.open) return;
    try {
      this.decoder.push(chunk, this.deliver, this.ready);
    } catch (error) {
      this.close({ error: error as Error, routine: false });
    }
  }

  private deliverBuffered(): void {
    if (!this.open || this.paused) return;
    try {
      this.decoder.drain(this.deliver, this.ready);
    } catch (error) {
      this.close({ error: error as Error, routine: false });
    }
  }

  private readonly deliver = (frame: Frame): void => this.onFrame(frame);
  private readonly ready = (): boolean => this.open && !this.paused;

  private recordError(error: Error): void {
    this.closeReason ??= { error, routine: false };
  }

  private finish(): void {
    this.open = false;
    this.outBuf = Buffer.allocUnsafe(0);
    this.outBytes = 0;
    const reason = this.closeReason ?? { error: new Error('the connection closed'), routine: true };
    this.closeReason = reason;
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }
}
