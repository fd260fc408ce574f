/**
 * The manifest: the set of live SSTables per level, the oldest WAL still
 * needed, and the next file number (byte-level format in
 * docs/formats/manifest.md). It is replaced atomically: write MANIFEST.tmp,
 * fdatasync, rename over MANIFEST, sync the directory. A crash at any point
 * leaves either the old or the new manifest, both complete.
 */
import { CorruptionError, crc32 } from '../core/index.ts';
import type { FileSystem } from '../core/index.ts';
import { ByteWriter, Reader, readU32, writeU32 } from './codec.ts';
import type { TableMeta } from './sstable.ts';

/** docs/formats/manifest.md: "RKVM" little-endian. */
export const manifestMagic = 0x4d564b52;
export const manifestFormatVersion = 1;
export const manifestHeaderBytes = 16;
export const manifestName = 'MANIFEST';
export const manifestTempName = 'MANIFEST.tmp';

export interface ManifestTable extends TableMeta {
  level: number;
}

export interface ManifestState {
  nextFileNumber: number;
  /** WAL files numbered below this are already in SSTables. */
  logNumber: number;
  tables: ManifestTable[];
}

export function encodeManifest(state: ManifestState): Buffer {
  const w = new ByteWriter(1024);
  w.ensure(manifestHeaderBytes);
  w.length = manifestHeaderBytes;
  w.varint(state.nextFileNumber);
  w.varint(state.logNumber);
  w.varint(state.tables.length);
  for (const t of state.tables) {
    w.varint(t.level);
    w.varint(t.number);
    w.u64(t.size);
    w.u64(t.entries);
    w.u64(t.tombstones);
    w.varint(t.smallest.length);
    w.bytes(t.smallest);
    w.varint(t.largest.length);
    w.bytes(t.largest);
  }
  const out = Buffer.from(w.view());
  writeU32(out, 0, manifestMagic);
  out[4] = manifestFormatVersion;
  writeU32(out, 8, out.length - manifestHeaderBytes);
  writeU32(out, 12, crc32(out.subarray(manifestHeaderBytes)));
  return out;
}

export function decodeManifest(data: Uint8Array, file: string): ManifestState {
  const fail = (offset: number, what: string): never => {
    throw new CorruptionError(`Corrupt manifest ${file} at offset ${offset}: ${what}`, { file, offset });
  };
  if (data.length < manifestHeaderBytes) fail(0, `file of ${data.length} bytes is shorter than the header`);
  if (readU32(data, 0) !== manifestMagic) fail(0, 'bad magic (not a ringkv manifest)');
  const version = data[4] as number;
  if (version !== manifestFormatVersion) fail(4, `format version ${version} is not supported (this build reads ${manifestFormatVersion})`);
  const length = readU32(data, 8);
  if (manifestHeaderBytes + length !== data.length) fail(8, `payload length ${length} does not match the file size ${data.length}`);
  if (crc32(data.subarray(manifestHeaderBytes)) !== readU32(data, 12)) fail(12, 'checksum mismatch');
  const r = new Reader(data, manifestHeaderBytes, data.length, file, 0);
  const nextFileNumber = r.varint();
  const logNumber = r.varint();
  const count = r.varint();
  const tables: ManifestTable[] = [];
  for (let i = 0; i < count; i++) {
    const level = r.varint();
    const number = r.varint();
    const size = r.u64();
    const entries = r.u64();
    const tombstones = r.u64();
    const smallest = Buffer.from(r.bytes(r.varint()));
    const largest = Buffer.from(r.bytes(r.varint()));
    tables.push({ level, number, size, entries, tombstones, smallest, largest });
  }
  if (r.pos !== data.length) fail(r.pos, 'unexpected bytes after the table list');
  return { nextFileNumber, logNumber, tables };
}

export async function writeManifest(fs: FileSystem, dir: string, state: ManifestState): Promise<void> {
  const tmp = `${dir}/${manifestTempName}`;
  const file = await fs.openAppend(tmp, { truncate: true });
  try {
    await file.append(encodeManifest(state));
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(tmp, `${dir}/${manifestName}`);
  await fs.syncDir(dir);
}

export async function readManifest(fs: FileSystem, dir: string): Promise<ManifestState | undefined> {
  const path = `${dir}/${manifestName}`;
  if (!(await fs.exists(path))) return undefined;
  return decodeManifest(await fs.readFile(path), path);
}
