/**
 * Whether a call failed, by the spec's status convention: an error reply, a failing returned status, or a failing
 * `errcode_ret`. Used by workers (to answer failed asynchronous calls) and by the journal (to keep only calls that
 * changed state).
 */
import type { ReplyFrame } from '../wire/frames.js';
import { planOf } from './plan.js';
import type { ApiSpec, FunctionSpec } from './types.js';

/** True when a failed call's status is one the spec says still changed state (`journalFailures`). */
export function keptFailure(f: FunctionSpec, reply: Pick<ReplyFrame, 'error' | 'ret'>): boolean {
  return !reply.error && typeof reply.ret === 'number' && (f.journalFailures ?? []).includes(reply.ret);
}

/** True when `reply` reports that call `fn` failed. */
export function callFailed(spec: ApiSpec, fn: string, reply: Pick<ReplyFrame, 'error' | 'ret' | 'outs'>): boolean {
  if (reply.error) return true;
  const f = spec.fn.get(fn);
  if (!f) return true;
  const success = spec.status.success;
  if (f.returns.role === 'status' && reply.ret !== success) return true;
  const errcode = planOf(f).errcode;
  if (errcode >= 0) {
    const v = reply.outs?.[f.args[errcode]!.name];
    if (v !== undefined && v !== success) return true;
  }
  return false;
}
