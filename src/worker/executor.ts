/**
 * Executes one call: turns a call frame's wire values into native arguments by the spec's argument roles, calls
 * the library, and turns what it returned and wrote into a reply. Nothing from the wire is trusted: every value is
 * type- and size-checked here, and a bad one is a coded error, never a crash.
 */
import koffi from 'koffi';
import { BadCallError, HandleError, toWireError, UnsupportedError } from '../errors.js';
import { evalLength, splitLengthName } from '../spec/length.js';
import { deferredWithoutBlocking, MAPPED_KIND, planOf } from '../spec/plan.js';
import { wallClock } from '../wire/clock.js';
import { reclaimBefore } from '../wire/reclaim.js';
import type { ApiSpec, ArgSpec, DeferredTransfer, EventCompletion, FunctionSpec, ScalarType } from '../spec/types.js';
import type { CallFrame, ReplyFrame, WireValue } from '../wire/frames.js';
import type { NativeFunction, NativeLibrary } from './native-library.js';
import { SCALAR_SIZE } from './native-library.js';

/** How the executor maps ids to native pointers: the session's handle table, or identity for direct native use. */
export interface HandleResolver {
  resolve(id: unknown, kind: string, where: string): number;
  bind(id: unknown, kind: string, ptr: number, refcounted: boolean): number;
  checkNewId(id: unknown, kind: string): void;
  checkNewIds(ids: readonly unknown[], kind: string): void;
  idOf(kind: string, ptr: number): number;
  kindOf(id: number): string | undefined;
  retain(id: number): void;
  release(id: number): boolean;
  drop(id: number): void;
  /** Records the attributes the call that made `id` set on it (`FunctionSpec.sets`). */
  setAttributes(id: number, values: Readonly<Record<string, number>>): void;
  /** An attribute of a bound id (undefined when unknown). */
  attribute(id: unknown, name: string): number | undefined;
}

/** Where native callbacks go: the session turns them into event frames for its guest. */
export interface CallbackSink {
  /** Makes a native function pointer that delivers `callbackId`'s calls; it is freed after its first call. */
  register(callbackId: number, proto: string, fn: string): unknown;
}

/** What one execution needs besides the frame. */
export interface ExecutionContext {
  readonly spec: ApiSpec;
  readonly library: NativeLibrary;
  readonly handles: HandleResolver;
  readonly callbacks?: CallbackSink;
  /** Info answers remembered for objects by handle id, keyed `fn:param` (see `StateContext.remember`). */
  readonly remembered?: ReadonlyMap<number, ReadonlyMap<string, Uint8Array>>;
}

/** Memory of mapped regions, keyed by their pointer; kept so an unmap can write the guest's bytes back. */

const mappedRegions = new Map<number, { address: bigint; length: number }>();

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function scalarValue(v: unknown, type: ScalarType, where: string): number | bigint {
  if (typeof v === 'bigint') {
    if (SCALAR_SIZE[type] !== 8 || type === 'float' || type === 'double') throw new BadCallError(`${where}: BigInt given for a ${type}`);
    return v;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new BadCallError(`${where}: expected a number for a ${type}, got ${typeof v}`);
  if (type !== 'float' && type !== 'double' && !Number.isInteger(v)) throw new BadCallError(`${where}: ${v} is not an integer`);
  return v;
}

const TWO_32 = 0x100000000;

/**
 * Writes a non-negative safe integer as a little-endian 64-bit value. Without a BigInt: sizes, handles and pointers
 * are written on every call, and a BigInt per value is a large part of a cheap call's cost.
 */
function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

/** Reads an unsigned 64-bit value: a number when exact, else a BigInt. */
function readU64(buf: Buffer, offset: number): number | bigint {
  const high = buf.readUInt32LE(offset + 4);
  return high < 0x200000 ? high * TWO_32 + buf.readUInt32LE(offset) : buf.readBigUInt64LE(offset);
}

function writeScalar(buf: Buffer, offset: number, type: ScalarType, value: number | bigint): void {
  switch (type) {
    case 'int8': buf.writeInt8(Number(value), offset); break;
    case 'uint8': buf.writeUInt8(Number(value), offset); break;
    case 'int16': buf.writeInt16LE(Number(value), offset); break;
    case 'uint16': buf.writeUInt16LE(Number(value), offset); break;
    case 'int32': buf.writeInt32LE(Number(value), offset); break;
    case 'uint32': buf.writeUInt32LE(Number(value), offset); break;
    case 'float': buf.writeFloatLE(Number(value), offset); break;
    case 'double': buf.writeDoubleLE(Number(value), offset); break;
    case 'int64':
      if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER) writeU64(buf, offset, value);
      else buf.writeBigInt64LE(BigInt(value), offset);
      break;
    default:
      if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER) writeU64(buf, offset, value);
      else buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value)), offset);
      break;
  }
}

