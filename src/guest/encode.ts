/**
 * Turns a JavaScript call (see `call-shape.ts`) into a call frame's wire arguments, validating every value first:
 * a wrong type is an {@link ArgumentTypeError} before anything is marshalled. Also turns replies back into
 * JavaScript results. Shared by the guestlib proxy and the direct native binding, which differ only in how handles
 * become ids ({@link HandleCodec}).
 */
import { ArgumentTypeError } from '../errors.js';
import { evalLength, splitLengthName } from '../spec/length.js';
import type { ArgSpec, FunctionSpec, ScalarType } from '../spec/types.js';
import type { ReplyFrame, WireValue } from '../wire/frames.js';
import type { CallResult } from './call-shape.js';
import { planOf } from '../spec/plan.js';
import { Handle, Mapping, handleAttributes, setHandleAttributes } from './handle.js';

/** How handles, new ids and callbacks are represented on one side. */
export interface HandleCodec {
  /** The wire id of a handle the application passes. */
  idOf(handle: Handle): number;
  /** A fresh id for a handle a call will create (0 where the callee picks, as natively). */
  newId(): number;
  /** The application object for a wire id. */
  handle(kind: string, id: number): Handle;
  /** Registers a callback function and its user data; returns the callback id. */
  callback(fn: (...args: unknown[]) => void, userData: unknown): number;
}

/** A call, encoded. */
export interface EncodedCall {
  readonly args: WireValue[];
  readonly retId: number | null;
  /** The application's destination arrays by C argument index. */
  readonly dests: (ArrayBufferView | null)[];
  /** Attributes the call sets on the handle it returns ({@link FunctionSpec.sets}). */
  readonly retAttributes?: Readonly<Record<string, number>>;
}

const INT_RANGE: Partial<Record<ScalarType, [number, number]>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

