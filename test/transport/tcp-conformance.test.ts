/** The shared Transport contract, run against real TCP on 127.0.0.1. */
import { runTransportConformance, type TransportTestCluster } from './conformance.ts';
import { startTransport, waitUntil } from './helpers.ts';

runTransportConformance('tcp', async (): Promise<TransportTestCluster> => {
  const transports = await Promise.all(['node-a', 'node-b', 'node-c'].map((nodeId, i) => startTransport({ nodeId, seed: i + 1 })));
  return {
    members: transports.map((transport) => ({ transport, address: transport.address })),
    async makeUnreachable(index) {
      // A stopped process: its listening socket and connections are gone.
      await transports[index]?.close();
    },
    settle: (promise) => promise,
    waitUntil,
    async close() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
});
