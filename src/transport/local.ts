/**
 * The `local` channel: guest and worker in one process and one thread. Frames are passed as objects, so the whole
 * path (proxy, session, worker, koffi) runs without a codec; remote transports add framing on the same interface.
 */
import { printTimestamps } from '../config.js';
import { ClosedError, ConfigError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import type { WorkerSession } from '../worker/session.js';
import { callFailed } from '../spec/outcome.js';
import { Worker } from '../worker/worker.js';
import type { CallFrame, EventFrame, ReplyFrame } from '../wire/frames.js';
import type { Channel, ChannelSupports } from './channel.js';

/** Options of {@link LocalChannel.open}. */
export interface LocalChannelOptions {
  /** The guest's spec; must equal the worker's (same hash). */
  readonly spec: ApiSpec;
  /** A worker to share between sessions; by default the channel opens (and closes) its own. */
  readonly worker?: Worker;
  /** The session id on the worker. */
  readonly sessionId?: string;
}

/** See the module comment. */
export class LocalChannel implements Channel {
  readonly kind = 'local';
  readonly supports: ChannelSupports = { zeroCopy: true, crossProcess: false };
  /** The worker session this channel drives. */
  readonly session: WorkerSession;
  get spec(): ApiSpec {
    return this.session.spec;
  }
  readonly #ownedWorker: Worker | undefined;
  #closed = false;

  private constructor(session: WorkerSession, ownedWorker: Worker | undefined) {
    this.session = session;
    this.#ownedWorker = ownedWorker;
  }

  /**
   * Opens a session on `options.worker`, or on a new worker of the spec.
   * @throws {ConfigError} `ERR_AVA_CONFIG` when the worker serves another spec (name or hash differ).
   */
  static async open(options: LocalChannelOptions): Promise<LocalChannel> {
    const owned = options.worker ? undefined : await Worker.open({ spec: options.spec });
    const worker = options.worker ?? owned!;
    if (worker.spec.hash !== options.spec.hash) {
      throw new ConfigError(`the worker serves ${worker.spec.name} (${worker.spec.hash.slice(0, 12)}), the guest speaks ${options.spec.name} (${options.spec.hash.slice(0, 12)})`);
    }
    const session = worker.openSession(options.sessionId);
    session.timed = printTimestamps();
    return new LocalChannel(session, owned);
  }

  call(frame: CallFrame): Promise<ReplyFrame> {
    if (this.#closed) return Promise.reject(new ClosedError('local channel'));
    return this.session.execute(frame);
  }

  post(frames: readonly CallFrame[]): void {
    if (this.#closed) throw new ClosedError('local channel');
    this.session.post(frames, (frame, reply) => {
      if (callFailed(this.session.spec, frame.fn, reply)) for (const l of this.#asyncListeners) l({ ...reply, fn: frame.fn });
    });
  }

  readonly #asyncListeners = new Set<(reply: ReplyFrame) => void>();
  onAsyncFailure(listener: (reply: ReplyFrame) => void): () => void {
    this.#asyncListeners.add(listener);
    return () => this.#asyncListeners.delete(listener);
  }

  extractState(id: number, held?: boolean, range?: { readonly offset: number; readonly length: number }): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new ClosedError('local channel'));
    return this.session.extractState(id, held, range);
  }

  recreateTransient(id: number, kind: string, related: readonly number[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('local channel'));
    return this.session.recreateTransient(id, kind, related);
  }

  async barrier(): Promise<void> {
    if (this.#closed) throw new ClosedError('local channel');
    await this.session.drained();
  }

  restoreState(id: number, bytes: Uint8Array, crc?: number, held?: boolean, offset?: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('local channel'));
    return this.session.restoreState(id, bytes, crc, held, offset);
  }

  onEvent(listener: (event: EventFrame) => void): () => void {
    return this.session.onEvent(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.session.close();
    await this.#ownedWorker?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