/** Reads a scalar; 64-bit values come back as numbers when exact, else BigInt. */
export function readScalar(buf: Buffer, offset: number, type: ScalarType): number | bigint {
  switch (type) {
    case 'int8': return buf.readInt8(offset);
    case 'uint8': return buf.readUInt8(offset);
    case 'int16': return buf.readInt16LE(offset);
    case 'uint16': return buf.readUInt16LE(offset);
    case 'int32': return buf.readInt32LE(offset);
    case 'uint32': return buf.readUInt32LE(offset);
    case 'float': return buf.readFloatLE(offset);
    case 'double': return buf.readDoubleLE(offset);
    case 'int64': { const v = buf.readBigInt64LE(offset); return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
    default: return readU64(buf, offset);
  }
}

function readPointer(buf: Buffer, offset: number): number {
  const v = readU64(buf, offset);
  if (typeof v === 'bigint') throw new BadCallError(`native pointer 0x${v.toString(16)} does not fit a handle`);
  return v;
}

/**
 * A zero-filled buffer. Small ones come from Node's pool (`Buffer.alloc` skips the pool and costs ~0.2 µs, more than
 * the native call it feeds); they are cleared, so no byte of an earlier call or session can leak into a reply.
 */
function zeroed(n: number): Buffer {
  if (n <= 4096) return Buffer.allocUnsafe(n).fill(0);
  reclaimBefore(n); // a large read's destination: reuse the memory of the last one (see reclaim.ts)
  return Buffer.alloc(n);
}

/** The last input array built for each `scalars` argument, with its values. */
const lastScalars = new WeakMap<ArgSpec, { readonly values: readonly WireValue[]; readonly buf: Buffer }>();

/**
 * The native array of a `scalars` argument (an input the library only reads, such as a launch's global work size).
 * The same values as this argument's last call give the same buffer back: launch loops repeat their sizes, and a
 * buffer per launch is garbage per launch.
 */
function scalarsBuffer(a: Extract<ArgSpec, { role: 'scalars' }>, v: readonly WireValue[], n: number, label: string): Buffer {
  const last = lastScalars.get(a);
  if (last && last.values.length === n) {
    let same = true;
    for (let k = 0; k < n && same; k++) same = typeof v[k] === 'number' && v[k] === last.values[k];
    if (same) return last.buf;
  }
  const size = SCALAR_SIZE[a.type];
  const buf = zeroed(Math.max(size * n, size));
  for (let k = 0; k < n; k++) writeScalar(buf, size * k, a.type, scalarValue(v[k], a.type, `${label}[${k}]`));
  lastScalars.set(a, { values: v.slice(0, n), buf });
  return buf;
}

/** Bounds a length computed from untrusted arguments, so a forged size never makes the worker allocate wildly. */
const MAX_ARG_BYTES = 2 ** 30 - 2 ** 20; // what fits, with room to spare, in a reply frame (1 GiB)
function checkedLength(n: number, where: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ARG_BYTES) throw new BadCallError(`${where}: length ${n} out of range`);
  return n;
}

/** State carried from preparing a call to finishing it. */
interface Prepared {
  readonly native: unknown[];
  /** Out-argument buffers by argument index. */
  readonly outs: (Buffer | Buffer[] | null)[];
}

/** A read the worker enqueued without blocking (see `FunctionSpec.deferred`): its bytes go out once `event` completes. */
export interface DeferredDelivery {
  /** The callback id the caller gave (`CallFrame.deliver`); none for a write, whose bytes are only kept. */
  readonly deliver: number | undefined;
  /** The read's event (a pointer of the library). */
  readonly event: number;
  /** The worker made the event (the caller asked for none): only the worker holds it. */
  readonly ownEvent: boolean;
  /**
   * Where the library writes the bytes (reads from them, for a write), kept alive until the event completes; for a
   * map, a copy of the mapped memory made then.
   */
  readonly bytes: Uint8Array | (() => Buffer);
  readonly completion: EventCompletion;
}

/**
 * Prepares, runs and finishes one call. Returns a reply, or a promise of one for blocking functions (run on koffi's
 * thread pool so the event loop stays free). With `onDeferred`, a `deferred` function called without blocking by a
 * caller that asks for delivery is enqueued without blocking: the reply carries no bytes, `onDeferred` gets them.
 */
export function executeCall(ctx: ExecutionContext, frame: CallFrame, received?: number, onDeferred?: (d: DeferredDelivery) => void): ReplyFrame | Promise<ReplyFrame> {
  const fnSpec = ctx.spec.fn.get(frame.fn);
  if (!fnSpec) throw new BadCallError(`unknown function ${String(frame.fn)} for spec ${ctx.spec.name}`);
  if (fnSpec.unsupported !== undefined) throw new UnsupportedError(fnSpec.name, fnSpec.unsupported);
  if (!Array.isArray(frame.args) || frame.args.length !== fnSpec.args.length) {
    throw new BadCallError(`${fnSpec.name} takes ${fnSpec.args.length} arguments, the call has ${Array.isArray(frame.args) ? frame.args.length : 'none'}`);
  }
  const nativeFn = ctx.library.get(fnSpec.name);
  const prepared = prepare(ctx, fnSpec, frame);
  const answered = ctx.remembered && ctx.remembered.size > 0 ? rememberedAnswer(ctx, fnSpec, frame, prepared) : undefined;
  if (answered !== undefined) return finish(ctx, fnSpec, frame, prepared, answered);
  const deferred = fnSpec.deferred;
  if (deferred && onDeferred && deferredWithoutBlocking(fnSpec, frame.args) &&
      (frame.deliver !== undefined || (deferred.data !== undefined && fnSpec.args[planOf(fnSpec).indexOf.get(deferred.data)!]!.role === 'bufferIn'))) {
    return runDeferred(ctx, fnSpec, deferred, frame, prepared, nativeFn as NativeFunction, onDeferred);
  }
  if (received === undefined && !fnSpec.blocking) {
    const result = (nativeFn as NativeFunction)(...prepared.native);
    // A posted call that gives back nothing but its status (a launch without an event): success needs no reply.
    if (frame.async && result === ctx.spec.status.success && givesBackOnlyStatus(fnSpec, frame)) return { seq: frame.seq, ret: result };
    return finish(ctx, fnSpec, frame, prepared, result);
  }
  const afterUnmarshal = received === undefined ? 0 : wallClock();
  const done = (result: unknown): ReplyFrame => {
    const afterExecution = received === undefined ? 0 : wallClock();
    const reply = finish(ctx, fnSpec, frame, prepared, result);
    if (received === undefined) return reply;
    return { seq: reply.seq, ret: reply.ret, outs: reply.outs, timings: { afterReceiveCommand: received, afterUnmarshal, afterExecution, afterMarshal: wallClock() } };
  };
  if (fnSpec.blocking) {
    return new Promise<ReplyFrame>((resolve, reject) => {
      nativeFn.async(...prepared.native, (error: unknown, result: unknown) => {
        // A turn later: callbacks the library fired from its own threads before the call returned (an event's
        // completion callback before clFinish returns, as PoCL does) reach this thread as libuv async handles too,
        // and libuv may run this completion first in the same turn; their event frames must go out before this reply
        // (the C front's clFinish returns once those callbacks have run). Seen 1 in 40 runs of finish_callbacks on
        // a loaded 2-core VM without it.
        setImmediate(() => {
          if (error) reject(error);
          else {
            try { resolve(done(result)); } catch (e) { reject(e); }
          }
        });
      });
    });
  }
  return done((nativeFn as NativeFunction)(...prepared.native));
}

