/**
 * The OpenCL 1.2 spec: every function of `CL/cl.h` up to 1.2 ({@link OPENCL_12_FUNCTIONS}), with its exact C
 * argument order, the role of each argument and what the call does to state.
 *
 * Conventions used throughout (see `src/spec/types.ts` for what each role means):
 * - `size_t` is `'size'`, `cl_uint` / `cl_bool` / the `*_info` enums `'uint32'`, `cl_int` `'int32'`, every
 *   `cl_bitfield` (`cl_mem_flags`, `cl_device_type`, `cl_map_flags`, queue properties, ...) `'uint64'`.
 * - Info queries are the triple `param_name` / `param_value_size` / `param_value` (role `info`) plus
 *   `param_value_size_ret` (`scalarOut`); the parameters whose value is a handle (or an array of handles) are
 *   listed so that the worker turns native pointers into handle ids.
 * - Enqueues take `num_events_in_wait_list` (`count`), `event_wait_list` (nullable `handles`) and an optional
 *   `event` out-handle.
 * - Blocking: the worker always performs reads and maps as blocking calls (`workerValue: 1` on `blocking_read` /
 *   `blocking_map`), so the guest's destination array is filled when the reply arrives, whatever the program
 *   asked for. Writes are forced to block as well: the source bytes live in the worker only for the duration of
 *   the call, and a non-blocking write would let the device read them after the worker has dropped them.
 *   A consequence: a read, write or map whose wait list holds a user event that the program completes later
 *   (clSetUserEventStatus) would wait forever, since a session's calls run in order.
 * - `CL_MEM_USE_HOST_PTR` becomes `CL_MEM_COPY_HOST_PTR` in the worker (the guest's memory is not the worker's);
 *   the guest keeps the program's array bound to the buffer (`mirror`) and refreshes it at the buffer's sync points.
 */
import { ApiStatusError, BadCallError, UnsupportedError } from '../../errors.js';
import { defineSpec } from '../../spec/define.js';
import { arg, fn, ret, unsupported } from '../../spec/roles.js';
import type { ArgSpec, DeferredTransfer, EventCompletion, FunctionSpec, LengthExpr, StateContext } from '../../spec/types.js';
import { OPENCL_12_FUNCTIONS, OPENCL_LATER_FUNCTIONS } from './cl12-functions.js';
import { CL, CL_STATUS_NAMES } from './constants.js';

// ---------------------------------------------------------------------------------------------------------------
// Argument groups

/** Decimal-string keys for `handleParams` / `handleKeys`. */
const key = (value: number): string => String(value);

/** The trailing wait list and event of every enqueue. */
const waitList = (): ArgSpec[] => [
  arg.count('num_events_in_wait_list'),
  arg.handles('event_wait_list', 'event', 'num_events_in_wait_list', { nullable: true }),
  arg.handleOut('event', 'event', { optional: true }),
];

/** The info-query tail: `param_name, param_value_size, param_value, param_value_size_ret`. */
const infoQuery = (
  handleParams: Record<string, string> = {}, pointerArrays?: Record<string, string>, propertyParams?: Record<string, Record<string, string>>,
): ArgSpec[] => [
  arg.scalar('param_name', 'uint32'),
  arg.scalar('param_value_size', 'size'),
  arg.info('param_value', 'param_value_size', 'param_name', handleParams, pointerArrays, propertyParams),
  arg.scalarOut('param_value_size_ret', 'size'),
];

/** A 3-element `const size_t *` (`origin`, `region`). */
const vec3 = (name: string): ArgSpec => arg.scalars(name, 'size', 3);

/** `clRetain*` / `clRelease*` of one object. */
const retain = (name: string, param: string, kind: string): FunctionSpec =>
  fn(name, ret.status(), 'retain', [arg.handle(param, kind)], { target: param });
const release = (name: string, param: string, kind: string): FunctionSpec =>
  fn(name, ret.status(), 'release', [arg.handle(param, kind)], { target: param });

/** The notify callback of clBuildProgram / clCompileProgram / clLinkProgram, delivered to the guest as an event. */
const programNotify = (protoName: string): ArgSpec =>
  arg.callback('pfn_notify', `void ${protoName}(void *program, void *user_data)`, 'user_data', { delivered: true });

/**
 * The error callback of clCreateContext(FromType): accepted and never called. The implementation may call it any
 * number of times, from its own threads, for the context's whole life, with an opaque `private_info` blob: not an
 * event the guest can be sent once. It only reports errors (which the calls report too), and sample programs pass
 * one routinely: refusing it would fail them at their first call.
 */
const contextNotify = (): ArgSpec =>
  arg.callback(
    'pfn_notify',
    'void cl_context_notify(const char *errinfo, const void *private_info, size_t cb, void *user_data)',
    'user_data',
    { delivered: false, dropped: true },
  );

/** `cl_context_properties`: a zero-terminated list whose `CL_CONTEXT_PLATFORM` value is a platform. */
const contextProperties = (): ArgSpec => arg.properties('properties', 'uintptr', { [key(CL.CONTEXT_PLATFORM)]: 'platform' });

/** `flags` and `host_ptr` of clCreateBuffer: USE_HOST_PTR becomes COPY_HOST_PTR, the caller's array mirrored. */
const hostPtrFlags = (): ArgSpec =>
  arg.scalar('flags', 'uint64', { rewrite: { ifSet: CL.MEM_USE_HOST_PTR, clear: CL.MEM_USE_HOST_PTR, set: CL.MEM_COPY_HOST_PTR } });

// ---------------------------------------------------------------------------------------------------------------
// Explicit state of `event`: the answers to the info queries that a recreated event would answer differently.

/** The queries whose answers travel with an event: `[function, parameter]`. */
const EVENT_ANSWERS: readonly (readonly [string, number])[] = [
  ['clGetEventInfo', CL.EVENT_COMMAND_TYPE],
  ['clGetEventProfilingInfo', CL.PROFILING_COMMAND_QUEUED],
  ['clGetEventProfilingInfo', CL.PROFILING_COMMAND_SUBMIT],
  ['clGetEventProfilingInfo', CL.PROFILING_COMMAND_START],
  ['clGetEventProfilingInfo', CL.PROFILING_COMMAND_END],
];

/**
 * Reads the answers (remembered ones first, so that a restored event reads back what was written), as
 * `[u8 index][u32 length][bytes]...`; a query the library refuses (no profiling on that queue) is left out, and the
 * target's library then refuses it the same way.
 */
function extractEventAnswers(ctx: StateContext, event: number): Uint8Array {
  const parts: Buffer[] = [];
  EVENT_ANSWERS.forEach(([fnName, param], index) => {
    let value = ctx.remembered?.(fnName, param);
    if (!value) {
      const bytes = Buffer.alloc(8);
      const size = Buffer.alloc(8);
      if (ctx.callNative(fnName, event, param, 8, bytes, size) !== CL.SUCCESS) return;
      value = bytes.subarray(0, Number(size.readBigUInt64LE(0)));
    }
    const head = Buffer.alloc(5);
    head.writeUInt8(index, 0);
    head.writeUInt32LE(value.byteLength, 1);
    parts.push(head, Buffer.from(value));
  });
  return Buffer.concat(parts);
}

