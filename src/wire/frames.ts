/**
 * The frames that travel between a guest and a worker. Values use only types every CBOR reader knows
 * (integers, floats, byte strings, text, arrays, maps, null, booleans), so a guest written in C speaks the same
 * protocol. docs/WIRE.md is the reference; `t` tells the frame type.
 */
import type { WireError } from '../errors.js';

/** The protocol version a hello carries; a peer with another version is refused. */
export const PROTOCOL_VERSION = 1;

/** A value inside a frame. */
export type WireValue =
  | null | boolean | number | bigint | string | Uint8Array
  | readonly WireValue[]
  | { readonly [key: string]: WireValue };

/**
 * One call. `args` has one entry per C argument, in C order; what each entry holds depends on the argument's role
 * (docs/WIRE.md). `retId` is the id the guest issues for a returned handle. `async`: the guest does not wait for
 * this call; the worker answers it only when it fails. `deliver`: for a function the spec marks `deferred` called
 * without blocking, the worker answers once the call is enqueued and sends the bytes it reads later, when they are
 * there, as an event frame with this callback id (see docs/WIRE.md).
 */
export interface CallFrame {
  readonly t?: 'call';
  readonly seq: number;
  readonly fn: string;
  readonly args: readonly WireValue[];
  readonly retId?: number | null;
  readonly async?: boolean;
  readonly deliver?: number;
  /**
   * Only on an asynchronous call: the same call was made `repeat` more times right after it (to a worker: seqs
   * `seq + 1` to `seq + repeat`; from a C front, whose asynchronous seqs ava-guestd does not use, any). Each is still a
   * call of its own (counted, journaled, answered if it fails); the copies are just not sent, nor decoded. See repeat.ts.
   */
  readonly repeat?: number;
}

/** Worker-side timestamps of a call (ms since the epoch, µs resolution): AvA's stages 3 to 6. */
export interface WorkerTimings {
  readonly afterReceiveCommand: number;
  readonly afterUnmarshal: number;
  readonly afterExecution: number;
  readonly afterMarshal: number;
}

/** The answer to one call: its return value and out-arguments by name, or an error. */
export interface ReplyFrame {
  readonly t?: 'reply';
  readonly seq: number;
  readonly ret?: WireValue;
  readonly outs?: { readonly [name: string]: WireValue };
  readonly error?: WireError;
  readonly timings?: WorkerTimings;
  /** Set on the reply to a failed asynchronous call, so the guest can name the call without remembering it. */
  readonly fn?: string;
}

/** A callback the native library made, delivered to the guest that registered it. */
export interface EventFrame {
  readonly t?: 'event';
  readonly callback: number;
  readonly args: readonly WireValue[];
}

/** Opens a session: the first frame a guest sends on a connection. */
export interface HelloFrame {
  readonly t: 'hello';
  readonly v: number;
  readonly spec: string;
  readonly hash: string;
  readonly session: string;
  /** Required by tcp listeners; compared in constant time. */
  readonly token?: string;
}

/** The worker's answer to a hello. */
export interface WelcomeFrame {
  readonly t: 'welcome';
  readonly v: number;
  readonly worker: string;
  readonly session: string;
}

/** Several calls in one frame (asynchronous calls gathered by the guest). */
export interface BatchFrame {
  readonly t: 'batch';
  readonly calls: readonly CallFrame[];
}

