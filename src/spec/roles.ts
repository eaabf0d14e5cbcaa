/**
 * Builders for argument and return roles, so that a spec reads like its C header:
 *
 * ```ts
 * fn('tq_create_buffer', ret.handle('buffer'), 'create',
 *   [arg.handle('ctx', 'context'), arg.scalar('flags', 'uint32'), arg.scalar('size', 'size'),
 *    arg.bufferIn('host', 'size', { nullable: true }), arg.errcode('errcode_ret')])
 * ```
 */
import type {
  ArgSpec, ArgValueArg, BufferInArg, BufferOutArg, CallbackArg, CountArg, ErrcodeArg, FunctionSpec,
  HandleArg, HandleOutArg, HandlesArg, HandlesOutArg, InfoValueArg, LengthExpr, MappedArg, PropertiesArg,
  RecordClass, ReturnSpec, ScalarArg, ScalarOutArg, ScalarsArg, ScalarsOutArg, ScalarType, StringArg,
  StringsArg, StructArg, StructField, UserDataArg,
} from './types.js';

/** Argument role builders. */
export const arg = {
  /** A scalar by value. */
  scalar: (name: string, type: ScalarType, opts: Pick<ScalarArg, 'workerValue' | 'rewrite'> = {}): ScalarArg => ({ role: 'scalar', name, type, ...opts }),
  /** A scalar that counts an array argument's elements. */
  count: (name: string, type: ScalarType = 'uint32'): CountArg => ({ role: 'count', name, type }),
  /** A handle by value. */
  handle: (name: string, kind: string, opts: { nullable?: boolean } = {}): HandleArg => ({ role: 'handle', name, kind, nullable: opts.nullable ?? false }),
  /** A `const T*` array of handles. */
  handles: (name: string, kind: string, count: LengthExpr, opts: { nullable?: boolean } = {}): HandlesArg =>
    ({ role: 'handles', name, kind, count, nullable: opts.nullable ?? false }),
  /** A `T*` receiving one new handle. */
  handleOut: (name: string, kind: string, opts: { optional?: boolean } = {}): HandleOutArg => ({ role: 'handleOut', name, kind, optional: opts.optional ?? false }),
  /** A `T*` array receiving up to `capacity` handles. */
  handlesOut: (name: string, kind: string, capacity: LengthExpr, opts: { optional?: boolean } = {}): HandlesOutArg =>
    ({ role: 'handlesOut', name, kind, capacity, optional: opts.optional ?? false }),
  /** `const void*` of `length` bytes. */
  bufferIn: (name: string, length: LengthExpr, opts: { nullable?: boolean; mirror?: BufferInArg['mirror'] } = {}): BufferInArg =>
    ({ role: 'bufferIn', name, length, nullable: opts.nullable ?? false, ...(opts.mirror ? { mirror: opts.mirror } : {}) }),
  /** `void*` of `length` bytes written by the call. */
  bufferOut: (name: string, length: LengthExpr, opts: { optional?: boolean; preserve?: boolean } = {}): BufferOutArg =>
    ({ role: 'bufferOut', name, length, optional: opts.optional ?? false, ...(opts.preserve ? { preserve: true } : {}) }),
  /** A NUL-terminated string. */
  string: (name: string, opts: { nullable?: boolean } = {}): StringArg => ({ role: 'string', name, nullable: opts.nullable ?? false }),
  /** An array of strings or byte blobs with an optional parallel lengths argument. */
  strings: (name: string, count: LengthExpr, lengths?: string, opts: { nullable?: boolean } = {}): StringsArg =>
    ({ role: 'strings', name, count, ...(lengths ? { lengths } : {}), ...(opts.nullable ? { nullable: true } : {}) }),
  /** A `const T*` array of scalars. */
  scalars: (name: string, type: ScalarType, length: LengthExpr, opts: { nullable?: boolean } = {}): ScalarsArg =>
    ({ role: 'scalars', name, type, length, nullable: opts.nullable ?? false }),
  /** A zero-terminated property list; `handleKeys` maps property keys (as decimal strings) to handle kinds. */
  properties: (name: string, type: ScalarType, handleKeys: Record<string, string> = {}, opts: { nullable?: boolean } = {}): PropertiesArg =>
    ({ role: 'properties', name, type, handleKeys, nullable: opts.nullable ?? true }),
  /** A `T*` receiving one scalar. */
  scalarOut: (name: string, type: ScalarType): ScalarOutArg => ({ role: 'scalarOut', name, type }),
  /** A `T*` array receiving `length` scalars. */
  scalarsOut: (name: string, type: ScalarType, length: LengthExpr): ScalarsOutArg => ({ role: 'scalarsOut', name, type, length }),
  /** The `errcode_ret` out-argument. */
  errcode: (name = 'errcode_ret'): ErrcodeArg => ({ role: 'errcode', name }),
  /** The value of an info-query triple. */
  info: (
    name: string, size: string, param: string, handleParams: Record<string, string> = {}, pointerArrays?: Record<string, string>,
    propertyParams?: Record<string, Record<string, string>>,
  ): InfoValueArg =>
    ({ role: 'info', name, size, param, handleParams, ...(pointerArrays ? { pointerArrays } : {}), ...(propertyParams ? { propertyParams } : {}) }),
  /** `clSetKernelArg`'s untyped value. */
  argValue: (name: string, size: string, handleKinds: readonly string[], opts: { invalidStatus?: number } = {}): ArgValueArg =>
    ({ role: 'argValue', name, size, handleKinds, ...(opts.invalidStatus === undefined ? {} : { invalidStatus: opts.invalidStatus }) }),
  /** A callback function pointer with its user-data argument. */
  callback: (name: string, proto: string, userData: string, opts: { delivered?: boolean; dropped?: boolean } = {}): CallbackArg =>
    ({ role: 'callback', name, proto, userData, delivered: opts.delivered ?? false, ...(opts.dropped ? { dropped: true } : {}) }),
  /** A callback's `void* user_data`. */
  userData: (name = 'user_data'): UserDataArg => ({ role: 'userData', name }),
  /** A mapped region given back. */
  mapped: (name: string): MappedArg => ({ role: 'mapped', name }),
  /** A `const struct *` of `size` bytes laid out as `fields`. */
  struct: (name: string, size: number, fields: readonly StructField[], opts: { nullable?: boolean } = {}): StructArg =>
    ({ role: 'struct', name, size, fields, nullable: opts.nullable ?? false }),
} as const;

/** Return role builders. */
export const ret = {
  void: (): ReturnSpec => ({ role: 'void' }),
  status: (): ReturnSpec => ({ role: 'status' }),
  scalar: (type: ScalarType): ReturnSpec => ({ role: 'scalar', type }),
  handle: (kind: string): ReturnSpec => ({ role: 'handle', kind }),
  mapped: (length: LengthExpr): ReturnSpec => ({ role: 'mapped', length }),
} as const;

/** Options of {@link fn} beyond the signature. */
export type FunctionOptions = Omit<FunctionSpec, 'name' | 'returns' | 'record' | 'args'>;

/** Declares one function. */
export function fn(name: string, returns: ReturnSpec, record: RecordClass, args: readonly ArgSpec[], opts: FunctionOptions = {}): FunctionSpec {
  return { name, returns, record, args, ...opts };
}

/** Declares a function the spec knows but does not support; calls fail with `ERR_AVA_UNSUPPORTED` naming it. */
export function unsupported(name: string, record: RecordClass, reason: string): FunctionSpec {
  return { name, returns: { role: 'status' }, record, args: [], unsupported: reason };
}