/** A map enqueued without blocking: the reply names the mapping, its bytes are copied out once the event completes. */
function runDeferredMap(ctx: ExecutionContext, f: FunctionSpec, frame: CallFrame, p: Prepared, nativeFn: NativeFunction, own: Buffer | null, event: number, d: DeferredTransfer, onDeferred: (d: DeferredDelivery) => void): ReplyFrame {
  const result = nativeFn(...p.native) as bigint | null;
  const reply = finish(ctx, f, frame, p, result, true);
  const region = result ? mappedRegions.get(Number(result)) : undefined;
  const eventBuf = own ?? p.outs[event];
  if (region && eventBuf && !Array.isArray(eventBuf)) {
    const bytes = (): Buffer => Buffer.from(new Uint8Array(koffi.view(region.address, region.length)));
    onDeferred({ deliver: frame.deliver, event: readPointer(eventBuf, 0), ownEvent: own !== null, bytes, completion: d.completion });
  }
  return reply;
}

/** Roles of arguments a call only reads: nothing of them goes into a reply or the handle table after the call. */
const READ_ONLY_ROLES = new Set<ArgSpec['role']>(['scalar', 'count', 'handle', 'handles', 'bufferIn', 'string', 'strings', 'scalars', 'properties', 'argValue', 'struct', 'userData']);
const onlyStatus = new WeakMap<FunctionSpec, boolean>();

/**
 * True when a successful call of `f` that asks for none of its handle outs changes nothing {@link finish} tracks: a
 * status return, no target (retain, release), no attributes, and arguments that are read only or handle outs.
 */
function statusOnlyShape(f: FunctionSpec): boolean {
  let plain = onlyStatus.get(f);
  if (plain === undefined) {
    plain = f.returns.role === 'status' && f.target === undefined && f.sets === undefined &&
      f.args.every((a) => READ_ONLY_ROLES.has(a.role) || a.role === 'handleOut');
    onlyStatus.set(f, plain);
  }
  return plain;
}

/** True when this successful call of `f` changes nothing {@link finish} tracks (see {@link statusOnlyShape}). */
function givesBackOnlyStatus(f: FunctionSpec, frame: CallFrame): boolean {
  if (!statusOnlyShape(f)) return false;
  for (let i = 0; i < f.args.length; i++) if (f.args[i]!.role === 'handleOut' && frame.args[i] !== null && frame.args[i] !== undefined) return false;
  return true;
}

/** Binds the handle a call stored in a handle out-argument (`buf`) to the id the caller proposed; null for none. */
function bindHandleOut(ctx: ExecutionContext, a: Extract<ArgSpec, { role: 'handleOut' }>, id: WireValue | undefined, buf: Buffer | Buffer[] | null | undefined): number | null {
  if (!buf || Array.isArray(buf)) return null;
  const ptr = readPointer(buf, 0);
  // Every handle a call stores is counted (an enqueue's event too); interned kinds are never counted (bind knows).
  return ptr === 0 ? null : ctx.handles.bind(id, a.kind, ptr, true);
}

/** Roles of arguments a call in a burst may have: read only, or a handle it makes (an enqueue's event). */
const BURST_ROLES = new Set<ArgSpec['role']>([...READ_ONLY_ROLES, 'handleOut']);
/** What a burst needs to know of a function, worked out once (see {@link burstShapeOf}). */
interface BurstShape {
  /** Its handle out-arguments (an enqueue's event). */
  readonly handleOuts: readonly number[];
  /** The argument a release names, or -1. */
  readonly releases: number;
  /** A successful call changes nothing a reply tracks but the handles it was asked to make ({@link statusOnlyShape}). */
  readonly statusOnly: boolean;
}
const burstShapes = new WeakMap<FunctionSpec, BurstShape | null>();

/** The burst shape of `f`, or null when it may not run in a burst. */
function burstShapeOf(f: FunctionSpec): BurstShape | null {
  let shape = burstShapes.get(f);
  if (shape === undefined) {
    shape = f.unsupported === undefined && !f.blocking && f.deferred === undefined && f.returns.role === 'status' &&
      f.sets === undefined && f.args.every((a) => BURST_ROLES.has(a.role))
      ? {
        handleOuts: f.args.flatMap((a, i) => (a.role === 'handleOut' ? [i] : [])),
        releases: f.record === 'release' && f.target !== undefined ? planOf(f).indexOf.get(f.target)! : -1,
        statusOnly: statusOnlyShape(f),
      }
      : null;
    burstShapes.set(f, shape);
  }
  return shape;
}

/**
 * True when `frame` may run in a burst ({@link executeBurst}): a posted call of a supported function that neither
 * blocks nor defers, returns a status and sets no attributes, and whose arguments are read only or handles it makes.
 * Preparing such a call changes nothing; what running it changes in the handle table (a handle made, retained or
 * released) happens when its reply is built, in call order.
 */
export function burstable(ctx: ExecutionContext, frame: CallFrame): boolean {
  if (frame.async !== true || typeof frame.fn !== 'string' || !Array.isArray(frame.args)) return false;
  const f = ctx.spec.fn.get(frame.fn);
  return f !== undefined && frame.args.length === f.args.length && burstShapeOf(f) !== null;
}

/** Where a handle made earlier in a burst goes in a later call of it, once the call that makes it has run. */
interface PendingUse {
  /** The argument: its native value (offset -1) or an 8-byte slot of its native array. */
  readonly arg: number;
  readonly offset: number;
  /** The call of the burst that makes the handle, and its argument that receives the pointer. */
  readonly maker: number;
  readonly makerArg: number;
}

/** Numbers anywhere in a wire value (bytes and strings skipped): what might be a handle id. */
function someNumber(v: WireValue, test: (n: number) => boolean): boolean {
  if (typeof v === 'number') return test(v);
  if (Array.isArray(v)) return v.some((x) => someNumber(x, test));
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return Object.values(v).some((x) => someNumber(x as WireValue, test));
  return false;
}

