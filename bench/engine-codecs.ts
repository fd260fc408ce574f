/**
 * Measures the block codecs the SSTable could use, on 16 KiB blocks built by
 * the real BlockBuilder: `node --import tsx bench/engine-codecs.ts`.
 * Two data sets: structured records (keys like "user:000123", JSON-ish
 * values: what a key-value store mostly holds) and random bytes (bench:engine's
 * values, which no codec can shrink).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { compressSync, uncompressSync } from 'lz4-napi';
import { BlockBuilder, kindPut } from '../src/storage/block.ts';

const blockBytes = 16 * 1024;
const rounds = 2000;

function structuredBlock(seed: number): Buffer {
  const b = new BlockBuilder(blockBytes + 1024);
  for (let i = 0; b.estimatedBytes < blockBytes; i++) {
    const id = seed * 1000 + i;
    const key = Buffer.from(`user:${String(id).padStart(9, '0')}`);
    const value = Buffer.from(JSON.stringify({ id, name: `name-${id % 977}`, email: `u${id}@example.com`, plan: ['free', 'pro', 'team'][id % 3], visits: (id * 7919) % 10000 }));
    b.add(key, kindPut, value, undefined);
  }
  return b.finish();
}

function randomBlock(seed: number): Buffer {
  const b = new BlockBuilder(blockBytes + 1024);
  let x = seed + 1;
  const next = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0));
  for (let i = 0; b.estimatedBytes < blockBytes; i++) {
    const key = Buffer.alloc(16);
    const value = Buffer.alloc(100);
    for (let j = 0; j < 16; j += 4) key.writeUInt32LE(next(), j);
    for (let j = 0; j < 100; j += 4) value.writeUInt32LE(next(), j);
    b.add(key.sort(), kindPut, value, undefined);
  }
  return b.finish();
}

interface Codec {
  name: string;
  compress(data: Buffer): Buffer;
  decompress(data: Buffer): Buffer;
}

const codecs: Codec[] = [
  { name: 'none', compress: (d) => d, decompress: (d) => d },
  { name: 'lz4-napi', compress: (d) => compressSync(d), decompress: (d) => uncompressSync(d) },
  { name: 'deflate-raw level 1', compress: (d) => deflateRawSync(d, { level: 1 }), decompress: (d) => inflateRawSync(d) },
  { name: 'deflate-raw level 6', compress: (d) => deflateRawSync(d, { level: 6 }), decompress: (d) => inflateRawSync(d) },
];

for (const [label, make] of [['structured records', structuredBlock], ['random 100-byte values', randomBlock]] as const) {
  const blocks = Array.from({ length: 50 }, (_, i) => make(i));
  console.log(`\n${label}, ${blocks[0]?.length} byte blocks`);
  for (const codec of codecs) {
    let size = 0;
    const compressed = blocks.map((b) => codec.compress(b));
    for (const c of compressed) size += c.length;
    let t = performance.now();
    for (let i = 0; i < rounds; i++) codec.compress(blocks[i % blocks.length] as Buffer);
    const compressUs = ((performance.now() - t) * 1000) / rounds;
    t = performance.now();
    for (let i = 0; i < rounds; i++) codec.decompress(compressed[i % compressed.length] as Buffer);
    const decompressUs = ((performance.now() - t) * 1000) / rounds;
    console.log(`  ${codec.name.padEnd(20)} ${String(Math.round(size / blocks.length)).padStart(6)} B   compress ${compressUs.toFixed(1).padStart(6)} µs   decompress ${decompressUs.toFixed(1).padStart(6)} µs`);
  }
}
