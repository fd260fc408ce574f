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
const always = (): boolean => true;

export class FrameDecoder {
  /** Unconsumed chunks; the first one is consumed from `offset` on. */
  private chunks: Buffer[] = [];
  private offset = 0;
  private buffered = 0;
  private type = 0;
  private requestId = 0;
  /** Body length of the frame whose header has been read, or -1 while waiting for a header. */
  private bodyBytes = -1;

  /** `maxBodyBytes` may change between calls (it grows once the handshake succeeds). */
  constructor(public maxBodyBytes: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds a chunk and calls `onFrame` for every complete frame, in order,
   * while `ready()` holds (checked before each frame; a frame is never
   * taken out unless it is delivered). Throws ProtocolError for a bad version
   * or an oversized frame; the caller must then drop the connection, as the
   * stream can no longer be trusted.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void, ready: () => boolean = always): void {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    this.drain(onFrame, ready);
  }

  /** Delivers the complete frames already buffered, while `ready()` holds. */
  drain(onFrame: (frame: Frame) => void, ready: () => boolean = always): void {
    for (;;) {
      if (this.bodyBytes < 0) {
        if (this.buffered < frameHeaderBytes) return;
        this.readHeader();
      }
      if (this.buffered < this.bodyBytes || !ready()) return;
      const frame: Frame = { type: this.type, requestId: this.requestId, body: this.take(this.bodyBytes) };
      this.bodyBytes = -1;
      onFrame(frame);
    }
  }

  private readHeader(): void {
    const first = this.chunks[0] as Buffer;
    // Fast path: the header lies within one chunk (nearly always), read it in place.
    const head = first.length - this.offset >= frameHeaderBytes ? first : this.take(frameHeaderBytes);
    const at = head === first ? this.offset : 0;
    const version = head[at] as number;
    if (version !== protocolVersion) {
      throw new ProtocolError(`Frame has protocol version ${version}; this node speaks version ${protocolVersion}`);
    }
    const bodyBytes = head.readUInt32BE(at + 6);
    if (bodyBytes > this.maxBodyBytes) {
      throw new ProtocolError(`Frame body is ${bodyBytes} bytes: the limit is ${this.maxBodyBytes}`);
    }
    this.type = head[at + 1] as number;
    this.requestId = head.readUInt32BE(at + 2);
    this.bodyBytes = bodyBytes;
    if (head === first) this.skip(frameHeaderBytes);
  }

  private skip(n: number): void {
    this.offset += n;
    this.buffered -= n;
    const first = this.chunks[0] as Buffer;
    if (this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }

  /**
   * Removes the next `n` buffered bytes (n <= buffered) and returns them in a
   * buffer of their own, never a view into a socket chunk: values decoded
   * from a body are views into it, and a 100-byte value kept in a memtable
   * must not pin a 64 KiB read chunk.
   */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Buffer;
      const available = chunk.length - this.offset;
      const want = Math.min(n - filled, available);
      chunk.copy(out, filled, this.offset, this.offset + want);
      filled += want;
      this.skip(want);
    }
    return out;
  }
}