/**
 * Runs the calls of `frames` from `from` on that are {@link burstable} as one burst, in order: prepares every one,
 * then calls the library for each back to back, then builds the replies (a reply per frame, as {@link executeCall}
 * would give). Returns a slot per frame it ran (at least `frames[from]`, which must be burstable): its reply, or
 * nothing for a call that succeeded and gives back only its status (no caller reads those).
 *
 * Why back to back: a library that hands work to threads of its own (PoCL runs kernels on a pool) wakes a sleeping
 * thread on an enqueue that comes after a pause, and finds it awake when enqueues come close together. Measured on
 * PoCL, with ~2 us of other work per call: 4.1 us per clEnqueueNDRangeKernel between the other work, 0.9 us back to
 * back.
 *
 * A handle made by a call of the burst (an event) may be named by a later one as a handle argument or in a handle
 * array of its kind (a release, a wait list): its pointer goes in once the maker has run. The burst ends before a
 * call that names such a handle any other way, names a handle released earlier in the burst (natively a use after
 * free; run alone it is refused as an unknown handle instead of reaching the library), or proposes an id the burst
 * already made or released.
 */
export function executeBurst(ctx: ExecutionContext, frames: readonly CallFrame[], from: number): (ReplyFrame | undefined)[] {
  const made = new Map<number, { maker: number; makerArg: number; kind: string }>();
  const released = new Set<number>();
  const touched = (n: number): boolean => made.has(n) || released.has(n);
  // Preparing resolves a handle made earlier in the burst to NULL; the pointer goes in before the call runs.
  const handles: HandleResolver = {
    resolve: (id, kind, where) => (typeof id === 'number' && made.has(id) ? 0 : ctx.handles.resolve(id, kind, where)),
    bind: (id, kind, ptr, refcounted) => ctx.handles.bind(id, kind, ptr, refcounted),
    checkNewId: (id, kind) => ctx.handles.checkNewId(id, kind),
    checkNewIds: (ids, kind) => ctx.handles.checkNewIds(ids, kind),
    idOf: (kind, ptr) => ctx.handles.idOf(kind, ptr),
    kindOf: (id) => ctx.handles.kindOf(id),
    retain: (id) => ctx.handles.retain(id),
    release: (id) => ctx.handles.release(id),
    drop: (id) => ctx.handles.drop(id),
    setAttributes: (id, values) => ctx.handles.setAttributes(id, values),
    attribute: (id, name) => ctx.handles.attribute(id, name),
  };
  const burstCtx: ExecutionContext = { ...ctx, handles };
  const fns: FunctionSpec[] = [];
  const shapes: BurstShape[] = [];
  const prepared: (Prepared | undefined)[] = [];
  const uses: (PendingUse[] | undefined)[] = [];
  const replies: (ReplyFrame | undefined)[] = [];

  for (let j = from; j < frames.length; j++) {
    const frame = frames[j]!;
    if (j > from && !burstable(ctx, frame)) break;
    const f = ctx.spec.fn.get(frame.fn)!;
    const k = j - from;
    let pending: PendingUse[] | undefined;
    if (made.size > 0 || released.size > 0) {
      let fits = true;
      for (let i = 0; i < f.args.length && fits; i++) {
        const a = f.args[i]!;
        const v = frame.args[i]!;
        if (a.role === 'handle' && typeof v === 'number' && made.get(v)?.kind === a.kind && !released.has(v)) {
          const { maker, makerArg } = made.get(v)!;
          (pending ??= []).push({ arg: i, offset: -1, maker, makerArg });
        } else if (a.role === 'handles' && Array.isArray(v)) {
          v.forEach((x, slot) => {
            if (typeof x !== 'number' || !touched(x)) return;
            const m = made.get(x);
            // A handle of another kind (a forged id) is refused when the call runs alone, not handed to the library.
            if (released.has(x) || m?.kind !== a.kind) fits = false;
            else (pending ??= []).push({ arg: i, offset: 8 * slot, maker: m.maker, makerArg: m.makerArg });
          });
        } else if (someNumber(v, touched)) {
          fits = false;
        }
      }
      if (!fits) break;
    }
    const shape = burstShapeOf(f)!;
    fns[k] = f;
    shapes[k] = shape;
    uses[k] = pending;
    try {
      // The same call again (the C front's repeat: one args object posted n times): its prepared native arguments
      // serve again, as nothing between the two calls can change what they resolve to and the library only reads
      // them (no handle asked for or released, no pointer put in later, no outs).
      const again = k > 0 && frames[j - 1]!.args === frame.args && fns[k - 1] === f && prepared[k - 1] !== undefined && !pending &&
        !uses[k - 1] && shape.releases < 0 && givesBackOnlyStatus(f, frame);
      const p = again ? prepared[k - 1]! : prepare(burstCtx, f, frame);
      prepared[k] = p;
      // Pointers only fit the slots this call's arrays have (a shorter count leaves later ids out).
      if (pending) uses[k] = pending.filter((u) => u.offset < 0 || (Buffer.isBuffer(p.native[u.arg]) && u.offset + 8 <= (p.native[u.arg] as Buffer).byteLength));
      for (const i of shape.handleOuts) {
        const id = frame.args[i];
        if (typeof id === 'number') made.set(id, { maker: k, makerArg: i, kind: (f.args[i] as Extract<ArgSpec, { role: 'handleOut' }>).kind });
      }
      if (shape.releases >= 0) {
        const target = frame.args[shape.releases];
        if (typeof target === 'number') released.add(target);
      }
    } catch (error) {
      replies[k] = { seq: frame.seq, error: toWireError(error) };
    }
  }
  const n = fns.length;
  const results: unknown[] = new Array(n);
  for (let k = 0; k < n; k++) {
    const p = prepared[k];
    if (!p) continue;
    try {
      for (const u of uses[k] ?? []) {
        const out = prepared[u.maker]?.outs[u.makerArg];
        const ptr = out && !Array.isArray(out) ? readPointer(out, 0) : 0;
        if (u.offset < 0) p.native[u.arg] = ptr;
        else writeU64(p.native[u.arg] as Buffer, u.offset, ptr);
      }
      results[k] = (ctx.library.get(fns[k]!.name) as NativeFunction)(...p.native);
    } catch (error) {
      prepared[k] = undefined;
      replies[k] = { seq: frames[from + k]!.seq, error: toWireError(error) };
    }
  }
  const success = ctx.spec.status.success;
  for (let k = 0; k < n; k++) {
    const p = prepared[k];
    if (!p) continue;
    const frame = frames[from + k]!;
    try {
      const shape = shapes[k]!;
      if (results[k] === success && shape.statusOnly) {
        // A posted call that succeeded and gives back only its status needs no reply: nothing reads it. What it
        // made (an enqueue's event) is bound, as finish would.
        for (const i of shape.handleOuts) {
          if (frame.args[i] !== null && frame.args[i] !== undefined) bindHandleOut(ctx, fns[k]!.args[i] as Extract<ArgSpec, { role: 'handleOut' }>, frame.args[i], p.outs[i]);
        }
        continue;
      }
      replies[k] = finish(ctx, fns[k]!, frame, p, results[k]);
    } catch (error) {
      replies[k] = { seq: frame.seq, error: toWireError(error) };
    }
  }
  replies.length = n;
  return replies;
}

