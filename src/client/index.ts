/** src/client: a TypeScript client for ringkv's HTTP API. Other layers import only this file. */
export * from './http-client.ts';
