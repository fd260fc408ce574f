/** src/replication: the coordinator and everything versioned. Other layers import only this file. */
export * from './api.ts';