function restoreEventAnswers(ctx: StateContext, _event: number, bytes: Uint8Array): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 5 <= b.byteLength;) {
    const entry = EVENT_ANSWERS[b.readUInt8(at)];
    const length = b.readUInt32LE(at + 1);
    if (!entry || at + 5 + length > b.byteLength || length > 8) throw new BadCallError('event state: malformed answers');
    ctx.remember?.(entry[0], entry[1], b.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The platforms and root devices in the ICD loader's order: where a device first seen in an info value (a context
// made from a device type, then asked for CL_CONTEXT_DEVICES) is found again on another worker.

/** A native `cl_*_id` array: count probe, then the list (empty when the call fails). */
function listIds(ctx: StateContext, fnName: string, ...head: unknown[]): number[] {
  const count = Buffer.alloc(4);
  if (ctx.callNative(fnName, ...head, 0, null, count) !== CL.SUCCESS) return [];
  const n = count.readUInt32LE(0);
  const ids = Buffer.alloc(8 * Math.max(n, 1));
  if (n === 0 || ctx.callNative(fnName, ...head, n, ids, null) !== CL.SUCCESS) return [];
  return Array.from({ length: n }, (_, k) => Number(ids.readBigUInt64LE(8 * k)));
}

const listPlatforms = (ctx: StateContext): number[] => listIds(ctx, 'clGetPlatformIDs');
const listDevices = (ctx: StateContext, platform: number): number[] => listIds(ctx, 'clGetDeviceIDs', platform, CL.DEVICE_TYPE_ALL);

// ---------------------------------------------------------------------------------------------------------------
// Handle-valued info parameters (OpenCL 1.2)

const DEVICE_HANDLE_PARAMS = { [key(CL.DEVICE_PLATFORM)]: 'platform', [key(CL.DEVICE_PARENT_DEVICE)]: 'device' };
const CONTEXT_HANDLE_PARAMS = { [key(CL.CONTEXT_DEVICES)]: 'device' };
/** `CL_CONTEXT_PROPERTIES` gives back the creation's property list, whose `CL_CONTEXT_PLATFORM` value is a platform. */
const CONTEXT_PROPERTY_PARAMS = { [key(CL.CONTEXT_PROPERTIES)]: { [key(CL.CONTEXT_PLATFORM)]: 'platform' } };
const QUEUE_HANDLE_PARAMS = { [key(CL.QUEUE_CONTEXT)]: 'context', [key(CL.QUEUE_DEVICE)]: 'device' };
const MEM_HANDLE_PARAMS = { [key(CL.MEM_CONTEXT)]: 'context', [key(CL.MEM_ASSOCIATED_MEMOBJECT)]: 'mem' };
const IMAGE_HANDLE_PARAMS = { [key(CL.IMAGE_BUFFER)]: 'mem' };
const SAMPLER_HANDLE_PARAMS = { [key(CL.SAMPLER_CONTEXT)]: 'context' };
const PROGRAM_HANDLE_PARAMS = { [key(CL.PROGRAM_CONTEXT)]: 'context', [key(CL.PROGRAM_DEVICES)]: 'device' };
const PROGRAM_POINTER_ARRAYS = { [key(CL.PROGRAM_BINARIES)]: key(CL.PROGRAM_BINARY_SIZES) };
const KERNEL_HANDLE_PARAMS = { [key(CL.KERNEL_CONTEXT)]: 'context', [key(CL.KERNEL_PROGRAM)]: 'program' };
const EVENT_HANDLE_PARAMS = { [key(CL.EVENT_COMMAND_QUEUE)]: 'command_queue', [key(CL.EVENT_CONTEXT)]: 'context' };

// ---------------------------------------------------------------------------------------------------------------
// Explicit state of `mem`: a buffer's bytes, read and written through a command queue of its context.
// Native calling convention of StateContext.callNative: handles are pointer-valued numbers, every pointer-role
// argument a Buffer or null, scalars numbers. 64-bit hosts: size_t and pointers are 8 bytes.

function checkStatus(fnName: string, status: unknown): void {
  const code = Number(status);
  if (code !== CL.SUCCESS) throw new ApiStatusError(fnName, code, CL_STATUS_NAMES[String(code)] ?? `UNKNOWN_STATUS_${code}`);
}

/** Reads an 8-byte (size_t, pointer, cl_ulong) or 4-byte (cl_uint) info value. */
function infoNumber(ctx: StateContext, fnName: string, handle: number, param: number, bytes: 4 | 8): number {
  const value = Buffer.alloc(bytes);
  checkStatus(fnName, ctx.callNative(fnName, handle, param, bytes, value, null));
  return bytes === 4 ? value.readUInt32LE(0) : Number(value.readBigUInt64LE(0));
}

/** How the worker follows the event of a read it runs without blocking. */
const EVENT_COMPLETION: EventCompletion = {
  retain: (ctx, event) => checkStatus('clRetainEvent', ctx.callNative('clRetainEvent', event)),
  release: (ctx, event) => checkStatus('clReleaseEvent', ctx.callNative('clReleaseEvent', event)),
  completed: (ctx, event) => {
    const value = Buffer.alloc(4);
    checkStatus('clGetEventInfo', ctx.callNative('clGetEventInfo', event, CL.EVENT_COMMAND_EXECUTION_STATUS, 4, value, null));
    const status = value.readInt32LE(0);
    return status === CL.COMPLETE ? true : status < 0 ? status : false;
  },
};

/** A transfer that may complete after it returns when the program does not block (see `FunctionSpec.deferred`). */
const deferred = (blocking: string, data?: string): DeferredTransfer => ({ blocking, event: 'event', ...(data === undefined ? {} : { data }), completion: EVENT_COMPLETION });

/** A command queue of `context`: a live one of the session, or a temporary one on the context's first device. */
function queueFor(ctx: StateContext, context: number): { queue: number; temporary: boolean } {
  for (const queue of ctx.liveHandles('command_queue')) {
    if (infoNumber(ctx, 'clGetCommandQueueInfo', queue, CL.QUEUE_CONTEXT, 8) === context) return { queue, temporary: false };
  }
  const sizeRet = Buffer.alloc(8);
  checkStatus('clGetContextInfo', ctx.callNative('clGetContextInfo', context, CL.CONTEXT_DEVICES, 0, null, sizeRet));
  const devices = Buffer.alloc(Number(sizeRet.readBigUInt64LE(0)));
  if (devices.length < 8) throw new ApiStatusError('clGetContextInfo', CL.INVALID_CONTEXT, 'CL_INVALID_CONTEXT');
  checkStatus('clGetContextInfo', ctx.callNative('clGetContextInfo', context, CL.CONTEXT_DEVICES, devices.length, devices, null));
  const errcode = Buffer.alloc(4);
  const queue = Number(ctx.callNative('clCreateCommandQueue', context, Number(devices.readBigUInt64LE(0)), 0, errcode));
  checkStatus('clCreateCommandQueue', errcode.readInt32LE(0));
  return { queue, temporary: true };
}

/** What explicit state needs to know of a memory object: its bytes, context and flags; for an image, its region. */
interface MemShape {
  readonly size: number;
  readonly context: number;
  readonly flags: number;
  /** An image's full region (width, height, depth in pixels, array layers folded in), read and written tightly packed. */
  readonly region?: Buffer;
}

/**
 * The shape of a buffer or image, after finishing every queue of the session. A 1D image made on a buffer
 * (CL_MEM_OBJECT_IMAGE1D_BUFFER) has no state of its own: its pixels are the buffer's, which travel with the buffer.
 */
function describeMem(ctx: StateContext, mem: number): MemShape {
  for (const queue of ctx.liveHandles('command_queue')) checkStatus('clFinish', ctx.callNative('clFinish', queue));
  const type = infoNumber(ctx, 'clGetMemObjectInfo', mem, CL.MEM_TYPE, 4);
  const context = infoNumber(ctx, 'clGetMemObjectInfo', mem, CL.MEM_CONTEXT, 8);
  const flags = infoNumber(ctx, 'clGetMemObjectInfo', mem, CL.MEM_FLAGS, 8);
  if (type === CL.MEM_OBJECT_BUFFER) return { size: infoNumber(ctx, 'clGetMemObjectInfo', mem, CL.MEM_SIZE, 8), context, flags };
  if (type === CL.MEM_OBJECT_IMAGE1D_BUFFER) return { size: 0, context, flags };
  // The host cannot read a pipe: packets still in it once every queue has finished do not travel with a migration.
  if (type === CL.MEM_OBJECT_PIPE) return { size: 0, context, flags };
  const image = (param: number): number => infoNumber(ctx, 'clGetImageInfo', mem, param, 8);
  const layers = image(CL.IMAGE_ARRAY_SIZE);
  const width = image(CL.IMAGE_WIDTH);
  const height = type === CL.MEM_OBJECT_IMAGE1D_ARRAY ? layers : Math.max(1, image(CL.IMAGE_HEIGHT));
  const depth = type === CL.MEM_OBJECT_IMAGE2D_ARRAY ? layers : Math.max(1, image(CL.IMAGE_DEPTH));
  const region = Buffer.alloc(24);
  [width, height, depth].forEach((n, k) => region.writeBigUInt64LE(BigInt(n), 8 * k));
  return { size: image(CL.IMAGE_ELEMENT_SIZE) * width * height * depth, context, flags, region };
}

/** The origin of a whole-image copy. */
const ORIGIN = Buffer.alloc(24);

/** Runs `body` with a queue of `context`, releasing a temporary queue afterwards. */
function withQueue<T>(ctx: StateContext, context: number, body: (queue: number) => T): T {
  const { queue, temporary } = queueFor(ctx, context);
  try {
    return body(queue);
  } finally {
    if (temporary) checkStatus('clReleaseCommandQueue', ctx.callNative('clReleaseCommandQueue', queue));
  }
}

/** A temporary host-accessible buffer for objects the host may not read or write (`CL_MEM_HOST_*`). */
function withStaging<T>(ctx: StateContext, context: number, size: number, init: Buffer | null, body: (staging: number) => T): T {
  const errcode = Buffer.alloc(4);
  const flags = CL.MEM_READ_WRITE | (init ? CL.MEM_COPY_HOST_PTR : 0);
  const staging = Number(ctx.callNative('clCreateBuffer', context, flags, size, init, errcode));
  checkStatus('clCreateBuffer', errcode.readInt32LE(0));
  try {
    return body(staging);
  } finally {
    checkStatus('clReleaseMemObject', ctx.callNative('clReleaseMemObject', staging));
  }
}

/** Bytes of one row of an image's packed state (rows of every slice and layer follow each other). */
const rowBytesOf = (shape: MemShape): number => {
  const region = shape.region!;
  const pixels = Number(region.readBigUInt64LE(0)) * Number(region.readBigUInt64LE(8)) * Number(region.readBigUInt64LE(16));
  return pixels === 0 ? 0 : (shape.size / pixels) * Number(region.readBigUInt64LE(0));
};

/**
 * The image boxes (origin, region) holding packed bytes [offset, offset + n), both multiples of the row size, with
 * where each box's bytes start in that span: one box per slice (or layer) the rows cross.
 */
function imageBoxes(shape: MemShape, offset: number, n: number): { origin: Buffer; region: Buffer; at: number }[] {
  const width = Number(shape.region!.readBigUInt64LE(0));
  const height = Number(shape.region!.readBigUInt64LE(8));
  const rowBytes = rowBytesOf(shape);
  const first = offset / rowBytes;
  const end = (offset + n) / rowBytes;
  const boxes: { origin: Buffer; region: Buffer; at: number }[] = [];
  for (let row = first; row < end;) {
    const z = Math.floor(row / height);
    const y = row - z * height;
    const rows = Math.min(height - y, end - row);
    const origin = Buffer.alloc(24);
    const region = Buffer.alloc(24);
    [0, y, z].forEach((v, k) => origin.writeBigUInt64LE(BigInt(v), 8 * k));
    [width, rows, 1].forEach((v, k) => region.writeBigUInt64LE(BigInt(v), 8 * k));
    boxes.push({ origin, region, at: (row - first) * rowBytes });
    row += rows;
  }
  return boxes;
}

/**
 * Reads `bytes.byteLength` bytes at `offset` of a buffer or of an image's packed state (both then multiples of its row
 * size) into `bytes`, through a host-readable staging buffer where the host may not read the object.
 */
function readMem(ctx: StateContext, mem: number, shape: MemShape, offset: number, bytes: Buffer): void {
  const { context, flags, region } = shape;
  const n = bytes.byteLength;
  withQueue(ctx, context, (queue) => {
    const readBuffer = (source: number, at: number): void =>
      checkStatus('clEnqueueReadBuffer', ctx.callNative('clEnqueueReadBuffer', queue, source, 1, at, n, bytes, 0, null, null));
    const hostReadable = (flags & (CL.MEM_HOST_WRITE_ONLY | CL.MEM_HOST_NO_ACCESS)) === 0;
    if (hostReadable && region) {
      for (const box of imageBoxes(shape, offset, n)) {
        checkStatus('clEnqueueReadImage', ctx.callNative('clEnqueueReadImage', queue, mem, 1, box.origin, box.region, 0, 0, bytes.subarray(box.at), 0, null, null));
      }
    } else if (hostReadable) {
      readBuffer(mem, offset);
    } else {
      withStaging(ctx, context, n, null, (staging) => {
        if (region) {
          for (const box of imageBoxes(shape, offset, n)) {
            checkStatus('clEnqueueCopyImageToBuffer', ctx.callNative('clEnqueueCopyImageToBuffer', queue, mem, staging, box.origin, box.region, box.at, 0, null, null));
          }
        } else {
          checkStatus('clEnqueueCopyBuffer', ctx.callNative('clEnqueueCopyBuffer', queue, mem, staging, offset, 0, n, 0, null, null));
        }
        readBuffer(staging, 0);
      });
    }
  });
}

/** Writes `bytes` at `offset` of a buffer or of an image's packed state: the counterpart of {@link readMem}. */
function writeMem(ctx: StateContext, mem: number, shape: MemShape, offset: number, bytes: Buffer): void {
  const { context, flags, region } = shape;
  const n = bytes.byteLength;
  withQueue(ctx, context, (queue) => {
    if ((flags & (CL.MEM_HOST_READ_ONLY | CL.MEM_HOST_NO_ACCESS)) === 0) {
      if (region) {
        for (const box of imageBoxes(shape, offset, n)) {
          checkStatus('clEnqueueWriteImage', ctx.callNative('clEnqueueWriteImage', queue, mem, 1, box.origin, box.region, 0, 0, bytes.subarray(box.at), 0, null, null));
        }
      } else {
        checkStatus('clEnqueueWriteBuffer', ctx.callNative('clEnqueueWriteBuffer', queue, mem, 1, offset, n, bytes, 0, null, null));
      }
    } else {
      withStaging(ctx, context, n, bytes, (staging) => {
        if (region) {
          for (const box of imageBoxes(shape, offset, n)) {
            checkStatus('clEnqueueCopyBufferToImage', ctx.callNative('clEnqueueCopyBufferToImage', queue, staging, mem, box.at, box.origin, box.region, 0, null, null));
          }
        } else {
          checkStatus('clEnqueueCopyBuffer', ctx.callNative('clEnqueueCopyBuffer', queue, staging, mem, 0, offset, n, 0, null, null));
        }
        checkStatus('clFinish', ctx.callNative('clFinish', queue));
      });
    }
  });
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Reads a buffer's or image's bytes (an image's tightly packed). */
function extractMem(ctx: StateContext, mem: number): Uint8Array {
  const shape = describeMem(ctx, mem);
  const bytes = Buffer.alloc(shape.size);
  if (shape.size > 0) readMem(ctx, mem, shape, 0, bytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The whole rows of an image's packed state that hold [offset, offset + n): their first byte and their length. */
function rowSpan(shape: MemShape, offset: number, n: number): { start: number; length: number } {
  const rowBytes = shape.region ? rowBytesOf(shape) : 1;
  const start = Math.floor(offset / rowBytes) * rowBytes;
  return { start, length: Math.ceil((offset + n) / rowBytes) * rowBytes - start };
}

/**
 * Reads at most `length` bytes at `offset` of a buffer or image (into `into` when it is large enough); of an image,
 * the rows holding the range (the library reads no part of a row).
 */
function extractMemRange(ctx: StateContext, mem: number, offset: number, length: number, into?: Uint8Array): Uint8Array {
  const shape = describeMem(ctx, mem);
  const n = Math.max(0, Math.min(length, shape.size - offset));
  if (n === 0) return new Uint8Array(0);
  const { start, length: spanLength } = rowSpan(shape, offset, n);
  const bytes = into && into.byteLength >= spanLength ? asBuffer(into.subarray(0, spanLength)) : Buffer.alloc(spanLength);
  readMem(ctx, mem, shape, start, bytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset + (offset - start), n);
}

/** Writes bytes read by {@link extractMem} into a buffer or image of the same shape. */
function restoreMem(ctx: StateContext, mem: number, contents: Uint8Array): void {
  const shape = describeMem(ctx, mem);
  if (contents.byteLength !== shape.size) {
    throw new BadCallError(`cannot restore ${contents.byteLength} bytes into an OpenCL memory object of ${shape.size} bytes`);
  }
  if (shape.size > 0) writeMem(ctx, mem, shape, 0, asBuffer(contents));
}

/** Writes `contents` at `offset` of a buffer or image; of an image, parts of rows by reading those rows first. */
function restoreMemRange(ctx: StateContext, mem: number, offset: number, contents: Uint8Array): void {
  const shape = describeMem(ctx, mem);
  const n = contents.byteLength;
  if (offset < 0 || offset + n > shape.size) {
    throw new BadCallError(`cannot restore ${n} bytes at ${offset} of an OpenCL memory object of ${shape.size} bytes`);
  }
  if (n === 0) return;
  const { start, length } = rowSpan(shape, offset, n);
  if (start === offset && length === n) return writeMem(ctx, mem, shape, offset, asBuffer(contents));
  const rows = Buffer.alloc(length);
  readMem(ctx, mem, shape, start, rows);
  rows.set(contents, offset - start);
  writeMem(ctx, mem, shape, start, rows);
}

// ---------------------------------------------------------------------------------------------------------------
// Images: formats, descriptors and the element size every later transfer's length depends on

/** `const cl_image_format *`: `{ cl_channel_order; cl_channel_type; }`. */
const imageFormat = (): ArgSpec => arg.struct('image_format', 8, [
  { name: 'image_channel_order', offset: 0, type: 'uint32' },
  { name: 'image_channel_data_type', offset: 4, type: 'uint32' },
]);

/** `const cl_image_desc *` (OpenCL 1.2 layout on 64-bit hosts: 72 bytes, `buffer` a cl_mem for 1D image buffers). */
const imageDesc = (): ArgSpec => arg.struct('image_desc', 72, [
  { name: 'image_type', offset: 0, type: 'uint32' },
  { name: 'image_width', offset: 8, type: 'size' },
  { name: 'image_height', offset: 16, type: 'size' },
  { name: 'image_depth', offset: 24, type: 'size' },
  { name: 'image_array_size', offset: 32, type: 'size' },
  { name: 'image_row_pitch', offset: 40, type: 'size' },
  { name: 'image_slice_pitch', offset: 48, type: 'size' },
  { name: 'num_mip_levels', offset: 56, type: 'uint32' },
  { name: 'num_samples', offset: 60, type: 'uint32' },
  { name: 'buffer', offset: 64, kind: 'mem' },
]);

/** Bytes per pixel of the format being created: kept on the image as its `elementSize` attribute. */
const FORMAT_ELEMENT_SIZE: LengthExpr = { fn: 'imageElementSize', args: ['image_format.image_channel_order', 'image_format.image_channel_data_type'] };

/** Host bytes of a whole image described by a cl_image_desc (`host_ptr` of clCreateImage). */
const IMAGE_DESC_HOST_SIZE: LengthExpr = {
  fn: 'imageSize',
  args: ['image_desc.image_type', 'image_desc.image_width', 'image_desc.image_height', 'image_desc.image_depth',
    'image_desc.image_array_size', 'image_desc.image_row_pitch', 'image_desc.image_slice_pitch', FORMAT_ELEMENT_SIZE],
};

/** Host bytes of an image region passed to or from `image`, from the pitches given and the image's element size. */
const imageRegionBytes = (row: string, slice: string, image = 'image'): LengthExpr =>
  ({ fn: 'imageExtent', args: ['region', row, slice, { attr: 'elementSize', of: image }] });

/** `host_ptr` of an image creation, and the USE_HOST_PTR binding (the program's pitches must be tight to mirror). */
const imageHostPtr = (size: LengthExpr): ArgSpec =>
  arg.bufferIn('host_ptr', size, { nullable: true, mirror: { flags: 'flags', mask: CL.MEM_USE_HOST_PTR } });

// ---------------------------------------------------------------------------------------------------------------
// Reasons of the functions the spec declares but does not support

const UNSUPPORTED_REASONS = {
  clEnqueueNativeKernel:
    'runs a host function pointer of the application on the device queue; the worker cannot call guest code',
  clSetCommandQueueProperty:
    'removed in OpenCL 1.1 (declared only under CL_USE_DEPRECATED_OPENCL_1_0_APIS); the ICD loader still exports it ' +
    'but PoCL has no entry for it, and calling it crashes the process (PoCL 3.1, ocl-icd 2.3.1)',
  clEnqueueWaitForEvents:
    'PoCL does not implement it and aborts the whole process when it is called (PoCL 3.1: "The entire ' +
    'clEnqueueWaitForEvents call is unimplemented"); its 1.2 replacement clEnqueueBarrierWithWaitList is supported',
  clGetExtensionFunctionAddressForPlatform: 'returns a host function pointer in the worker process, meaningless to the guest',
  svm: 'shared virtual memory is an address in the worker process, which the program can neither dereference nor pass on',
  clCloneKernel:
    "a clone copies the source kernel's arguments as they are at that moment, which replay cannot rebuild once a later " +
    'clSetKernelArg on the source has superseded them',
  clGetExtensionFunctionAddress: 'returns a host function pointer in the worker process, meaningless to the guest',
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Functions, in the order of cl.h

const functions: FunctionSpec[] = [
  // Platform
  fn('clGetPlatformIDs', ret.status(), 'global', [
    arg.count('num_entries'),
    arg.handlesOut('platforms', 'platform', 'num_entries', { optional: true }),
    arg.scalarOut('num_platforms', 'uint32'),
  ]),
  fn('clGetPlatformInfo', ret.status(), 'query', [arg.handle('platform', 'platform', { nullable: true }), ...infoQuery()]),

  // Devices
  fn('clGetDeviceIDs', ret.status(), 'global', [
    arg.handle('platform', 'platform', { nullable: true }),
    arg.scalar('device_type', 'uint64'),
    arg.count('num_entries'),
    arg.handlesOut('devices', 'device', 'num_entries', { optional: true }),
    arg.scalarOut('num_devices', 'uint32'),
  ]),
  fn('clGetDeviceInfo', ret.status(), 'query', [arg.handle('device', 'device'), ...infoQuery(DEVICE_HANDLE_PARAMS)]),
  fn('clCreateSubDevices', ret.status(), 'create', [
    arg.handle('in_device', 'device'),
    arg.properties('properties', 'uintptr'),
    arg.count('num_devices'),
    arg.handlesOut('out_devices', 'device', 'num_devices', { optional: true }),
    arg.scalarOut('num_devices_ret', 'uint32'),
  ]),
  retain('clRetainDevice', 'device', 'device'),
  release('clReleaseDevice', 'device', 'device'),

  // Contexts
  fn('clCreateContext', ret.handle('context'), 'create', [
    contextProperties(),
    arg.count('num_devices'),
    arg.handles('devices', 'device', 'num_devices'),
    contextNotify(),
    arg.userData('user_data'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateContextFromType', ret.handle('context'), 'create', [
    contextProperties(),
    arg.scalar('device_type', 'uint64'),
    contextNotify(),
    arg.userData('user_data'),
    arg.errcode('errcode_ret'),
  ]),
  retain('clRetainContext', 'context', 'context'),
  release('clReleaseContext', 'context', 'context'),
  fn('clGetContextInfo', ret.status(), 'query', [arg.handle('context', 'context'), ...infoQuery(CONTEXT_HANDLE_PARAMS, undefined, CONTEXT_PROPERTY_PARAMS)]),

  // Command queues
  retain('clRetainCommandQueue', 'command_queue', 'command_queue'),
  release('clReleaseCommandQueue', 'command_queue', 'command_queue'),
  fn('clGetCommandQueueInfo', ret.status(), 'query', [
    arg.handle('command_queue', 'command_queue'),
    ...infoQuery(QUEUE_HANDLE_PARAMS),
  ]),

  // Memory objects
  fn('clCreateBuffer', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    hostPtrFlags(),
    arg.scalar('size', 'size'),
    arg.bufferIn('host_ptr', 'size', { nullable: true, mirror: { flags: 'flags', mask: CL.MEM_USE_HOST_PTR } }),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateSubBuffer', ret.handle('mem'), 'create', [
    arg.handle('buffer', 'mem'),
    arg.scalar('flags', 'uint64'),
    arg.scalar('buffer_create_type', 'uint32'),
    // `const void *` to the only 1.2 create type's struct, cl_buffer_region { size_t origin; size_t size; }:
    // the same layout as two size_t.
    arg.scalars('buffer_create_info', 'size', 2),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateImage', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    hostPtrFlags(),
    imageFormat(),
    imageDesc(),
    imageHostPtr(IMAGE_DESC_HOST_SIZE),
    arg.errcode('errcode_ret'),
  ], { sets: { elementSize: FORMAT_ELEMENT_SIZE } }),
  retain('clRetainMemObject', 'memobj', 'mem'),
  release('clReleaseMemObject', 'memobj', 'mem'),
  fn('clGetSupportedImageFormats', ret.status(), 'query', [
    arg.handle('context', 'context'),
    arg.scalar('flags', 'uint64'),
    arg.scalar('image_type', 'uint32'),
    arg.count('num_entries'),
    // cl_image_format[num_entries]: { cl_channel_order; cl_channel_type; }, 8 bytes each.
    arg.bufferOut('image_formats', { mul: ['num_entries', 8] }, { optional: true }),
    arg.scalarOut('num_image_formats', 'uint32'),
  ]),
  fn('clGetMemObjectInfo', ret.status(), 'query', [arg.handle('memobj', 'mem'), ...infoQuery(MEM_HANDLE_PARAMS)]),
  fn('clGetImageInfo', ret.status(), 'query', [arg.handle('image', 'mem'), ...infoQuery(IMAGE_HANDLE_PARAMS)]),
  fn('clSetMemObjectDestructorCallback', ret.status(), 'configure', [
    arg.handle('memobj', 'mem'),
    arg.callback('pfn_notify', 'void cl_mem_destructor_notify(void *memobj, void *user_data)', 'user_data', { delivered: false }),
    arg.userData('user_data'),
  ], { target: 'memobj' }),

  // Samplers
  retain('clRetainSampler', 'sampler', 'sampler'),
  release('clReleaseSampler', 'sampler', 'sampler'),
  fn('clGetSamplerInfo', ret.status(), 'query', [arg.handle('sampler', 'sampler'), ...infoQuery(SAMPLER_HANDLE_PARAMS)]),

  // Programs
  fn('clCreateProgramWithSource', ret.handle('program'), 'create', [
    arg.handle('context', 'context'),
    arg.count('count'),
    arg.strings('strings', 'count', 'lengths'),
    arg.scalars('lengths', 'size', 'count', { nullable: true }),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateProgramWithBinary', ret.handle('program'), 'create', [
    arg.handle('context', 'context'),
    arg.count('num_devices'),
    arg.handles('device_list', 'device', 'num_devices'),
    arg.scalars('lengths', 'size', 'num_devices'),
    arg.strings('binaries', 'num_devices', 'lengths'),
    arg.scalarsOut('binary_status', 'int32', 'num_devices'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateProgramWithBuiltInKernels', ret.handle('program'), 'create', [
    arg.handle('context', 'context'),
    arg.count('num_devices'),
    arg.handles('device_list', 'device', 'num_devices'),
    arg.string('kernel_names'),
    arg.errcode('errcode_ret'),
  ]),
  retain('clRetainProgram', 'program', 'program'),
  release('clReleaseProgram', 'program', 'program'),
  fn('clBuildProgram', ret.status(), 'configure', [
    arg.handle('program', 'program'),
    arg.count('num_devices'),
    arg.handles('device_list', 'device', 'num_devices', { nullable: true }),
    arg.string('options', { nullable: true }),
    programNotify('cl_build_notify'),
    arg.userData('user_data'),
  ], { target: 'program', blocking: true, journalFailures: [CL.BUILD_PROGRAM_FAILURE, CL.COMPILE_PROGRAM_FAILURE] }),
  fn('clCompileProgram', ret.status(), 'configure', [
    arg.handle('program', 'program'),
    arg.count('num_devices'),
    arg.handles('device_list', 'device', 'num_devices', { nullable: true }),
    arg.string('options', { nullable: true }),
    arg.count('num_input_headers'),
    arg.handles('input_headers', 'program', 'num_input_headers', { nullable: true }),
    arg.strings('header_include_names', 'num_input_headers', undefined, { nullable: true }),
    programNotify('cl_compile_notify'),
    arg.userData('user_data'),
  ], { target: 'program', blocking: true, journalFailures: [CL.BUILD_PROGRAM_FAILURE, CL.COMPILE_PROGRAM_FAILURE] }),
  fn('clLinkProgram', ret.handle('program'), 'create', [
    arg.handle('context', 'context'),
    arg.count('num_devices'),
    arg.handles('device_list', 'device', 'num_devices', { nullable: true }),
    arg.string('options', { nullable: true }),
    arg.count('num_input_programs'),
    arg.handles('input_programs', 'program', 'num_input_programs'),
    programNotify('cl_link_notify'),
    arg.userData('user_data'),
    arg.errcode('errcode_ret'),
  ], { blocking: true }),
  fn('clUnloadPlatformCompiler', ret.status(), 'global', [arg.handle('platform', 'platform')]),
  fn('clGetProgramInfo', ret.status(), 'query', [
    arg.handle('program', 'program'),
    ...infoQuery(PROGRAM_HANDLE_PARAMS, PROGRAM_POINTER_ARRAYS),
  ]),
  fn('clGetProgramBuildInfo', ret.status(), 'query', [
    arg.handle('program', 'program'),
    arg.handle('device', 'device'),
    ...infoQuery(),
  ]),

  // Kernels
  fn('clCreateKernel', ret.handle('kernel'), 'create', [
    arg.handle('program', 'program'),
    arg.string('kernel_name'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateKernelsInProgram', ret.status(), 'create', [
    arg.handle('program', 'program'),
    arg.count('num_kernels'),
    arg.handlesOut('kernels', 'kernel', 'num_kernels', { optional: true }),
    arg.scalarOut('num_kernels_ret', 'uint32'),
  ]),
  retain('clRetainKernel', 'kernel', 'kernel'),
  release('clReleaseKernel', 'kernel', 'kernel'),
  fn('clSetKernelArg', ret.status(), 'configure', [
    arg.handle('kernel', 'kernel'),
    arg.scalar('arg_index', 'uint32'),
    arg.scalar('arg_size', 'size'),
    arg.argValue('arg_value', 'arg_size', ['mem', 'sampler'], { invalidStatus: CL.INVALID_MEM_OBJECT }),
  ], { target: 'kernel', supersedeKey: ['arg_index'] }),
  fn('clGetKernelInfo', ret.status(), 'query', [arg.handle('kernel', 'kernel'), ...infoQuery(KERNEL_HANDLE_PARAMS)]),
  fn('clGetKernelArgInfo', ret.status(), 'query', [
    arg.handle('kernel', 'kernel'),
    arg.scalar('arg_indx', 'uint32'),
    ...infoQuery(),
  ]),
  fn('clGetKernelWorkGroupInfo', ret.status(), 'query', [
    arg.handle('kernel', 'kernel'),
    // NULL is allowed when the kernel's program is built for a single device.
    arg.handle('device', 'device', { nullable: true }),
    ...infoQuery(),
  ]),

  // Events
  fn('clWaitForEvents', ret.status(), 'sync', [
    arg.count('num_events'),
    arg.handles('event_list', 'event', 'num_events'),
  ], { blocking: true }),
  fn('clGetEventInfo', ret.status(), 'query', [arg.handle('event', 'event'), ...infoQuery(EVENT_HANDLE_PARAMS)]),
  fn('clCreateUserEvent', ret.handle('event'), 'create', [arg.handle('context', 'context'), arg.errcode('errcode_ret')], { pending: 'opens' }),
  retain('clRetainEvent', 'event', 'event'),
  release('clReleaseEvent', 'event', 'event'),
  fn('clSetUserEventStatus', ret.status(), 'configure', [
    arg.handle('event', 'event'),
    arg.scalar('execution_status', 'int32'),
  ], { target: 'event', pending: 'closes' }),
  fn('clSetEventCallback', ret.status(), 'configure', [
    arg.handle('event', 'event'),
    arg.scalar('command_exec_callback_type', 'int32'),
    arg.callback('pfn_notify', 'void cl_event_notify(void *event, int32_t event_command_status, void *user_data)', 'user_data', {
      delivered: true,
    }),
    arg.userData('user_data'),
  ], { target: 'event' }),

  // Profiling
  fn('clGetEventProfilingInfo', ret.status(), 'query', [arg.handle('event', 'event'), ...infoQuery()]),

  // Flush and finish
  fn('clFlush', ret.status(), 'sync', [arg.handle('command_queue', 'command_queue')]),
  fn('clFinish', ret.status(), 'sync', [arg.handle('command_queue', 'command_queue')], { blocking: true }),

  // Enqueued commands: buffers
  fn('clEnqueueReadBuffer', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.scalar('blocking_read', 'uint32', { workerValue: 1 }),
    arg.scalar('offset', 'size'),
    arg.scalar('size', 'size'),
    arg.bufferOut('ptr', 'size'),
    ...waitList(),
  ], { blocking: true, split: { offset: 'offset', size: 'size', data: 'ptr' }, deferred: deferred('blocking_read', 'ptr') }),
  fn('clEnqueueReadBufferRect', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.scalar('blocking_read', 'uint32', { workerValue: 1 }),
    vec3('buffer_origin'),
    vec3('host_origin'),
    vec3('region'),
    arg.scalar('buffer_row_pitch', 'size'),
    arg.scalar('buffer_slice_pitch', 'size'),
    arg.scalar('host_row_pitch', 'size'),
    arg.scalar('host_slice_pitch', 'size'),
    arg.bufferOut('ptr', { fn: 'rectExtent', args: ['host_origin', 'region', 'host_row_pitch', 'host_slice_pitch'] }, { preserve: true }),
    ...waitList(),
  ], { blocking: true, deferred: deferred('blocking_read', 'ptr') }),
  fn('clEnqueueWriteBuffer', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.scalar('blocking_write', 'uint32', { workerValue: 1 }),
    arg.scalar('offset', 'size'),
    arg.scalar('size', 'size'),
    arg.bufferIn('ptr', 'size'),
    ...waitList(),
  ], {
    blocking: true, writes: { target: 'buffer', offset: 'offset', size: 'size' }, split: { offset: 'offset', size: 'size', data: 'ptr' },
    deferred: deferred('blocking_write', 'ptr'),
  }),
  fn('clEnqueueWriteBufferRect', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.scalar('blocking_write', 'uint32', { workerValue: 1 }),
    vec3('buffer_origin'),
    vec3('host_origin'),
    vec3('region'),
    arg.scalar('buffer_row_pitch', 'size'),
    arg.scalar('buffer_slice_pitch', 'size'),
    arg.scalar('host_row_pitch', 'size'),
    arg.scalar('host_slice_pitch', 'size'),
    arg.bufferIn('ptr', { fn: 'rectExtent', args: ['host_origin', 'region', 'host_row_pitch', 'host_slice_pitch'] }),
    ...waitList(),
  ], { blocking: true, deferred: deferred('blocking_write', 'ptr') }),
  fn('clEnqueueFillBuffer', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.bufferIn('pattern', 'pattern_size'),
    arg.scalar('pattern_size', 'size'),
    arg.scalar('offset', 'size'),
    arg.scalar('size', 'size'),
    ...waitList(),
  ]),
  fn('clEnqueueCopyBuffer', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('src_buffer', 'mem'),
    arg.handle('dst_buffer', 'mem'),
    arg.scalar('src_offset', 'size'),
    arg.scalar('dst_offset', 'size'),
    arg.scalar('size', 'size'),
    ...waitList(),
  ]),
  fn('clEnqueueCopyBufferRect', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('src_buffer', 'mem'),
    arg.handle('dst_buffer', 'mem'),
    vec3('src_origin'),
    vec3('dst_origin'),
    vec3('region'),
    arg.scalar('src_row_pitch', 'size'),
    arg.scalar('src_slice_pitch', 'size'),
    arg.scalar('dst_row_pitch', 'size'),
    arg.scalar('dst_slice_pitch', 'size'),
    ...waitList(),
  ]),

  // Enqueued commands: images
  fn('clEnqueueReadImage', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('image', 'mem'),
    arg.scalar('blocking_read', 'uint32', { workerValue: 1 }),
    vec3('origin'),
    vec3('region'),
    arg.scalar('row_pitch', 'size'),
    arg.scalar('slice_pitch', 'size'),
    // Padding between rows (a pitch wider than the region) is not written: the caller's bytes travel and are kept.
    arg.bufferOut('ptr', imageRegionBytes('row_pitch', 'slice_pitch'), { preserve: true }),
    ...waitList(),
  ], { blocking: true, deferred: deferred('blocking_read', 'ptr') }),
  fn('clEnqueueWriteImage', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('image', 'mem'),
    arg.scalar('blocking_write', 'uint32', { workerValue: 1 }),
    vec3('origin'),
    vec3('region'),
    arg.scalar('input_row_pitch', 'size'),
    arg.scalar('input_slice_pitch', 'size'),
    arg.bufferIn('ptr', imageRegionBytes('input_row_pitch', 'input_slice_pitch')),
    ...waitList(),
  ], { blocking: true, deferred: deferred('blocking_write', 'ptr') }),
  fn('clEnqueueFillImage', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('image', 'mem'),
    // float4, int4 or uint4 by the image's channel type: always 16 bytes.
    arg.bufferIn('fill_color', 16),
    vec3('origin'),
    vec3('region'),
    ...waitList(),
  ]),
  fn('clEnqueueCopyImage', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('src_image', 'mem'),
    arg.handle('dst_image', 'mem'),
    vec3('src_origin'),
    vec3('dst_origin'),
    vec3('region'),
    ...waitList(),
  ]),
  fn('clEnqueueCopyImageToBuffer', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('src_image', 'mem'),
    arg.handle('dst_buffer', 'mem'),
    vec3('src_origin'),
    vec3('region'),
    arg.scalar('dst_offset', 'size'),
    ...waitList(),
  ]),
  fn('clEnqueueCopyBufferToImage', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('src_buffer', 'mem'),
    arg.handle('dst_image', 'mem'),
    arg.scalar('src_offset', 'size'),
    vec3('dst_origin'),
    vec3('region'),
    ...waitList(),
  ]),

  // Map / unmap / migrate
  fn('clEnqueueMapBuffer', ret.mapped('size'), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('buffer', 'mem'),
    arg.scalar('blocking_map', 'uint32', { workerValue: 1 }),
    arg.scalar('map_flags', 'uint64'),
    arg.scalar('offset', 'size'),
    arg.scalar('size', 'size'),
    ...waitList(),
    arg.errcode('errcode_ret'),
  ], { blocking: true, deferred: deferred('blocking_map') }),
  // The mapped bytes follow the pitches the call itself returns: the worker sizes the region after the call.
  fn('clEnqueueMapImage', ret.mapped(imageRegionBytes('image_row_pitch', 'image_slice_pitch')), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('image', 'mem'),
    arg.scalar('blocking_map', 'uint32', { workerValue: 1 }),
    arg.scalar('map_flags', 'uint64'),
    vec3('origin'),
    vec3('region'),
    arg.scalarOut('image_row_pitch', 'size'),
    arg.scalarOut('image_slice_pitch', 'size'),
    ...waitList(),
    arg.errcode('errcode_ret'),
  ], { blocking: true, deferred: deferred('blocking_map') }),
  fn('clEnqueueUnmapMemObject', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('memobj', 'mem'),
    arg.mapped('mapped_ptr'),
    ...waitList(),
  ]),
  fn('clEnqueueMigrateMemObjects', ret.status(), 'transfer', [
    arg.handle('command_queue', 'command_queue'),
    arg.count('num_mem_objects'),
    arg.handles('mem_objects', 'mem', 'num_mem_objects'),
    arg.scalar('flags', 'uint64'),
    ...waitList(),
  ]),

  // Kernels and synchronisation commands
  fn('clEnqueueNDRangeKernel', ret.status(), 'execute', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('kernel', 'kernel'),
    arg.count('work_dim'),
    arg.scalars('global_work_offset', 'size', 'work_dim', { nullable: true }),
    arg.scalars('global_work_size', 'size', 'work_dim'),
    arg.scalars('local_work_size', 'size', 'work_dim', { nullable: true }),
    ...waitList(),
  ]),
  unsupported('clEnqueueNativeKernel', 'execute', UNSUPPORTED_REASONS.clEnqueueNativeKernel),
  fn('clEnqueueMarkerWithWaitList', ret.status(), 'execute', [arg.handle('command_queue', 'command_queue'), ...waitList()]),
  fn('clEnqueueBarrierWithWaitList', ret.status(), 'execute', [arg.handle('command_queue', 'command_queue'), ...waitList()]),

  // Extension function access
  unsupported('clGetExtensionFunctionAddressForPlatform', 'query', UNSUPPORTED_REASONS.clGetExtensionFunctionAddressForPlatform),

  // Deprecated 1.0 API (declared under CL_USE_DEPRECATED_OPENCL_1_0_APIS, still exported by the ICD loader)
  unsupported('clSetCommandQueueProperty', 'configure', UNSUPPORTED_REASONS.clSetCommandQueueProperty),

  // Deprecated 1.1 APIs
  fn('clCreateImage2D', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    hostPtrFlags(),
    imageFormat(),
    arg.scalar('image_width', 'size'),
    arg.scalar('image_height', 'size'),
    arg.scalar('image_row_pitch', 'size'),
    imageHostPtr({ fn: 'imageSize', args: [CL.MEM_OBJECT_IMAGE2D, 'image_width', 'image_height', 0, 0, 'image_row_pitch', 0, FORMAT_ELEMENT_SIZE] }),
    arg.errcode('errcode_ret'),
  ], { sets: { elementSize: FORMAT_ELEMENT_SIZE } }),
  fn('clCreateImage3D', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    hostPtrFlags(),
    imageFormat(),
    arg.scalar('image_width', 'size'),
    arg.scalar('image_height', 'size'),
    arg.scalar('image_depth', 'size'),
    arg.scalar('image_row_pitch', 'size'),
    arg.scalar('image_slice_pitch', 'size'),
    imageHostPtr({
      fn: 'imageSize',
      args: [CL.MEM_OBJECT_IMAGE3D, 'image_width', 'image_height', 'image_depth', 0, 'image_row_pitch', 'image_slice_pitch', FORMAT_ELEMENT_SIZE],
    }),
    arg.errcode('errcode_ret'),
  ], { sets: { elementSize: FORMAT_ELEMENT_SIZE } }),
  fn('clEnqueueMarker', ret.status(), 'execute', [
    arg.handle('command_queue', 'command_queue'),
    arg.handleOut('event', 'event'),
  ]),
  unsupported('clEnqueueWaitForEvents', 'execute', UNSUPPORTED_REASONS.clEnqueueWaitForEvents),
  fn('clEnqueueBarrier', ret.status(), 'execute', [arg.handle('command_queue', 'command_queue')]),
  fn('clUnloadCompiler', ret.status(), 'global', []),
  unsupported('clGetExtensionFunctionAddress', 'query', UNSUPPORTED_REASONS.clGetExtensionFunctionAddress),

  // Deprecated 2.0 APIs (the 1.x way to make queues and samplers, and single work-item kernels)
  fn('clCreateCommandQueue', ret.handle('command_queue'), 'create', [
    arg.handle('context', 'context'),
    arg.handle('device', 'device'),
    arg.scalar('properties', 'uint64'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateSampler', ret.handle('sampler'), 'create', [
    arg.handle('context', 'context'),
    arg.scalar('normalized_coords', 'uint32'),
    arg.scalar('addressing_mode', 'uint32'),
    arg.scalar('filter_mode', 'uint32'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clEnqueueTask', ret.status(), 'execute', [
    arg.handle('command_queue', 'command_queue'),
    arg.handle('kernel', 'kernel'),
    ...waitList(),
  ]),
];

// ---------------------------------------------------------------------------------------------------------------
// The later entry points (OpenCL 2.0 - 3.0) that a program built against a current header calls on a 1.2-style
// program: queues, samplers, buffers and images "with properties", IL programs, timers, sub-group queries. SVM is
// declared so that a call fails cleanly (CL_INVALID_OPERATION) instead of reaching an empty dispatch slot.

/** A zero-terminated `cl_bitfield` property list (`cl_queue_properties`, `cl_sampler_properties`, `cl_mem_properties`). */
const bitfieldProperties = (name = 'properties'): ArgSpec => arg.properties(name, 'uint64');

const svm = (name: string, record: FunctionSpec['record']): FunctionSpec => unsupported(name, record, UNSUPPORTED_REASONS.svm);

const laterFunctions: FunctionSpec[] = [
  fn('clSetDefaultDeviceCommandQueue', ret.status(), 'configure', [
    arg.handle('context', 'context'),
    arg.handle('device', 'device'),
    arg.handle('command_queue', 'command_queue'),
  ], { target: 'context', supersedeKey: ['device'] }),
  fn('clGetDeviceAndHostTimer', ret.status(), 'query', [
    arg.handle('device', 'device'),
    arg.scalarOut('device_timestamp', 'uint64'),
    arg.scalarOut('host_timestamp', 'uint64'),
  ]),
  fn('clGetHostTimer', ret.status(), 'query', [arg.handle('device', 'device'), arg.scalarOut('host_timestamp', 'uint64')]),
  fn('clSetContextDestructorCallback', ret.status(), 'configure', [
    arg.handle('context', 'context'),
    arg.callback('pfn_notify', 'void cl_context_destructor_notify(void *context, void *user_data)', 'user_data', { delivered: false }),
    arg.userData('user_data'),
  ], { target: 'context' }),
  fn('clCreateCommandQueueWithProperties', ret.handle('command_queue'), 'create', [
    arg.handle('context', 'context'),
    arg.handle('device', 'device'),
    bitfieldProperties(),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreatePipe', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    arg.scalar('flags', 'uint64'),
    arg.scalar('pipe_packet_size', 'uint32'),
    arg.scalar('pipe_max_packets', 'uint32'),
    // cl_pipe_properties is intptr_t; OpenCL 2.0 - 3.0 define no property: NULL.
    arg.properties('properties', 'uintptr'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateBufferWithProperties', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    bitfieldProperties(),
    hostPtrFlags(),
    arg.scalar('size', 'size'),
    arg.bufferIn('host_ptr', 'size', { nullable: true, mirror: { flags: 'flags', mask: CL.MEM_USE_HOST_PTR } }),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateImageWithProperties', ret.handle('mem'), 'create', [
    arg.handle('context', 'context'),
    bitfieldProperties(),
    hostPtrFlags(),
    imageFormat(),
    imageDesc(),
    imageHostPtr(IMAGE_DESC_HOST_SIZE),
    arg.errcode('errcode_ret'),
  ], { sets: { elementSize: FORMAT_ELEMENT_SIZE } }),
  fn('clGetPipeInfo', ret.status(), 'query', [arg.handle('pipe', 'mem'), ...infoQuery()]),
  svm('clSVMAlloc', 'create'),
  svm('clSVMFree', 'release'),
  fn('clCreateSamplerWithProperties', ret.handle('sampler'), 'create', [
    arg.handle('context', 'context'),
    bitfieldProperties('sampler_properties'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clCreateProgramWithIL', ret.handle('program'), 'create', [
    arg.handle('context', 'context'),
    arg.bufferIn('il', 'length'),
    arg.scalar('length', 'size'),
    arg.errcode('errcode_ret'),
  ]),
  fn('clSetProgramReleaseCallback', ret.status(), 'configure', [
    arg.handle('program', 'program'),
    arg.callback('pfn_notify', 'void cl_program_release_notify(void *program, void *user_data)', 'user_data', { delivered: false }),
    arg.userData('user_data'),
  ], { target: 'program' }),
  fn('clSetProgramSpecializationConstant', ret.status(), 'configure', [
    arg.handle('program', 'program'),
    arg.scalar('spec_id', 'uint32'),
    arg.scalar('spec_size', 'size'),
    arg.bufferIn('spec_value', 'spec_size'),
  ], { target: 'program', supersedeKey: ['spec_id'] }),
  fn('clCloneKernel', ret.handle('kernel'), 'create', [arg.handle('source_kernel', 'kernel'), arg.errcode('errcode_ret')], {
    unsupported: UNSUPPORTED_REASONS.clCloneKernel,
  }),
  svm('clSetKernelArgSVMPointer', 'configure'),
  svm('clSetKernelExecInfo', 'configure'),
  fn('clGetKernelSubGroupInfo', ret.status(), 'query', [
    arg.handle('kernel', 'kernel'),
    arg.handle('device', 'device', { nullable: true }),
    arg.scalar('param_name', 'uint32'),
    arg.scalar('input_value_size', 'size'),
    arg.bufferIn('input_value', 'input_value_size', { nullable: true }),
    arg.scalar('param_value_size', 'size'),
    arg.info('param_value', 'param_value_size', 'param_name'),
    arg.scalarOut('param_value_size_ret', 'size'),
  ]),
  svm('clEnqueueSVMFree', 'transfer'),
  svm('clEnqueueSVMMemcpy', 'transfer'),
  svm('clEnqueueSVMMemFill', 'transfer'),
  svm('clEnqueueSVMMap', 'transfer'),
  svm('clEnqueueSVMUnmap', 'transfer'),
  svm('clEnqueueSVMMigrateMem', 'transfer'),
];

/** Puts the functions in the order of {@link OPENCL_12_FUNCTIONS}, then {@link OPENCL_LATER_FUNCTIONS} (each the header's). */
function inHeaderOrder(list: readonly FunctionSpec[]): FunctionSpec[] {
  const rank = new Map([...OPENCL_12_FUNCTIONS, ...OPENCL_LATER_FUNCTIONS].map((name, i) => [name, i]));
  return [...list].sort((a, b) => (rank.get(a.name) ?? Infinity) - (rank.get(b.name) ?? Infinity));
}

/**
 * The OpenCL 1.2 spec.
 * @example
 * import { openclSpec, CL } from 'ava-migrate/apis/opencl';
 * openclSpec.fn.get('clEnqueueReadBuffer')?.record; // 'transfer'
 */
export const openclSpec = defineSpec({
  name: 'opencl',
  version: '1.2',
  library: { names: ['libOpenCL.so.1', 'libOpenCL.so'] },
  status: { type: 'int32', success: CL.SUCCESS, names: CL_STATUS_NAMES },
  handles: [
    { name: 'platform', interned: true, invalidStatus: CL.INVALID_PLATFORM, enumerate: listPlatforms },
    // Root devices and sub-devices (clCreateSubDevices) are one kind; the list holds the root devices.
    { name: 'device', interned: true, invalidStatus: CL.INVALID_DEVICE, enumerate: (ctx) => listPlatforms(ctx).flatMap((p) => listDevices(ctx, p)) },
    { name: 'context', invalidStatus: CL.INVALID_CONTEXT },
    { name: 'command_queue', invalidStatus: CL.INVALID_COMMAND_QUEUE },
    {
      // Buffers, sub-buffers and images. An image keeps its element size (from its format) as an attribute: the
      // length of every later image transfer depends on it. Explicit state: a buffer's bytes, an image's pixels.
      name: 'mem',
      attributes: ['elementSize'],
      invalidStatus: CL.INVALID_MEM_OBJECT,
      state: {
        // clSetKernelArg does not retain a buffer: released by the application, it is freed even while a kernel
        // still names it (launching that kernel is then undefined), so its contents do not travel.
        lostWhenReleased: true,
        extract: (ctx, mem) => extractMem(ctx, mem),
        restore: (ctx, mem, bytes) => restoreMem(ctx, mem, bytes),
        extractRange: (ctx, mem, offset, length, into) => extractMemRange(ctx, mem, offset, length, into),
        restoreRange: (ctx, mem, offset, bytes) => restoreMemRange(ctx, mem, offset, bytes),
      },
    },
    { name: 'program', invalidStatus: CL.INVALID_PROGRAM },
    { name: 'kernel', invalidStatus: CL.INVALID_KERNEL },
    {
      name: 'event', transient: true, invalidStatus: CL.INVALID_EVENT,
      // What the application can still ask a completed event: its command type and profiling timestamps travel, and
      // the target answers them for the recreated event (a user event, which would say CL_COMMAND_USER).
      // A released event that a live one still names (a wait list) may be freed: it travels without them.
      state: { extract: extractEventAnswers, restore: restoreEventAnswers, lostWhenReleased: true },
      // A user event of the enqueue's context, set complete: the application's later waits on it succeed at once.
      recreate(ctx, related) {
        for (const queue of related) {
          const value = Buffer.alloc(8);
          if (ctx.callNative('clGetCommandQueueInfo', queue, CL.QUEUE_CONTEXT, 8, value, null) !== CL.SUCCESS) continue;
          const err = Buffer.alloc(4);
          const event = ctx.callNative('clCreateUserEvent', Number(value.readBigUInt64LE(0)), err) as number;
          if (err.readInt32LE(0) !== CL.SUCCESS) continue;
          ctx.callNative('clSetUserEventStatus', event, CL.COMPLETE);
          // A user event has no queue; the original was enqueued on this one, and says so.
          const queueBytes = Buffer.alloc(8);
          queueBytes.writeBigUInt64LE(BigInt(queue));
          ctx.remember?.('clGetEventInfo', CL.EVENT_COMMAND_QUEUE, queueBytes);
          return event;
        }
        throw new UnsupportedError('recreate event', 'no command queue among the arguments of the call that made it');
      },
    },
    { name: 'sampler', invalidStatus: CL.INVALID_SAMPLER },
  ],
  functions: inHeaderOrder([...functions, ...laterFunctions]),
});
