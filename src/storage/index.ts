/** src/storage: the engines. Other layers import only this file. */
export * from './engine.ts';
export { MemoryEngine } from './memory-engine.ts';
