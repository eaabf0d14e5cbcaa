/**
 * The API's status convention applied to results: a failure status, returned or stored through `errcode_ret`,
 * becomes one {@link ApiStatusError} with the numeric code and its name; or, in `return` mode, stays a value.
 */
import { ApiStatusError, fromWireError } from '../errors.js';
import type { WireError } from '../errors.js';
import { statusName } from '../spec/define.js';
import { planOf } from '../spec/plan.js';
import type { ApiSpec, FunctionSpec } from '../spec/types.js';
import type { CallResult } from './call-shape.js';

/**
 * `throw` (default): failures reject with {@link ApiStatusError} (or the handle error the worker reported).
 * `return`: failures resolve like native calls do, with the status in `ret` or `errcode_ret`.
 */
export type StatusMode = 'throw' | 'return';

/** Throws for a failure status in `result` (mode `throw`); returns it unchanged otherwise. */
export function checkStatus(spec: ApiSpec, f: FunctionSpec, result: CallResult, mode: StatusMode): CallResult {
  if (mode === 'return') return result;
  const success = spec.status.success;
  let status: unknown = success;
  if (f.returns.role === 'status') status = result.ret;
  const errcode = planOf(f).errcode;
  if (errcode >= 0 && status === success && result.outs[f.args[errcode]!.name] !== undefined) status = result.outs[f.args[errcode]!.name];
  if (typeof status === 'number' && status !== success) throw new ApiStatusError(f.name, status, statusName(spec, status));
  return result;
}

/**
 * A worker error as the application sees it. In `return` mode, a handle error that carries the API's own status
 * for an invalid object resolves as that status (what the native library says for a bad handle); every other
 * error rejects.
 */
export function resultOfError(spec: ApiSpec, f: FunctionSpec, error: WireError, mode: StatusMode): CallResult {
  const status = error.details?.status;
  if (mode === 'return' && typeof status === 'number' && error.name === 'HandleError') {
    const errcode = f.args.find((a) => a.role === 'errcode');
    const outs: Record<string, unknown> = errcode ? { [errcode.name]: status } : {};
    return { ret: f.returns.role === 'status' ? status : f.returns.role === 'void' ? undefined : null, outs };
  }
  throw fromWireError(error);
}
