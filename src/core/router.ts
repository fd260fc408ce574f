/**
 * One transport, many protocols: routes messages by the prefix of their type
 * ("gossip.", "kv.", "hint.", "ae.") to the protocol that registered it.
 */
import type { MessageHandler, NodeId, WireMessage } from './env.ts';
import { InvalidArgumentError, ProtocolError } from './errors.ts';

export class MessageRouter implements MessageHandler {
  private readonly handlers = new Map<string, MessageHandler>();

  /** Registers `handler` for every message whose type starts with `prefix` + ".". */
  register(prefix: string, handler: MessageHandler): void {
    if (prefix.includes('.')) throw new InvalidArgumentError(`A route prefix is one word without dots, got "${prefix}"`);
    if (this.handlers.has(prefix)) throw new InvalidArgumentError(`The route prefix "${prefix}" is already registered`);
    this.handlers.set(prefix, handler);
  }

  private route(message: WireMessage): MessageHandler | undefined {
    const type = typeof message.type === 'string' ? message.type : '';
    const dot = type.indexOf('.');
    return this.handlers.get(dot < 0 ? type : type.slice(0, dot));
  }

  onMessage(from: NodeId, message: WireMessage): void {
    // Unknown one-way messages are dropped: a newer peer may speak protocols we do not.
    this.route(message)?.onMessage(from, message);
  }

  onRequest(from: NodeId, message: WireMessage): Promise<WireMessage> {
    const handler = this.route(message);
    if (handler === undefined) return Promise.reject(new ProtocolError(`No handler for message type "${String(message.type)}"`));
    return handler.onRequest(from, message);
  }
}
