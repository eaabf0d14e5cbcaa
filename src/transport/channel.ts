/**
 * The one interface every transport implements (local now; shm, unix and tcp with remoting). A channel carries
 * call frames of one session to its worker and replies and callback events back.
 */
import type { ApiSpec } from '../spec/types.js';
import type { CallFrame, EventFrame, ReplyFrame, StateCopyItem } from '../wire/frames.js';

/** Where another worker can stream explicit state into a session: its worker's address and token, and a one-time intake token. */
export interface StateIntake {
  /** `unix:<path>` or `tcp:<host>:<port>`. */
  readonly address: string;
  readonly token?: string;
  readonly intake: string;
}

/**
 * What a worker-to-worker state copy did: objects and bytes, the source's time spent reading them out, and the objects
 * skipped because the application released them meanwhile.
 */
export interface StateSent {
  readonly objects: number;
  readonly bytes: number;
  readonly extractMs: number;
  readonly skipped: readonly number[];
}

/** What a channel can do, so callers ask instead of sniffing. */
export interface ChannelSupports {
  /** Guest and worker share memory: byte arrays cross without copies. */
  readonly zeroCopy: boolean;
  /** The worker runs in another process. */
  readonly crossProcess: boolean;
}

/** A connection of one guest session to its worker session. */
export interface Channel extends AsyncDisposable {
  /** `local`, `shm`, `unix` or `tcp`. */
  readonly kind: string;
  /** The spec both ends speak (checked when the channel opened: same name and hash). */
  readonly spec: ApiSpec;
  readonly supports: ChannelSupports;
  /** Sends a call; resolves with its reply (errors travel inside the reply). */
  call(frame: CallFrame): Promise<ReplyFrame>;
  /**
   * Sends asynchronous calls (`async: true`) without waiting: the worker runs them in order before any later call
   * and answers only those that fail, through {@link onAsyncFailure}.
   */
  post(frames: readonly CallFrame[]): void;
  /** Subscribes to the failure replies of asynchronous calls. */
  onAsyncFailure(listener: (reply: ReplyFrame) => void): () => void;
  /** Reads the explicit state (e.g. a buffer's bytes) of one of the session's handles, after the calls sent before. */
  extractState(id: number, held?: boolean, range?: { readonly offset: number; readonly length: number }): Promise<Uint8Array>;
  /**
   * Writes explicit state read by {@link extractState} into a handle of the same shape, after the calls sent before.
   * With `crc` (CRC-32 of the bytes taken at extraction) the worker reads the object back and refuses a mismatch
   * (`ERR_AVA_STATE_CHECKSUM`). `held` (both): the application released the object but a live object holds it.
   * `range` / `offset`: one chunk of the state (kinds without chunked access give their whole state as chunk 0).
   */
  restoreState(id: number, bytes: Uint8Array, crc?: number, held?: boolean, offset?: number): Promise<void>;
  /**
   * Optional: a one-time intake through which another worker streams explicit state into this session; `undefined`
   * when this channel's worker cannot be reached by another (it runs inside the guest's process).
   */
  openStateIntake?(): Promise<StateIntake | undefined>;
  /**
   * Optional: has this channel's worker stream the state of `objects` straight into the session that issued `intake`
   * (chunks written and checked there as by {@link restoreState}), after the calls sent before. `skipReleased`: while
   * the application keeps running, objects it released meanwhile are skipped (and named) instead of failing the copy.
   * @throws `ERR_AVA_CONNECT` when the worker cannot reach the address (nothing was written).
   */
  sendState?(intake: StateIntake, objects: readonly StateCopyItem[], options?: { readonly chunkBytes?: number; readonly skipReleased?: boolean }): Promise<StateSent>;
  /** Binds `id` to a new completed object of a transient kind (replay of an event), after the calls sent before. */
  recreateTransient(id: number, kind: string, related: readonly number[]): Promise<void>;
  /**
   * Resolves once the worker has run every call sent before (asynchronous ones included), so that their failures
   * have been reported.
   */
  barrier(): Promise<void>;
  /** Subscribes to callback events; returns the unsubscribe function. */
  onEvent(listener: (event: EventFrame) => void): () => void;
  /** Ends the session on the worker and frees the channel. */
  close(): Promise<void>;
}
