/** Byte helpers. Keys and values are Uint8Array everywhere; Buffer is a Uint8Array. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Byte-wise comparison, the order of keys in storage: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(asBuffer(a), asBuffer(b));
}

/** Up to this many bytes bytesEqual compares in JS: Buffer.compare costs two views and a call into C++ (keys are short). */
const jsCompareMaxBytes = 64;

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  if (n > jsCompareMaxBytes) return Buffer.compare(asBuffer(a), asBuffer(b)) === 0;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts as Uint8Array[]);
}

/** A Buffer view over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function toHex(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('hex');
}

/** A key rendered for messages and logs: text when printable, hex otherwise. */
export function describeKey(key: Uint8Array, maxChars = 64): string {
  const text = fromUtf8(key);
  const printable = /^[\x20-\x7e]*$/.test(text);
  const shown = printable ? JSON.stringify(text) : `0x${toHex(key)}`;
  return shown.length > maxChars ? `${shown.slice(0, maxChars)}… (${key.length} bytes)` : shown;
}
