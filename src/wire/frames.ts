/**
 * The frames that carry calls between a guest and a worker. Values use only types every CBOR reader knows
 * (integers, floats, byte strings, text, arrays, maps, null, booleans), so a guest in C speaks the same protocol.
 * The wire document is docs/WIRE.md; the framing and codec arrive with the remote transports.
 */
import type { WireError } from '../errors.js';

/** A value inside a frame. */
export type WireValue =
  | null | boolean | number | bigint | string | Uint8Array
  | readonly WireValue[]
  | { readonly [key: string]: WireValue };

/**
 * One call. `args` has one entry per C argument, in C order; what each entry holds depends on the argument's role
 * (see docs/WIRE.md): handles are ids, out-arguments are `true`/null (requested or NULL) or, for new handles, the
 * id the guest issues, buffers are byte strings. `retId` is the id the guest issues for a returned handle.
 */
export interface CallFrame {
  readonly seq: number;
  readonly fn: string;
  readonly args: readonly WireValue[];
  readonly retId?: number | null;
}

/** The answer to one call: its return value and out-arguments by name, or an error. */
export interface ReplyFrame {
  readonly seq: number;
  readonly ret?: WireValue;
  readonly outs?: { readonly [name: string]: WireValue };
  readonly error?: WireError;
}

/** A callback the native library made, delivered to the guest that registered it. */
export interface EventFrame {
  readonly callback: number;
  readonly args: readonly WireValue[];
}
