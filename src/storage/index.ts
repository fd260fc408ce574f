/** src/storage: the engines. Other layers import only this file. */
export * from './engine.ts';
export { MemoryEngine } from './memory-engine.ts';
export { LsmEngine, openLsm, type LsmEnv } from './lsm-engine.ts';
export { defaultLsmOptions, resolveOptions, type CompactionFilter, type LsmOptions, type SyncMode } from './options.ts';