/** Enqueues a deferred transfer without blocking and answers at once; its bytes go to `onDeferred` (see {@link executeCall}). */
function runDeferred(ctx: ExecutionContext, f: FunctionSpec, d: DeferredTransfer, frame: CallFrame, p: Prepared, nativeFn: NativeFunction, onDeferred: (d: DeferredDelivery) => void): ReplyFrame {
  const { indexOf } = planOf(f);
  const blocking = indexOf.get(d.blocking)!;
  const event = indexOf.get(d.event)!;
  p.native[blocking] = 0;
  const own = p.native[event] === null ? zeroed(8) : null;
  if (own) p.native[event] = own;
  if (d.data === undefined) return runDeferredMap(ctx, f, frame, p, nativeFn, own, event, d, onDeferred);
  const data = indexOf.get(d.data)!;
  let bytes: Uint8Array | Buffer[] | null;
  if (f.args[data]!.role === 'bufferIn') {
    // The library reads these bytes after the call returns: they are the call's own (a transport hands every frame
    // its own memory; the shared-memory ring copies each out), held here until the event completes. As natively, the
    // caller may not change them before then.
    bytes = p.native[data] as Uint8Array | null;
  } else {
    bytes = p.outs[data]!;
    p.outs[data] = null; // the reply carries no bytes: they are not there yet
  }
  const result = nativeFn(...p.native);
  const reply = finish(ctx, f, frame, p, result);
  const eventBuf = own ?? p.outs[event];
  if (Number(result) === ctx.spec.status.success && bytes && !Array.isArray(bytes) && eventBuf && !Array.isArray(eventBuf)) {
    onDeferred({ deliver: frame.deliver, event: readPointer(eventBuf, 0), ownEvent: own !== null, bytes, completion: d.completion });
  }
  return reply;
}

/**
 * An info query about an object whose answer was remembered at restore: fills the prepared outs as the library would
 * and returns the success status. Undefined (ask the library) when nothing is remembered or the caller's buffer is
 * too small (the library then reports the API's own error).
 */
function rememberedAnswer(ctx: ExecutionContext, f: FunctionSpec, frame: CallFrame, p: Prepared): number | undefined {
  const info = f.args.findIndex((a) => a.role === 'info');
  const target = f.args.findIndex((a) => a.role === 'handle');
  if (info < 0 || target < 0) return undefined;
  const a = f.args[info] as Extract<ArgSpec, { role: 'info' }>;
  const { indexOf, sizeRet } = planOf(f);
  const value = ctx.remembered!.get(frame.args[target] as number)?.get(`${f.name}:${String(frame.args[indexOf.get(a.param)!])}`);
  if (!value) return undefined;
  const out = p.outs[info];
  if (out && !Array.isArray(out)) {
    if (Number(frame.args[indexOf.get(a.size)!]) < value.byteLength) return undefined;
    out.set(value);
    p.outs[info] = out.subarray(0, value.byteLength);
  }
  const sizeOut = sizeRet >= 0 ? p.outs[sizeRet] : null;
  if (sizeOut && !Array.isArray(sizeOut)) writeScalar(sizeOut, 0, 'size', value.byteLength);
  return ctx.spec.status.success;
}

/**
 * How lengths read a call's values: arguments by name (`"arg.field"` for a struct field, whose wire value is the array
 * of field values), out-scalars from what the call stored once it ran (`outs`), handle attributes from the table.
 */
function lengthLookups(ctx: ExecutionContext, f: FunctionSpec, args: readonly WireValue[], outs?: readonly (Buffer | Buffer[] | null)[]) {
  const { indexOf } = planOf(f);
  const lookup = (name: string): unknown => {
    const { arg, field } = splitLengthName(name);
    const i = indexOf.get(arg)!;
    const a = f.args[i]!;
    if (field !== undefined) {
      const v = args[i];
      return a.role === 'struct' && Array.isArray(v) ? v[a.fields.findIndex((x) => x.name === field)] : undefined;
    }
    const out = outs?.[i];
    if (a.role === 'scalarOut') return out && !Array.isArray(out) ? readScalar(out, 0, a.type) : 0;
    return args[i];
  };
  const attribute = (of: string, attr: string): number | undefined => ctx.handles.attribute(args[indexOf.get(of)!], attr);
  return { lookup, attribute };
}

