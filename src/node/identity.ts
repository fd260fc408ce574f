/**
 * The node's identity on disk: `<data>/NODE_ID` (chosen at first start, then
 * kept forever, so peers recognise the node across restarts) and
 * `<data>/GENERATION` (bumped at every start, so gossip tells a restarted node
 * from a stale rumour of its previous life). Both are written with
 * write-temp + fsync + rename + fsync(dir) so a crash leaves the old or the
 * new value, never a torn one. See docs/operations.md "Data directory".
 */
import type { FileSystem, Random } from '../core/index.ts';
import { CorruptionError, InvalidArgumentError, fromUtf8, joinPath, utf8 } from '../core/index.ts';

export const nodeIdFileName = 'NODE_ID';
export const generationFileName = 'GENERATION';

export interface NodeIdentity {
  nodeId: string;
  /** 1 at the first start, then one more at each start. */
  generation: number;
}

async function writeAtomically(fs: FileSystem, dir: string, name: string, text: string): Promise<void> {
  const tmp = joinPath(dir, `${name}.tmp`);
  const file = await fs.openAppend(tmp, { truncate: true });
  try {
    await file.append(utf8(text));
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(tmp, joinPath(dir, name));
  await fs.syncDir(dir);
}

async function readText(fs: FileSystem, path: string): Promise<string | undefined> {
  if (!(await fs.exists(path))) return undefined;
  return fromUtf8(await fs.readFile(path)).trim();
}

/** A fresh id: short, readable in logs, unique enough for a cluster (32 random bits). */
export function newNodeId(random: Random): string {
  return `node-${random.u32().toString(16).padStart(8, '0')}`;
}

/**
 * Reads or creates the identity in `dataDir`. A configured id must match the
 * one on disk: starting node B on node A's data would hand A's data to B.
 */
export async function loadIdentity(fs: FileSystem, dataDir: string, configuredId: string | undefined, random: Random): Promise<NodeIdentity> {
  await fs.mkdirp(dataDir);
  const idPath = joinPath(dataDir, nodeIdFileName);
  let nodeId = await readText(fs, idPath);
  if (nodeId !== undefined && nodeId === '') throw new CorruptionError(`${idPath} is empty: restore it or remove the data directory`, { file: idPath });
  if (nodeId === undefined) {
    nodeId = configuredId ?? newNodeId(random);
    await writeAtomically(fs, dataDir, nodeIdFileName, `${nodeId}\n`);
  } else if (configuredId !== undefined && configuredId !== nodeId) {
    throw new InvalidArgumentError(
      `The data directory ${dataDir} belongs to node "${nodeId}" but this node was started as "${configuredId}": ` +
        'use the matching --node-id, or another --data directory',
    );
  }

  const genPath = joinPath(dataDir, generationFileName);
  const genText = await readText(fs, genPath);
  let previous = 0;
  if (genText !== undefined) {
    if (!/^\d+$/.test(genText)) throw new CorruptionError(`${genPath} holds "${genText}", not a generation number`, { file: genPath });
    previous = Number(genText);
  }
  const generation = previous + 1;
  await writeAtomically(fs, dataDir, generationFileName, `${generation}\n`);
  return { nodeId, generation };
}
