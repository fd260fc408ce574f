/** src/node: wires one ringkv node together. Other layers import only this file. */
export * from './config.ts';
export { RingkvNode, settingsFromConfig, modeOf, type NodeAddresses, type HostPort, type NodeMode } from './node.ts';
export { GossipClusterView, startCluster, type ClusterRuntime } from './cluster.ts';
export { loadIdentity, newNodeId, nodeIdFileName, generationFileName, type NodeIdentity } from './identity.ts';
export { lockDataDir, lockFileName, type DataDirLock } from './lock.ts';
export { SingleNodeCluster, slotOf, slotCount } from './single-cluster.ts';
export { engineDirName } from './storage.ts';
