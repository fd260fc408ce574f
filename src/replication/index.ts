/** src/replication: the coordinator and everything versioned. Other layers import only this file. */
export * from './api.ts';
export * from './vclock.ts';
export * from './hlc.ts';
export * from './counter.ts';
export * from './object.ts';
export * from './keys.ts';
export * from './replica-store.ts';
export * from './local-kv.ts';
export * from './placement.ts';
export * from './quorum.ts';
export * from './messages.ts';
export * from './coordinator.ts';
export * from './keyspace.ts';
export * from './read-repair.ts';
export * from './handoff.ts';
export * from './cluster-kv.ts';
export * from './hint-store.ts';
