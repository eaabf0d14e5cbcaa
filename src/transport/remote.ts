/**
 * The guest side of a remote channel (shm, unix, tcp): one session over a {@link FrameLink}. Calls are matched to
 * replies by sequence number; asynchronous calls are posted in batches and answered only when they fail; explicit
 * state and liveness go through control frames. When the link breaks, every pending call rejects with
 * `ERR_AVA_CHANNEL_CLOSED` (the guest's recovery starts there).
 */
import { AvaError, ClosedError, fromWireError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import type { CallFrame, ControlFrame, EventFrame, Frame, ReplyFrame } from '../wire/frames.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import type { Address } from '../config.js';
import { formatAddress } from '../config.js';
import { DEFAULT_LIMITS, decodeBody } from '../wire/codec.js';
import { foldRepeats } from '../wire/repeat.js';
import type { StateCopyItem } from '../wire/frames.js';
import type { Channel, ChannelSupports, StateIntake, StateSent } from './channel.js';
import type { FrameLink } from './link.js';

/** Options of {@link RemoteChannel.open}. */
export interface RemoteChannelOptions {
  readonly kind: 'shm' | 'unix' | 'tcp';
  readonly link: FrameLink;
  readonly spec: ApiSpec;
  readonly sessionId: string;
  readonly token?: string;
  /** How long to wait for the worker's welcome. @defaultValue 10000 ms */
  readonly helloTimeoutMs?: number;
  /** Runs after the channel closed (e.g. stops a worker process the channel owns). */
  readonly dispose?: () => Promise<void>;
  /** Where other workers reach this channel's worker (its listening address and token), for state streams. */
  readonly reachableAt?: { readonly address: Address; readonly token?: string };
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** See the module comment. */
export class RemoteChannel implements Channel {
  readonly kind: 'shm' | 'unix' | 'tcp';
  readonly supports: ChannelSupports;
  /** The spec the worker agreed to in its welcome. */
  readonly spec: ApiSpec;
  /** The worker's id from its welcome. */
  workerId = '';
  readonly #link: FrameLink;
  readonly #calls = new Map<number, Pending>();
  readonly #controls = new Map<number, Pending>();
  readonly #events = new Set<(event: EventFrame) => void>();
  readonly #asyncFailures = new Set<(reply: ReplyFrame) => void>();
  #nextControl = 1;
  #closed: AvaError | undefined;
  readonly #dispose: (() => Promise<void>) | undefined;
  readonly #reachableAt: RemoteChannelOptions['reachableAt'];

  private constructor(options: RemoteChannelOptions) {
    this.kind = options.kind;
    this.spec = options.spec;
    this.#link = options.link;
    this.#dispose = options.dispose;
    this.#reachableAt = options.reachableAt;
    this.supports = { zeroCopy: false, crossProcess: options.kind !== 'shm' };
  }

  /**
   * Sends the hello and waits for the welcome.
   * @throws the worker's refusal (`ERR_AVA_AUTH`, `ERR_AVA_SPEC_MISMATCH`, ...) or `ERR_AVA_CHANNEL_CLOSED`.
   */
  static open(options: RemoteChannelOptions): Promise<RemoteChannel> {
    const channel = new RemoteChannel(options);
    return new Promise<RemoteChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new AvaError('ERR_AVA_CHANNEL_CLOSED', `no welcome from the worker within ${options.helloTimeoutMs ?? 10000} ms`));
        options.link.close();
      }, options.helloTimeoutMs ?? 10000);
      let welcomed = false;
      options.link.onFrame((frame) => {
        if (!welcomed) {
          clearTimeout(timer);
          if (frame.t === 'welcome') {
            welcomed = true;
            channel.workerId = frame.worker;
            resolve(channel);
          } else {
            reject(frame.t === 'error' ? fromWireError(frame.error) : new AvaError('ERR_AVA_HANDSHAKE', `expected a welcome, got ${frame.t}`));
            options.link.close();
          }
          return;
        }
        channel.#receive(frame);
      });
      options.link.onClose((error) => {
        clearTimeout(timer);
        const closed = new AvaError('ERR_AVA_CHANNEL_CLOSED', `the ${options.kind} channel to the worker closed${error ? `: ${error.message}` : ''}`, { cause: error });
        channel.#fail(closed);
        if (!welcomed) reject(closed);
      });
      options.link.send({ t: 'hello', v: PROTOCOL_VERSION, spec: options.spec.name, hash: options.spec.hash, session: options.sessionId, ...(options.token ? { token: options.token } : {}) });
    });
  }

  #receive(frame: Frame): void {
    switch (frame.t) {
      case 'reply': {
        const pending = this.#calls.get(frame.seq);
        if (pending) {
          this.#calls.delete(frame.seq);
          pending.resolve(frame);
        } else {
          for (const l of this.#asyncFailures) l(frame);
        }
        break;
      }
      case 'event':
        for (const l of this.#events) l(frame);
        break;
      case 'controlReply': {
        const pending = this.#controls.get(frame.id);
        this.#controls.delete(frame.id);
        if (frame.error) pending?.reject(fromWireError(frame.error));
        else pending?.resolve(frame.bytes);
        break;
      }
      case 'error':
        this.#fail(fromWireError(frame.error));
        this.#link.close();
        break;
      default:
        break;
    }
  }

  #fail(error: AvaError): void {
    this.#closed ??= error;
    for (const p of this.#calls.values()) p.reject(error);
    for (const p of this.#controls.values()) p.reject(error);
    this.#calls.clear();
    this.#controls.clear();
  }

  call(frame: CallFrame): Promise<ReplyFrame> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise<ReplyFrame>((resolve, reject) => {
      this.#calls.set(frame.seq, { resolve: resolve as (v: unknown) => void, reject });
      this.#link.send({ t: 'call', ...frame });
    });
  }

  post(frames: readonly CallFrame[]): void {
    if (this.#closed) throw this.#closed;
    if (frames.length > 0) this.#link.send({ t: 'batch', calls: foldRepeats(frames, DEFAULT_LIMITS.maxBatchCalls) });
  }

  onAsyncFailure(listener: (reply: ReplyFrame) => void): () => void {
    this.#asyncFailures.add(listener);
    return () => this.#asyncFailures.delete(listener);
  }

  #control(op: ControlFrame['op'], fields: Partial<ControlFrame> = {}): Promise<Uint8Array | undefined> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextControl++;
    return new Promise((resolve, reject) => {
      this.#controls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#link.send({ t: 'control', id, op, ...fields });
    });
  }

  async extractState(id: number, held?: boolean, range?: { readonly offset: number; readonly length: number }): Promise<Uint8Array> {
    return (await this.#control('extract', { handle: id, ...(held ? { held } : {}), ...(range ? { offset: range.offset, length: range.length } : {}) })) ?? new Uint8Array();
  }

  async restoreState(id: number, bytes: Uint8Array, crc?: number, held?: boolean, offset?: number): Promise<void> {
    await this.#control('restore', { handle: id, bytes, ...(crc === undefined ? {} : { crc }), ...(held ? { held } : {}), ...(offset === undefined ? {} : { offset }) });
  }

  async openStateIntake(): Promise<StateIntake | undefined> {
    const at = this.#reachableAt;
    if (!at) return undefined;
    const token = await this.#control('intake');
    return { address: formatAddress(at.address), intake: Buffer.from(token ?? new Uint8Array()).toString(), ...(at.token ? { token: at.token } : {}) };
  }

  async sendState(intake: StateIntake, objects: readonly StateCopyItem[], options: { readonly chunkBytes?: number; readonly skipReleased?: boolean } = {}): Promise<StateSent> {
    const reply = await this.#control('send', {
      address: intake.address, intake: intake.intake, objects, ...(intake.token ? { token: intake.token } : {}),
      ...(options.chunkBytes ? { chunk: options.chunkBytes } : {}), ...(options.skipReleased ? { skipReleased: true } : {}),
    });
    const done = reply && decodeBody(reply);
    if (done?.t !== 'stateDone') throw new AvaError('ERR_AVA_BAD_FRAME', 'the worker answered a send without its stateDone');
    return { objects: done.objects, bytes: done.bytes, extractMs: done.ms ?? 0, skipped: done.skipped ?? [] };
  }

  async recreateTransient(id: number, kind: string, related: readonly number[]): Promise<void> {
    await this.#control('recreate', { handle: id, kind, related });
  }

  /** Round trip of a control frame: proves the worker is alive and has run every call sent before. */
  async barrier(): Promise<void> {
    await this.#control('ping');
  }

  onEvent(listener: (event: EventFrame) => void): () => void {
    this.#events.add(listener);
    return () => this.#events.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (!this.#closed) {
        try {
          await this.#control('close');
        } catch {
          // Already gone: nothing to release on the worker.
        }
        this.#closed = new ClosedError(`${this.kind} channel`);
        this.#link.close();
      }
      // Even after the link broke, what the channel owns (a worker process it started) is released, once.
      await this.#dispose?.();
    })();
    return this.#closing;
  }

  #closing: Promise<void> | undefined;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
