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
 * this call; the worker answers it only when it fails.
 */
export interface CallFrame {
  readonly t?: 'call';
  readonly seq: number;
  readonly fn: string;
  readonly args: readonly WireValue[];
  readonly retId?: number | null;
  readonly async?: boolean;
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
  readonly op: 'extract' | 'restore' | 'ping' | 'close' | 'recreate';
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
export type GuestFrame = HelloFrame | (CallFrame & { readonly t: 'call' }) | BatchFrame | ControlFrame | AssignFrame;
/** Every frame workers and managers send. */
export type WorkerFrame = WelcomeFrame | (ReplyFrame & { readonly t: 'reply' }) | (EventFrame & { readonly t: 'event' }) | ControlReplyFrame | ErrorFrame | AssignedFrame;
/** Any frame. */
export type Frame = GuestFrame | WorkerFrame;
