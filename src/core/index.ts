/** src/core: the bottom layer. Every other subsystem imports core only through this file. */
export * from './env.ts';
export * from './errors.ts';
export * from './assert.ts';
export * from './bytes.ts';
export * from './hash.ts';
export { RealClock, VirtualClock } from './clock.ts';
export { SeededRandom, randomFromOs } from './random.ts';
export { RealFileSystem, joinPath } from './fs-real.ts';
export { MemoryFileSystem, type CrashOptions } from './fs-memory.ts';
export { createLogger, jsonSink, prettySink, SinkLogger, silentLogger, MemoryLogger, type LogSink } from './log.ts';
export { MessageRouter } from './router.ts';
