/** A transport that records what membership sends, so tests can look at single gossip messages. */
import {
  UnavailableError,
  VirtualClock,
  SeededRandom,
  MemoryLogger,
  type MessageHandler,
  type NodeId,
  type Transport,
  type WireMessage,
} from '../../src/core/index.ts';
import { Membership, type MemberEntry, type MembershipOptions } from '../../src/membership/index.ts';

export class ManualTransport implements Transport {
  readonly sent: Array<{ to: NodeId; message: WireMessage }> = [];
  readonly addresses = new Map<NodeId, string>();
  readonly identities = new Map<string, NodeId>();

  constructor(readonly localId: NodeId) {}

  setAddress(node: NodeId, address: string): void {
    this.addresses.set(node, address);
  }

  send(to: NodeId, message: WireMessage): void {
    this.sent.push({ to, message: structuredClone(message) });
  }

  request(to: NodeId): Promise<WireMessage> {
    return Promise.reject(new UnavailableError(`no requests in this test (to ${to})`, { answered: 0, required: 1 }));
  }

  identify(address: string): Promise<NodeId> {
    const id = this.identities.get(address);
    return id === undefined ? Promise.reject(new UnavailableError(`nothing at ${address}`, { answered: 0, required: 1 })) : Promise.resolve(id);
  }

  setHandler(_handler: MessageHandler): void {}

  async close(): Promise<void> {}

  /** Messages of one type sent so far, and forgets them. */
  take(type: string): Array<{ to: NodeId; message: WireMessage }> {
    const out = this.sent.filter((s) => s.message.type === type);
    this.sent.length = 0;
    return out;
  }
}

export function entry(id: NodeId, generation: number, version: number, extra: Partial<MemberEntry> = {}): MemberEntry {
  return {
    id,
    generation,
    version,
    address: `addr-${id}`,
    addresses: [],
    dc: 'dc1',
    rack: 'r1',
    status: 'normal',
    suspects: [],
    ...extra,
  };
}

export function makeMembership(id: NodeId, options: Partial<MembershipOptions> = {}): {
  membership: Membership;
  transport: ManualTransport;
  clock: VirtualClock;
  log: MemoryLogger;
} {
  const clock = new VirtualClock();
  const transport = new ManualTransport(id);
  const log = new MemoryLogger();
  const membership = new Membership({
    clock,
    random: new SeededRandom(1),
    transport,
    log,
    generation: 1,
    address: `addr-${id}`,
    status: 'normal',
    ...options,
  });
  return { membership, transport, clock, log };
}