function prepare(ctx: ExecutionContext, f: FunctionSpec, frame: CallFrame): Prepared {
  const args = frame.args;
  const plan = planOf(f);
  const indexOf = plan.indexOf;
  const labels = plan.labels;
  if (f.returns.role === 'handle') ctx.handles.checkNewId(frame.retId, f.returns.kind);
  else if (f.returns.role === 'mapped') ctx.handles.checkNewId(frame.retId, MAPPED_KIND);
  const native: unknown[] = new Array(f.args.length);
  const outs: (Buffer | Buffer[] | null)[] = new Array(f.args.length).fill(null);
  let lookups: ReturnType<typeof lengthLookups> | undefined;
  const lookup = (name: string): unknown => (lookups ??= lengthLookups(ctx, f, args)).lookup(name);
  const len = (i: number, expr: Parameters<typeof evalLength>[0]): number => {
    // Most lengths name one argument holding a number (a count, a size): read it without the general lookups.
    if (typeof expr === 'string') {
      const j = indexOf.get(expr);
      const v = j === undefined || f.args[j]!.role === 'scalarOut' ? undefined : args[j];
      if (typeof v === 'number') return checkedLength(v, labels[i]!);
    }
    lookups ??= lengthLookups(ctx, f, args);
    return checkedLength(evalLength(expr, lookups.lookup, lookups.attribute), labels[i]!);
  };

  for (let i = 0; i < f.args.length; i++) {
    const a = f.args[i]!;
    const v = args[i];
    switch (a.role) {
      case 'scalar': {
        let value = a.workerValue ?? scalarValue(v, a.type, labels[i]!);
        if (a.rewrite && (BigInt(value) & BigInt(a.rewrite.ifSet)) !== 0n) {
          const next = (BigInt(value) & ~BigInt(a.rewrite.clear)) | BigInt(a.rewrite.set);
          value = typeof value === 'number' ? Number(next) : next;
        }
        native[i] = value;
        break;
      }
      case 'count': native[i] = scalarValue(v, a.type, labels[i]!); break;
      case 'handle':
        native[i] = v === null && a.nullable ? 0 : ctx.handles.resolve(v, a.kind, labels[i]!);
        break;
      case 'handles': {
        if (v === null) {
          if (!a.nullable && len(i, a.count) > 0) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
          break;
        }
        const n = len(i, a.count);
        if (!Array.isArray(v) || v.length < n) throw new BadCallError(`${labels[i]!}: expected an array of at least ${n} handle ids`);
        const buf = zeroed(Math.max(8 * n, 8));
        for (let k = 0; k < n; k++) writeU64(buf, 8 * k, ctx.handles.resolve(v[k], a.kind, `${labels[i]!}[${k}]`));
        native[i] = buf;
        break;
      }
      case 'handleOut':
        if (v === null || v === undefined) {
          if (!a.optional) throw new BadCallError(`${labels[i]!}: a handle id is required`);
          native[i] = null;
        } else {
          ctx.handles.checkNewId(v, a.kind);
          native[i] = outs[i] = zeroed(8);
        }
        break;
      case 'handlesOut': {
        if (v === null || v === undefined) { native[i] = null; break; }
        const n = len(i, a.capacity);
        if (!Array.isArray(v) || v.length < n) throw new BadCallError(`${labels[i]!}: expected ${n} proposed handle ids`);
        ctx.handles.checkNewIds(v.slice(0, n), a.kind);
        native[i] = outs[i] = zeroed(Math.max(8 * n, 8));
        break;
      }
      case 'bufferIn': {
        if (v === null) {
          if (!a.nullable) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
          break;
        }
        if (!isBytes(v)) throw new BadCallError(`${labels[i]!}: expected bytes`);
        const n = len(i, a.length);
        if (v.byteLength < n) throw new BadCallError(`${labels[i]!}: ${v.byteLength} bytes given, the call reads ${n}`);
        native[i] = v;
        break;
      }
      case 'bufferOut': {
        if (v === null || v === undefined) { native[i] = null; break; }
        const out = zeroed(len(i, a.length));
        if (a.preserve) {
          if (!isBytes(v) || v.byteLength !== out.byteLength) throw new BadCallError(`${labels[i]!}: expected the ${out.byteLength} bytes to preserve`);
          out.set(v);
        }
        native[i] = outs[i] = out;
        break;
      }
      case 'string':
        if (v === null) {
          if (!a.nullable) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
        } else if (typeof v === 'string') native[i] = Buffer.from(`${v}\0`, 'utf8');
        else throw new BadCallError(`${labels[i]!}: expected a string`);
        break;
      case 'strings': {
        if (v === null && a.nullable) { native[i] = null; break; }
        const n = len(i, a.count);
        if (!Array.isArray(v) || v.length < n) throw new BadCallError(`${labels[i]!}: expected ${n} strings or byte arrays`);
        const blobs = v.slice(0, n).map((s, k) => {
          if (typeof s === 'string') return Buffer.from(`${s}\0`, 'utf8');
          if (isBytes(s)) return Buffer.from(s.buffer, s.byteOffset, s.byteLength);
          throw new BadCallError(`${labels[i]!}[${k}]: expected a string or bytes`);
        });
        const table = zeroed(Math.max(8 * n, 8));
        blobs.forEach((b, k) => table.writeBigUInt64LE(b.byteLength === 0 ? 0n : koffi.address(b) as bigint, 8 * k));
        native[i] = table;
        outs[i] = blobs; // keeps the blobs alive through the call
        break;
      }
      case 'scalars': {
        if (v === null) {
          if (!a.nullable) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
          break;
        }
        const n = len(i, a.length);
        if (!Array.isArray(v) || v.length < n) throw new BadCallError(`${labels[i]!}: expected ${n} numbers`);
        native[i] = scalarsBuffer(a, v, n, labels[i]!);
        break;
      }
      case 'properties': {
        if (v === null) {
          if (!a.nullable) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
          break;
        }
        if (!Array.isArray(v) || v.length > 256) throw new BadCallError(`${labels[i]!}: expected a property list`);
        const size = SCALAR_SIZE[a.type];
        const buf = zeroed(size * (v.length + 1));
        for (let k = 0; k < v.length; k++) {
          const key = k % 2 === 1 ? v[k - 1] : undefined;
          const kind = key !== undefined ? a.handleKeys[String(key)] : undefined;
          const value = kind ? ctx.handles.resolve(v[k], kind, `${labels[i]!}[${k}]`) : scalarValue(v[k], a.type, `${labels[i]!}[${k}]`);
          writeScalar(buf, size * k, a.type, value);
        }
        native[i] = buf;
        break;
      }
      case 'scalarOut':
        native[i] = v === null || v === undefined ? null : (outs[i] = zeroed(SCALAR_SIZE[a.type]));
        break;
      case 'scalarsOut':
        native[i] = v === null || v === undefined ? null : (outs[i] = zeroed(Math.max(len(i, a.length) * SCALAR_SIZE[a.type], 1)));
        break;
      case 'errcode':
        native[i] = v === null || v === undefined ? null : (outs[i] = zeroed(SCALAR_SIZE[ctx.spec.status.type]));
        break;
      case 'info': {
        if (v === null || v === undefined) { native[i] = null; break; }
        const size = checkedLength(Number(scalarValue(lookup(a.size), 'size', labels[i]!)), labels[i]!);
        const sizesParam = a.pointerArrays?.[String(lookup(a.param))];
        if (sizesParam !== undefined) {
          native[i] = preparePointerArray(ctx, f, frame, a, i, Number(sizesParam), size, outs);
        } else {
          // Never a zero-length Buffer: koffi passes that as NULL, which would turn the call into a size probe.
          const buf = zeroed(Math.max(size, 1));
          native[i] = buf;
          outs[i] = size === 0 ? buf.subarray(0, 0) : buf;
        }
        break;
      }
      case 'argValue': {
        if (v === null) { native[i] = null; break; }
        const size = checkedLength(Number(scalarValue(lookup(a.size), 'size', labels[i]!)), labels[i]!);
        if (isBytes(v)) {
          if (v.byteLength < size) throw new BadCallError(`${labels[i]!}: ${v.byteLength} bytes given, the call reads ${size}`);
          native[i] = v;
          break;
        }
        const id = (v as { handle?: unknown }).handle;
        if (typeof v !== 'object' || typeof id !== 'number') throw new BadCallError(`${labels[i]!}: expected null, bytes or {handle: id}`);
        const kind = ctx.handles.kindOf(id);
        const details = a.invalidStatus === undefined ? { id } : { id, status: a.invalidStatus };
        if (kind === undefined) throw new HandleError('ERR_AVA_UNKNOWN_HANDLE', `${labels[i]!}: ${id} is not a handle of this session`, { details });
        if (!a.handleKinds.includes(kind)) throw new HandleError('ERR_AVA_HANDLE_KIND', `${labels[i]!}: handle ${id} is a ${kind}, not a ${a.handleKinds.join(' or ')}`, { details });
        let ptr: number;
        try {
          ptr = ctx.handles.resolve(id, kind, labels[i]!);
        } catch (error) {
          // A released object is never handed to the library (it may be freed memory); report the argument's status.
          throw new HandleError('ERR_AVA_STALE_HANDLE', (error as Error).message, { details });
        }
        const buf = zeroed(8);
        buf.writeBigUInt64LE(BigInt(ptr));
        native[i] = buf;
        break;
      }
      case 'callback':
        if (v === null || v === undefined || (!a.delivered && a.dropped)) native[i] = null;
        else if (!a.delivered) throw new UnsupportedError(f.name, `a non-NULL ${a.name} callback cannot be carried; pass NULL`);
        else if (typeof v !== 'number' || !ctx.callbacks) throw new BadCallError(`${labels[i]!}: expected a callback id`);
        else native[i] = ctx.callbacks.register(v, a.proto, f.name);
        break;
      case 'userData':
        native[i] = null;
        break;
      case 'mapped': {
        const m = v as { id?: unknown; bytes?: unknown } | null;
        if (!m || typeof m !== 'object') throw new BadCallError(`${labels[i]!}: expected a mapping {id, bytes}`);
        const ptr = ctx.handles.resolve(m.id, MAPPED_KIND, labels[i]!);
        const region = mappedRegions.get(ptr)!;
        if (m.bytes !== null && m.bytes !== undefined) {
          if (!isBytes(m.bytes) || m.bytes.byteLength !== region.length) throw new BadCallError(`${labels[i]!}: write-back must be ${region.length} bytes`);
          new Uint8Array(koffi.view(region.address, region.length)).set(m.bytes);
        }
        native[i] = region.address;
        break;
      }
      case 'struct': {
        if (v === null) {
          if (!a.nullable) throw new BadCallError(`${labels[i]!} may not be NULL`);
          native[i] = null;
          break;
        }
        if (!Array.isArray(v) || v.length !== a.fields.length) throw new BadCallError(`${labels[i]!}: expected ${a.fields.length} field values`);
        const buf = zeroed(a.size);
        a.fields.forEach((field, k) => {
          const where = `${labels[i]!}.${field.name}`;
          if (field.kind !== undefined) writeU64(buf, field.offset, v[k] === null ? 0 : ctx.handles.resolve(v[k], field.kind, where));
          else writeScalar(buf, field.offset, field.type!, scalarValue(v[k], field.type!, where));
        });
        native[i] = buf;
        break;
      }
    }
  }
  return { native, outs };
}

