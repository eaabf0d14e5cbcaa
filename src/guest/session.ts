/**
 * The guest session: numbers calls, issues handle and callback ids, and carries call frames over its channel.
 *
 * It deals only in frames, never in JavaScript closures or proxy objects (it must not import the proxy), so that a
 * second front, the C guestlib of a later release, can feed the very same session code.
 */
import { randomUUID } from 'node:crypto';
import { ClosedError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import type { Channel } from '../transport/channel.js';
import type { CallFrame, EventFrame, ReplyFrame, WireValue } from '../wire/frames.js';

/** Options of {@link GuestSession}. */
export interface GuestSessionOptions {
  readonly spec: ApiSpec;
  readonly channel: Channel;
  /** Session id (defaults to a random UUID). */
  readonly id?: string;
}

/** See the module comment. */
export class GuestSession implements AsyncDisposable {
  readonly id: string;
  readonly spec: ApiSpec;
  readonly channel: Channel;
  #seq = 0;
  #nextHandleId = 1;
  #nextCallbackId = 1;
  #closed = false;

  constructor(options: GuestSessionOptions) {
    this.spec = options.spec;
    this.channel = options.channel;
    this.id = options.id ?? randomUUID();
  }

  /** A fresh handle id; ids are never reused within a session. */
  newHandleId(): number {
    return this.#nextHandleId++;
  }

  /** A fresh callback id. */
  newCallbackId(): number {
    return this.#nextCallbackId++;
  }

  /** Calls made so far (the next call's sequence number). */
  get callCount(): number {
    return this.#seq;
  }

  /** Sends one call and resolves with its reply. */
  call(fn: string, args: readonly WireValue[], retId: number | null = null): Promise<ReplyFrame> {
    if (this.#closed) return Promise.reject(new ClosedError(`session ${this.id}`));
    const frame: CallFrame = { seq: this.#seq++, fn, args, retId };
    return this.channel.call(frame);
  }

  /** Reads the explicit state of handle `id` on the worker (after every call sent before). */
  extractState(id: number): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new ClosedError(`session ${this.id}`));
    return this.channel.extractState(id);
  }

  /** Subscribes to callback events of this session. */
  onEvent(listener: (event: EventFrame) => void): () => void {
    return this.channel.onEvent(listener);
  }

  /** Ends the session and its channel. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.channel.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
