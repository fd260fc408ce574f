/** The shared Transport contract, run against the simulator's network on virtual time. */
import { SeededRandom, VirtualClock } from '../../src/core/index.ts';
import { SimNetwork } from '../../sim/network.ts';
import { runTransportConformance, type TransportTestCluster } from '../transport/conformance.ts';

runTransportConformance('sim', async (): Promise<TransportTestCluster> => {
  const clock = new VirtualClock();
  const network = new SimNetwork(clock, new SeededRandom(7));
  const ids = ['node-a', 'node-b', 'node-c'];
  const transports = ids.map((id) => network.attach(id, `sim://${id}`));
  const settle = async <T>(promise: Promise<T>, limitMs = 60_000): Promise<T> => {
    let settled = false;
    const watched = promise.then(
      (value) => {
        settled = true;
        return value;
      },
      (error: unknown) => {
        settled = true;
        throw error;
      },
    );
    // Keep an unhandled rejection from escaping while time advances.
    watched.catch(() => {});
    await clock.runUntil(() => settled, limitMs);
    return watched;
  };
  return {
    members: transports.map((transport) => ({ transport, address: transport.address })),
    async makeUnreachable(index) {
      transports[index]?.crash();
    },
    settle,
    waitUntil: (condition, limitMs) => clock.runUntil(condition, limitMs),
    async close() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
});