/** `CL_PROGRAM_BINARIES`-style values: ask for the blob sizes first, then hand the library a table of blob pointers. */
function preparePointerArray(
  ctx: ExecutionContext, f: FunctionSpec, frame: CallFrame, a: Extract<ArgSpec, { role: 'info' }>, i: number,
  sizesParam: number, size: number, outs: (Buffer | Buffer[] | null)[],
): Buffer {
  // The same call with the sizes parameter (it has the same element count: one size_t per blob).
  const probe = prepare(ctx, f, { ...frame, args: frame.args.map((v, k) => (f.args[k]!.name === a.param ? sizesParam : v)) });
  const status = ctx.library.get(f.name)(...probe.native);
  const sizes = probe.outs[i] as Buffer;
  const blobs: Buffer[] = [];
  const table = zeroed(Math.max(size, 8));
  for (let k = 0; k < Math.floor(size / 8); k++) {
    const n = status === ctx.spec.status.success ? checkedLength(Number(sizes.readBigUInt64LE(8 * k)), `${f.name}(${a.name})`) : 0;
    const blob = zeroed(n);
    blobs.push(blob);
    table.writeBigUInt64LE(n === 0 ? 0n : (koffi.address(blob) as bigint), 8 * k);
  }
  outs[i] = blobs;
  return table;
}

