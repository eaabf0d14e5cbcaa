/**
 * Per-function facts derived once from a spec and cached (argument positions, name lookup), so the hot path of a
 * call allocates nothing for them.
 */
import type { ArgSpec, FunctionSpec } from './types.js';

/** Derived facts of one function. */
export interface FunctionPlan {
  /** C argument index by name. */
  readonly indexOf: ReadonlyMap<string, number>;
  /** `fn(arg)` of each argument, for error messages (made once, not per call). */
  readonly labels: readonly string[];
  /** For each C argument, its index among the JavaScript arguments, or -1 for pure outs. */
  readonly positions: readonly number[];
  /** Number of JavaScript arguments. */
  readonly arity: number;
  /** Index of the `errcode` argument, or -1. */
  readonly errcode: number;
  /** Index of the `size_t` scalar out (an info query's `param_value_size_ret`), or -1. */
  readonly sizeRet: number;
  /**
   * The call can be sent without waiting: it changes state or enqueues work, and everything it gives back is known
   * to the guest in advance (a status expected to be success, handles with guest-issued ids).
   */
  readonly asyncEligible: boolean;
}

/**
 * The handle kind of mapped regions (a `mapped` return's `{id, bytes}`, ended by the `mapped` argument of an unmap):
 * not a kind of the API, but tracked like one by the worker's handle table and the journal's graph.
 */
export const MAPPED_KIND = '__mapped';

const ASYNC_CLASSES: ReadonlySet<string> = new Set(['create', 'configure', 'retain', 'release', 'transfer', 'execute']);
const ASYNC_ROLES: ReadonlySet<ArgSpec['role']> = new Set([
  'scalar', 'count', 'handle', 'handles', 'handleOut', 'bufferIn', 'string', 'strings', 'scalars', 'properties',
  'errcode', 'argValue', 'callback', 'userData', 'mapped', 'struct',
]);

function asyncEligible(f: FunctionSpec): boolean {
  // A call whose failure matters to the program (a build) is answered at once, as the native call would be.
  return f.unsupported === undefined && !f.journalFailures && ASYNC_CLASSES.has(f.record) && ['void', 'status', 'handle'].includes(f.returns.role) &&
    f.args.every((a) => ASYNC_ROLES.has(a.role));
}

const PURE_OUT: ReadonlySet<ArgSpec['role']> = new Set(['errcode', 'scalarOut', 'scalarsOut']);

/** True when the argument takes a position in the JavaScript call (see src/guest/call-shape.ts). */
export function takesPosition(a: ArgSpec): boolean {
  if (PURE_OUT.has(a.role)) return false;
  return !(a.role === 'handleOut' && !a.optional);
}

const plans = new WeakMap<FunctionSpec, FunctionPlan>();

/** The cached plan of `f`. */
export function planOf(f: FunctionSpec): FunctionPlan {
  let plan = plans.get(f);
  if (!plan) {
    let next = 0;
    const positions = f.args.map((a) => (takesPosition(a) ? next++ : -1));
    plan = {
      indexOf: new Map(f.args.map((a, i) => [a.name, i])),
      labels: f.args.map((a) => `${f.name}(${a.name})`),
      positions,
      arity: next,
      errcode: f.args.findIndex((a) => a.role === 'errcode'),
      sizeRet: f.args.findIndex((a) => a.role === 'scalarOut' && a.type === 'size'),
      asyncEligible: asyncEligible(f),
    };
    plans.set(f, plan);
  }
  return plan;
}

/**
 * True when `f` is `deferred` (see `FunctionSpec.deferred`) and this call's blocking argument (in `args`, the call's
 * wire values) is 0: the transfer may complete after the call returns.
 */
export function deferredWithoutBlocking(f: FunctionSpec, args: readonly unknown[]): boolean {
  if (!f.deferred) return false;
  const v = args[planOf(f).indexOf.get(f.deferred.blocking)!];
  return !(v === true || (typeof v === 'number' && v !== 0) || (typeof v === 'bigint' && v !== 0n));
}
