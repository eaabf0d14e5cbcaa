/**
 * The JavaScript calling convention of an API object (guestlib proxy, direct native binding, or a model):
 * the C arguments in C order, except the pure out-arguments (`errcode_ret`, scalar outs such as
 * `param_value_size_ret`, scalar-array outs, and non-optional handle outs), which come back in `outs`.
 *
 * - scalars: number (or BigInt for 64-bit values); handles: {@link Handle} or null;
 * - input bytes: any ArrayBufferView; output bytes and info values: an ArrayBufferView to fill, or null;
 * - optional handle outs (an enqueue's `event`) and handle-array outs: `true` to ask for them, null for NULL;
 * - `clSetKernelArg`-style values: a Handle, an ArrayBufferView, or null for local memory;
 * - callbacks: a function or null; user data: any value, handed back to the callback.
 *
 * Every function resolves to a {@link CallResult}.
 */

/** What a call resolves to. */
export interface CallResult {
  /** The C return value: a status or scalar number, a Handle, a Mapping, or undefined for void. */
  readonly ret: unknown;
  /** Out-arguments by C parameter name. */
  readonly outs: Readonly<Record<string, unknown>>;
}

/** An API function of an API object. */
export type ApiFunction = (...args: unknown[]) => Promise<CallResult>;

/** An API object: one async function per spec function. */
export type ApiObject = Readonly<Record<string, ApiFunction>>;

export { takesPosition } from '../spec/plan.js';
