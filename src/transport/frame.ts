/**
 * Framing (docs/protocol/wire.md §2): a 10-byte header then the body.
 * The decoder survives any split of the byte stream into chunks and never
 * buffers more than one frame's worth beyond the limit it is given.
 */
import { ProtocolError } from '../core/index.ts';
import { frameHeaderBytes, protocolVersion } from './constants.ts';

export interface Frame {
  readonly type: number;
  readonly requestId: number;
  readonly body: Buffer;
}

export function encodeHeader(type: number, requestId: number, bodyBytes: number): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderBytes);
  header[0] = protocolVersion;
  header[1] = type;
  header.writeUInt32BE(requestId >>> 0, 2);
  header.writeUInt32BE(bodyBytes, 6);
  return header;
}

/**
 * Turns chunks into frames. Chunks are kept in a list until a whole frame is
 * present, so a large frame arriving in many chunks is copied once, not once
 * per chunk.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame whose header has been read, or -1. */
  private header: { type: number; requestId: number; bodyBytes: number } | undefined;

  /** `maxBodyBytes` may change between calls (it grows once the handshake succeeds). */
  constructor(public maxBodyBytes: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds a chunk and calls `onFrame` for every complete frame, in order.
   * Throws ProtocolError for a bad version or an oversized frame; the caller
   * must then drop the connection, as the stream can no longer be trusted.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => boolean | void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.header === undefined) {
        if (this.buffered < frameHeaderBytes) return;
        const head = this.take(frameHeaderBytes);
        const version = head[0] as number;
        if (version !== protocolVersion) {
          throw new ProtocolError(`Frame has protocol version ${version}; this node speaks version ${protocolVersion}`);
        }
        const bodyBytes = head.readUInt32BE(6);
        if (bodyBytes > this.maxBodyBytes) {
          throw new ProtocolError(`Frame body is ${bodyBytes} bytes: the limit is ${this.maxBodyBytes}`);
        }
        this.header = { type: head[1] as number, requestId: head.readUInt32BE(2), bodyBytes };
      }
      if (this.buffered < this.header.bodyBytes) return;
      const body = this.take(this.header.bodyBytes);
      const frame: Frame = { type: this.header.type, requestId: this.header.requestId, body };
      this.header = undefined;
      // The callback returns false to stop decoding (the connection closed under it).
      if (onFrame(frame) === false) return;
    }
  }

  /** Removes and returns the next `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Buffer;
      const want = n - filled;
      if (chunk.length <= want) {
        chunk.copy(out, filled);
        filled += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, filled, 0, want);
        this.chunks[0] = chunk.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}