function bytesOf(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A real copy: a Node Buffer's `slice` is a view, so a reused Buffer would change a posted call's bytes. */
function copyOf(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

function fail(f: FunctionSpec, a: ArgSpec, expected: string, got: unknown): never {
  throw new ArgumentTypeError(`${f.name}: argument "${a.name}" must be ${expected}, got ${typeName(got)}`, { details: { fn: f.name, arg: a.name } });
}

function scalar(f: FunctionSpec, a: ArgSpec, type: ScalarType, v: unknown): number | bigint {
  if (type === 'float' || type === 'double') {
    if (typeof v !== 'number') fail(f, a, 'a number', v);
    return v;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') {
    if (!['int64', 'uint64', 'size', 'uintptr'].includes(type)) fail(f, a, `a number (${type})`, v);
    if (type !== 'int64' && v < 0n) fail(f, a, `a non-negative ${type}`, v);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(f, a, `an integer (${type})`, v);
  const range = INT_RANGE[type];
  if (range ? v < range[0] || v > range[1] : type !== 'int64' && v < 0) fail(f, a, `an integer in the range of ${type}`, v);
  return v;
}

function handle(f: FunctionSpec, a: ArgSpec, codec: HandleCodec, v: unknown, nullable: boolean): number | null {
  if (v === null || v === undefined) {
    if (nullable) return null;
    fail(f, a, 'a handle', v);
  }
  if (!(v instanceof Handle)) fail(f, a, 'a handle', v);
  return codec.idOf(v);
}

function view(f: FunctionSpec, a: ArgSpec, v: unknown, nullable: boolean, minBytes: () => number): Uint8Array | null {
  if (v === null || v === undefined) {
    if (nullable) return null;
    fail(f, a, 'an ArrayBufferView', v);
  }
  if (!ArrayBuffer.isView(v)) fail(f, a, 'an ArrayBufferView', v);
  const need = minBytes();
  if (v.byteLength < need) {
    throw new ArgumentTypeError(`${f.name}: argument "${a.name}" has ${v.byteLength} bytes, the call needs ${need}`, { details: { fn: f.name, arg: a.name } });
  }
  return bytesOf(v);
}

/**
 * Encodes one call.
 * @throws {ArgumentTypeError} `ERR_AVA_ARG_TYPE` for a wrong argument count, type, range or array size.
 */
export function encodeCall(f: FunctionSpec, jsArgs: readonly unknown[], codec: HandleCodec, options: { copyInputs?: boolean } = {}): EncodedCall {
  const plan = planOf(f);
  const pos = plan.positions;
  const expected = plan.arity;
  if (jsArgs.length !== expected) {
    throw new ArgumentTypeError(`${f.name} takes ${expected} arguments, got ${jsArgs.length}`, { details: { fn: f.name } });
  }
  const value = (i: number): unknown => (pos[i]! >= 0 ? jsArgs[pos[i]!] : undefined);
  const byName = plan.indexOf;
  const lookup = (name: string): unknown => {
    const { arg, field } = splitLengthName(name);
    const v = value(byName.get(arg)!);
    if (field !== undefined) return v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[field] : undefined;
    return ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v;
  };
  const attribute = (of: string, attr: string): number | undefined => {
    const v = value(byName.get(of)!);
    return v instanceof Handle ? handleAttributes(v)?.[attr] : undefined;
  };
  const args: WireValue[] = new Array(f.args.length);
  const dests: (ArrayBufferView | null)[] = new Array(f.args.length).fill(null);
  const ud = f.args.findIndex((a) => a.role === 'userData');
  const userData = ud >= 0 ? value(ud) : undefined;

  f.args.forEach((a, i) => {
    const v = value(i);
    switch (a.role) {
      case 'scalar': case 'count': args[i] = scalar(f, a, a.type, v); break;
      case 'handle': args[i] = handle(f, a, codec, v, a.nullable); break;
      case 'handles': {
        if (v === null || v === undefined) {
          if (!a.nullable) fail(f, a, 'an array of handles', v);
          args[i] = null;
          break;
        }
        if (!Array.isArray(v)) fail(f, a, 'an array of handles', v);
        const n = evalLength(a.count, lookup, attribute);
        if (v.length < n) fail(f, a, `an array of at least ${n} handles`, v);
        args[i] = v.slice(0, n).map((h) => handle(f, a, codec, h, false));
        break;
      }
      case 'handleOut': args[i] = v === null || v === false ? null : codec.newId(); break;
      case 'handlesOut': {
        if (v === null || v === undefined || v === false) { args[i] = null; break; }
        if (v !== true) fail(f, a, 'true or null', v);
        const n = evalLength(a.capacity, lookup, attribute);
        if (!Number.isSafeInteger(n) || n < 0 || n > 65536) fail(f, a, 'a capacity of at most 65536', n);
        args[i] = Array.from({ length: n }, () => codec.newId());
        break;
      }
      case 'bufferIn': {
        const bytes = view(f, a, v, a.nullable, () => evalLength(a.length, lookup, attribute));
        // A mirrored array stays the application's own (it is refreshed in place), so it is never copied.
        args[i] = bytes && options.copyInputs && !a.mirror ? copyOf(bytes) : bytes;
        break;
      }
      case 'bufferOut': case 'info': {
        const need = a.role === 'info' ? () => Number(lookup(a.size)) : () => evalLength(a.length, lookup, attribute);
        const dest = view(f, a, v, a.role === 'info' || a.optional, need);
        dests[i] = dest === null ? null : (v as ArrayBufferView);
        args[i] = dest === null ? null : a.role === 'bufferOut' && a.preserve ? dest.subarray(0, need()) : true;
        break;
      }
      case 'string':
        if (v === null || v === undefined) { if (!a.nullable) fail(f, a, 'a string', v); args[i] = null; }
        else if (typeof v !== 'string') fail(f, a, 'a string', v);
        else args[i] = v;
        break;
      case 'strings': {
        if ((v === null || v === undefined) && a.nullable) { args[i] = null; break; }
        if (!Array.isArray(v)) fail(f, a, 'an array of strings or byte arrays', v);
        args[i] = v.map((s) => {
          if (typeof s === 'string') return s;
          if (ArrayBuffer.isView(s)) return bytesOf(s);
          return fail(f, a, 'an array of strings or byte arrays', s);
        });
        break;
      }
      case 'scalars': {
        if (v === null || v === undefined) { if (!a.nullable) fail(f, a, 'an array of numbers', v); args[i] = null; break; }
        const list = ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v;
        if (!Array.isArray(list)) fail(f, a, 'an array of numbers', v);
        args[i] = list.map((x) => scalar(f, a, a.type, x));
        break;
      }
      case 'properties': {
        if (v === null || v === undefined) { if (!a.nullable) fail(f, a, 'a property list', v); args[i] = null; break; }
        if (!Array.isArray(v)) fail(f, a, 'a property list', v);
        const list = v.length > 0 && v[v.length - 1] === 0 && v.length % 2 === 1 ? v.slice(0, -1) : v;
        args[i] = list.map((x, k) => {
          if (k % 2 === 1 && a.handleKeys[String(list[k - 1])] !== undefined) return handle(f, a, codec, x, false);
          return scalar(f, a, a.type, x);
        });
        break;
      }
      case 'errcode': case 'scalarOut': case 'scalarsOut': args[i] = true; break;
      case 'argValue':
        if (v === null || v === undefined) args[i] = null;
        else if (v instanceof Handle) args[i] = { handle: codec.idOf(v) };
        else if (ArrayBuffer.isView(v)) {
          const size = Number(lookup(a.size));
          if (v.byteLength < size) {
            throw new ArgumentTypeError(`${f.name}: argument "${a.name}" has ${v.byteLength} bytes, "${a.size}" says ${size}`, { details: { fn: f.name, arg: a.name } });
          }
          args[i] = options.copyInputs ? copyOf(bytesOf(v)) : bytesOf(v);
        } else fail(f, a, 'a handle, an ArrayBufferView or null', v);
        break;
      case 'callback':
        if (v === null || v === undefined) args[i] = null;
        else if (typeof v !== 'function') fail(f, a, 'a function or null', v);
        else args[i] = codec.callback(v as (...args: unknown[]) => void, userData);
        break;
      case 'userData': args[i] = null; break;
      case 'mapped':
        if (!(v instanceof Mapping)) fail(f, a, 'a Mapping returned by a map call', v);
        args[i] = { id: v.id, bytes: v.bytes };
        break;
      case 'struct': {
        if (v === null || v === undefined) { if (!a.nullable) fail(f, a, 'an object', v); args[i] = null; break; }
        if (typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Handle) fail(f, a, 'an object of fields', v);
        const fields = v as Record<string, unknown>;
        for (const name of Object.keys(fields)) {
          if (!a.fields.some((x) => x.name === name)) fail(f, a, `an object with fields ${a.fields.map((x) => x.name).join(', ')} (not "${name}")`, v);
        }
        args[i] = a.fields.map((x) => (x.kind !== undefined ? handle(f, a, codec, fields[x.name], true) : scalar(f, a, x.type!, fields[x.name] ?? 0)));
        break;
      }
    }
  });
  const retId = f.returns.role === 'handle' || f.returns.role === 'mapped' ? codec.newId() : null;
  if (!f.sets) return { args, retId, dests };
  const retAttributes = Object.fromEntries(Object.entries(f.sets).map(([attr, expr]) => [attr, evalLength(expr, lookup, attribute)]));
  return { args, retId, dests, retAttributes };
}

/** Copies `src` into the application's array `dest` (cut to its size). */
export function copyInto(dest: ArrayBufferView, src: Uint8Array): void {
  const target = bytesOf(dest);
  target.set(src.byteLength > target.byteLength ? src.subarray(0, target.byteLength) : src);
}

/** Turns a successful reply into the JavaScript result, filling the application's destination arrays. */
export function decodeReply(f: FunctionSpec, encoded: EncodedCall, reply: ReplyFrame, codec: HandleCodec): CallResult {
  let ret: unknown;
  const r = reply.ret;
  switch (f.returns.role) {
    case 'void': ret = undefined; break;
    case 'handle':
      ret = typeof r === 'number' ? codec.handle(f.returns.kind, r) : null;
      if (ret && encoded.retAttributes) setHandleAttributes(ret as Handle, encoded.retAttributes);
      break;
    case 'mapped': {
      const m = r as { id: number; bytes: Uint8Array } | null;
      ret = m ? new Mapping(m.id, m.bytes) : null;
      break;
    }
    default: ret = r;
  }
  const outs: Record<string, unknown> = {};
  const wire = reply.outs ?? {};
  f.args.forEach((a, i) => {
    const v = wire[a.name];
    if (v === undefined) {
      if (encoded.dests[i]) outs[a.name] = encoded.dests[i];
      return;
    }
    switch (a.role) {
      case 'handleOut': outs[a.name] = typeof v === 'number' ? codec.handle(a.kind, v) : null; break;
      case 'handlesOut': outs[a.name] = (v as number[]).map((id) => codec.handle(a.kind, id)); break;
      case 'bufferOut': case 'info':
        if (Array.isArray(v)) outs[a.name] = v; // pointer-array values: one byte array per blob
        else {
          copyInto(encoded.dests[i]!, v as Uint8Array);
          outs[a.name] = encoded.dests[i];
        }
        break;
      default: outs[a.name] = v;
    }
  });
  return { ret, outs };
}