/** Builds the reply of a call that ran. `deferredMap`: a map not complete yet, answered with its id and length only. */
function finish(ctx: ExecutionContext, f: FunctionSpec, frame: CallFrame, p: Prepared, result: unknown, deferredMap = false): ReplyFrame {
  const success = ctx.spec.status.success;
  const outs: Record<string, WireValue> = {};
  let ret: WireValue = null;
  // Every handle a call stores is counted (an enqueue's event too); interned kinds are never counted (bind knows).
  const refcounted = true;

  switch (f.returns.role) {
    case 'void': break;
    case 'status': case 'scalar':
      ret = typeof result === 'bigint' && result <= BigInt(Number.MAX_SAFE_INTEGER) && result >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(result) : (result as number | bigint);
      break;
    case 'handle': {
      const ptr = Number(result);
      ret = ptr === 0 ? null : ctx.handles.bind(frame.retId, f.returns.kind, ptr, refcounted);
      if (ret !== null && f.sets) {
        const { lookup, attribute } = lengthLookups(ctx, f, frame.args);
        ctx.handles.setAttributes(ret, Object.fromEntries(Object.entries(f.sets).map(([attr, expr]) => [attr, evalLength(expr, lookup, attribute)])));
      }
      break;
    }
    case 'mapped': {
      const address = result as bigint | null;
      if (address === null || address === 0n) break;
      const { lookup, attribute } = lengthLookups(ctx, f, frame.args, p.outs);
      const length = checkedLength(evalLength(f.returns.length, lookup, attribute), f.name);
      const ptr = Number(address);
      mappedRegions.set(ptr, { address, length });
      const id = ctx.handles.bind(frame.retId, MAPPED_KIND, ptr, false);
      // A copy: the application may keep the bytes past the unmap, when the mapped memory is gone.
      ret = deferredMap ? { id, length } : { id, bytes: Buffer.from(new Uint8Array(koffi.view(address, length))) };
      break;
    }
  }
  const errcodeIndex = planOf(f).errcode;
  const errcodeBuf = errcodeIndex >= 0 ? p.outs[errcodeIndex] : null;
  const okStatus = (f.returns.role !== 'status' || ret === success) &&
    !(errcodeBuf && !Array.isArray(errcodeBuf) && readScalar(errcodeBuf, 0, ctx.spec.status.type) !== success);
  // What the library reports it wrote: info values are cut to the parameter's true size.
  const sizeRetIndex = planOf(f).sizeRet;
  const sizeRetBuf = sizeRetIndex >= 0 ? p.outs[sizeRetIndex] : null;
  const sizeRet = sizeRetBuf && !Array.isArray(sizeRetBuf) ? Number(readScalar(sizeRetBuf, 0, 'size')) : undefined;

  f.args.forEach((a, i) => {
    const buf = p.outs[i];
    switch (a.role) {
      case 'handleOut':
        if (buf && !Array.isArray(buf)) outs[a.name] = bindHandleOut(ctx, a, frame.args[i], buf);
        break;
      case 'handlesOut': {
        if (!buf || Array.isArray(buf)) break;
        const proposed = frame.args[i] as readonly unknown[];
        const ids: number[] = [];
        for (let k = 0; k < buf.byteLength / 8 && k < proposed.length; k++) {
          const ptr = readPointer(buf, 8 * k);
          if (ptr === 0) break;
          ids.push(ctx.handles.bind(proposed[k], a.kind, ptr, refcounted));
        }
        outs[a.name] = ids;
        break;
      }
      case 'bufferOut':
        // On failure the library wrote nothing: send nothing, so the caller's array keeps its bytes.
        if (buf && !Array.isArray(buf) && okStatus) outs[a.name] = buf;
        break;
      case 'scalarOut':
        if (buf && !Array.isArray(buf)) outs[a.name] = readScalar(buf, 0, a.type);
        break;
      case 'scalarsOut':
        if (buf && !Array.isArray(buf)) {
          const size = SCALAR_SIZE[a.type];
          outs[a.name] = Array.from({ length: Math.floor(buf.byteLength / size) }, (_, k) => readScalar(buf, size * k, a.type));
        }
        break;
      case 'errcode':
        if (buf && !Array.isArray(buf)) outs[a.name] = readScalar(buf, 0, ctx.spec.status.type);
        break;
      case 'info': {
        if (!buf || !okStatus) break;
        if (Array.isArray(buf)) { outs[a.name] = buf; break; }
        const value = sizeRet !== undefined && sizeRet < buf.byteLength ? buf.subarray(0, sizeRet) : buf;
        const param = String(frame.args[planOf(f).indexOf.get(a.param)!]);
        const kind = a.handleParams[param];
        const keys = a.propertyParams?.[param];
        if (keys) {
          // A zero-terminated (key, value) list: values under handle keys become ids.
          for (let off = 0; off + 16 <= value.byteLength; off += 16) {
            const key = value.readBigInt64LE(off);
            if (key === 0n) break;
            const keyKind = keys[String(key)];
            if (keyKind) value.writeBigInt64LE(BigInt(ctx.handles.idOf(keyKind, readPointer(value, off + 8))), off + 8);
          }
        }
        if (kind && okStatus) {
          // Same layout, ids in place of pointers: one 8-byte slot per handle.
          for (let off = 0; off + 8 <= value.byteLength; off += 8) {
            value.writeBigInt64LE(BigInt(ctx.handles.idOf(kind, readPointer(value, off))), off);
          }
        }
        outs[a.name] = value;
        break;
      }
      default: break;
    }
  });

  if (okStatus && f.target !== undefined) {
    const target = frame.args[planOf(f).indexOf.get(f.target)!];
    if (typeof target === 'number') {
      if (f.record === 'retain') ctx.handles.retain(target);
      else if (f.record === 'release') ctx.handles.release(target);
    }
  }
  if (okStatus) {
    f.args.forEach((a, i) => {
      if (a.role === 'mapped') {
        const id = (frame.args[i] as { id: number }).id;
        const ptr = ctx.handles.resolve(id, MAPPED_KIND, f.name);
        mappedRegions.delete(ptr);
        ctx.handles.drop(id);
      }
    });
  }
  return { seq: frame.seq, ret, outs };
}
