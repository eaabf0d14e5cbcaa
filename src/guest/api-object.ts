/**
 * Builds an API object (one async function per spec function) around a way of sending encoded calls. The
 * guestlib proxy sends them through a session; the direct native binding executes them in-process.
 */
import { UnsupportedError } from '../errors.js';
import type { ApiSpec, FunctionSpec } from '../spec/types.js';
import type { ReplyFrame, WireValue } from '../wire/frames.js';
import { planOf } from '../spec/plan.js';
import type { ApiFunction, ApiObject, CallResult } from './call-shape.js';
import type { EncodedCall, HandleCodec } from './encode.js';
import { decodeReply, encodeCall } from './encode.js';
import type { HandleCache } from './handle.js';
import { Handle } from './handle.js';
import type { StatusMode } from './status.js';
import { checkStatus, resultOfError } from './status.js';

/** Sends one encoded call and resolves with its reply. */
export type SendCall = (f: FunctionSpec, encoded: EncodedCall, beforeMarshal: number | undefined) => Promise<ReplyFrame>;

/**
 * Sends a call without waiting (see `GuestSession.post`); absent where calls always wait. The application gets the
 * result the call is known to have when it succeeds; a failure surfaces at the next waiting call.
 */
export type PostCall = (f: FunctionSpec, encoded: EncodedCall, beforeMarshal: number | undefined) => void;

/** Runs after a call succeeded, before its result reaches the application (host-memory mirrors use it). */
export type AfterCall = (f: FunctionSpec, encoded: EncodedCall, result: CallResult) => Promise<void> | undefined;

/** Runs before an encoded call is sent (host-memory mirrors push the application's writes first). */
export type BeforeCall = (f: FunctionSpec, encoded: EncodedCall) => Promise<void> | undefined;

/** What {@link buildApiObject} runs around each call besides sending it. */
export interface ApiHooks {
  readonly before?: BeforeCall;
  readonly after?: AfterCall;
  /** Where present, calls the spec allows to go without waiting are posted. */
  readonly post?: PostCall;
  /** The time the call started, when someone observes calls. */
  readonly stamp?: () => number | undefined;
}

/** Makes the frozen API object of `spec`. */
export function buildApiObject(spec: ApiSpec, codec: HandleCodec, mode: StatusMode, send: SendCall, hooks: ApiHooks = {}): ApiObject {
  const { before, after, post, stamp = () => undefined } = hooks;
  const api: Record<string, ApiFunction> = {};
  for (const f of spec.functions) {
    if (f.unsupported !== undefined) {
      const reason = f.unsupported;
      api[f.name] = () => Promise.reject(new UnsupportedError(f.name, reason));
      continue;
    }
    if (post && mode === 'throw' && planOf(f).asyncEligible) {
      api[f.name] = async (...args: unknown[]): Promise<CallResult> => {
        const beforeMarshal = stamp();
        // Input bytes are copied: the application may reuse its arrays as soon as the call returns.
        const encoded = encodeCall(f, args, codec, { copyInputs: true });
        const ready = before?.(f, encoded);
        if (ready) await ready;
        post(f, encoded, beforeMarshal);
        const result = decodeReply(f, encoded, expectedReply(spec, f, encoded), codec);
        const pending = after?.(f, encoded, result);
        if (pending) await pending;
        return result;
      };
      continue;
    }
    api[f.name] = async (...args: unknown[]): Promise<CallResult> => {
      const beforeMarshal = stamp();
      const encoded = encodeCall(f, args, codec);
      const ready = before?.(f, encoded);
      if (ready) await ready;
      const reply = await send(f, encoded, beforeMarshal);
      if (reply.error) return resultOfError(spec, f, reply.error, mode);
      const result = checkStatus(spec, f, decodeReply(f, encoded, reply, codec), mode);
      const pending = after?.(f, encoded, result);
      if (pending) await pending;
      return result;
    };
  }
  return Object.freeze(api);
}

/** The reply an asynchronous call has when it succeeds: success status, the guest-issued handle ids. */
function expectedReply(spec: ApiSpec, f: FunctionSpec, encoded: EncodedCall): ReplyFrame {
  const outs: Record<string, WireValue> = {};
  f.args.forEach((a, i) => {
    if (a.role === 'errcode') outs[a.name] = spec.status.success;
    else if (a.role === 'handleOut') outs[a.name] = encoded.args[i] ?? null;
  });
  const ret = f.returns.role === 'status' ? spec.status.success : f.returns.role === 'handle' ? encoded.retId : null;
  return { seq: -1, ret, outs };
}

/** The handle in 8-byte slot `index` of an info value (ids when remoted, pointers when native); null for 0. */
export function handleInInfo(cache: HandleCache, kind: string, bytes: ArrayBufferView, index = 0): Handle | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (8 * index + 8 > view.byteLength) return null;
  const id = Number(view.getBigInt64(8 * index, true));
  return id === 0 ? null : cache.get(kind, id);
}