/** A request outside the API: explicit state, liveness, closing. */
export interface ControlFrame {
  readonly t: 'control';
  readonly id: number;
  readonly op: 'extract' | 'restore' | 'ping' | 'close' | 'recreate' | 'intake' | 'send';
  readonly handle?: number;
  readonly bytes?: Uint8Array;
  /** For `restore`: CRC-32 of `bytes`; the worker reads the object back after writing and compares. */
  readonly crc?: number;
  /** The application released the object, but a live object holds it (so its state still counts). */
  readonly held?: boolean;
  /** For `extract` and `restore` of a chunk: where it starts in the object's state, and (extract) its largest size. */
  readonly offset?: number;
  readonly length?: number;
  /** For `recreate`: the handle kind, and the ids of the handle arguments of the call that made the original. */
  readonly kind?: string;
  readonly related?: readonly number[];
  /**
   * For `send`: the target worker's listening address (`unix:<path>` or `tcp:<host>:<port>`), the token that worker
   * wants (tcp), the one-time intake token its session issued (`intake` op), what to copy, and the chunk size.
   */
  readonly address?: string;
  readonly token?: string;
  readonly intake?: string;
  readonly objects?: readonly StateCopyItem[];
  readonly chunk?: number;
  /**
   * For `send` while the application keeps running (pre-copy's live phase): an object it released meanwhile is
   * skipped and named in the answer's `skipped`, instead of failing the copy.
   */
  readonly skipReleased?: boolean;
}

/**
 * One object whose explicit state a `send` control moves: its id, whether a live object holds it after its release,
 * and the byte ranges to copy (`[offset, size]`, merged and sorted); without ranges, all of it.
 */
export interface StateCopyItem {
  readonly id: number;
  readonly held?: boolean;
  readonly ranges?: readonly (readonly [number, number])[];
}

/**
 * Opens a state stream: the first frame a source worker sends to a target worker when it moves explicit state
 * straight there (see docs/WIRE.md). After the target's `welcome`, the connection carries raw state chunks.
 */
export interface StateHelloFrame {
  readonly t: 'stateHello';
  readonly v: number;
  /** The one-time token the target session issued for this copy. */
  readonly intake: string;
  /** The target worker's own token, where it wants one (tcp). */
  readonly token?: string;
}

/** A chunk of one object's explicit state on a state stream; `n` raw bytes follow the frame. */
export interface StateChunkFrame {
  readonly t: 'stateChunk';
  readonly id: number;
  readonly offset: number;
  readonly n: number;
  /** CRC-32 of the bytes, taken at extraction; the target reads the object back and compares. */
  readonly crc: number;
  readonly held?: boolean;
}

/**
 * The end of a state stream (source: what it sent) and the target's answer once every chunk is restored and checked
 * (what it received). As the bytes of a `send` control's reply, also the source's time spent reading state (`ms`).
 */
export interface StateDoneFrame {
  readonly t: 'stateDone';
  readonly objects: number;
  readonly bytes: number;
  readonly ms?: number;
  /** Objects skipped because the application released them during the copy (see `ControlFrame.skipReleased`). */
  readonly skipped?: readonly number[];
}

/** The answer to a control frame. */
export interface ControlReplyFrame {
  readonly t: 'controlReply';
  readonly id: number;
  readonly bytes?: Uint8Array;
  readonly error?: WireError;
}

/** A connection-level error; the sender closes the connection after it. */
export interface ErrorFrame {
  readonly t: 'error';
  readonly error: WireError;
}

/** A guest asks a manager for a worker of a spec. */
export interface AssignFrame {
  readonly t: 'assign';
  readonly v: number;
  readonly spec: string;
  readonly hash: string;
  readonly session: string;
  readonly token?: string;
}

/** The manager's answer: where the worker listens and the token it wants. */
export interface AssignedFrame {
  readonly t: 'assigned';
  readonly address: string;
  readonly worker: string;
  readonly token?: string;
}

/** Every frame guests send. */
export type GuestFrame = HelloFrame | (CallFrame & { readonly t: 'call' }) | BatchFrame | ControlFrame | AssignFrame | StateHelloFrame | StateChunkFrame | StateDoneFrame;
/** Every frame workers and managers send. */
export type WorkerFrame = WelcomeFrame | (ReplyFrame & { readonly t: 'reply' }) | (EventFrame & { readonly t: 'event' }) | ControlReplyFrame | ErrorFrame | AssignedFrame;
/** Any frame. */
export type Frame = GuestFrame | WorkerFrame;
