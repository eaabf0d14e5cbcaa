/**
 * The OpenCL 1.2 spec against the installed Khronos header (/usr/include/CL/cl.h) and, for the explicit state of
 * buffers, against the installed OpenCL implementation (PoCL): run `scripts/install-opencl.sh` first.
 *
 * node --import tsx test/apis/opencl-spec.test.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import koffi from 'koffi';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AvaError } from '../../src/errors.js';
import { CL, CL_STATUS_NAMES, OPENCL_12_FUNCTIONS, OPENCL_LATER_FUNCTIONS, openclSpec } from '../../src/apis/opencl/index.js';
import type { ArgSpec, FunctionSpec, ReturnSpec, ScalarType, StateContext } from '../../src/spec/types.js';

const HEADER = '/usr/include/CL/cl.h';
const INSTALL_HINT = `run scripts/install-opencl.sh (installs PoCL, the OpenCL headers and the ICD loader)`;

// ---------------------------------------------------------------------------------------------------------------
// A small parser of cl.h

interface CParam { name: string; type: string }
interface CDecl { name: string; version: number; returns: string; params: CParam[] }

function readHeader(): string {
  if (!existsSync(HEADER)) assert.unreachable(`${HEADER} is missing: ${INSTALL_HINT}`);
  return readFileSync(HEADER, 'utf8');
}

/** Splits a parameter list at the commas outside parentheses (function-pointer parameters have their own). */
function splitParams(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of list) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => p.replace(/\s+/g, ' ').trim()).filter((p) => p.length > 0 && p !== 'void');
}

function parseParam(text: string): CParam {
  const callback = text.match(/\(\s*CL_CALLBACK\s*\*\s*(\w+)\s*\)/);
  if (callback) return { name: callback[1]!, type: 'callback' };
  const m = text.match(/^(.*?)(\w+)\s*(\[\])?$/);
  if (!m) throw new Error(`cannot parse parameter "${text}"`);
  return { name: m[2]!, type: `${m[1]!.trim()}${m[3] ? ' *' : ''}`.replace(/\s*\*/g, ' *').trim() };
}

/** Every function declaration of cl.h with its version (1.0 = 10, ..., 3.0 = 30). */
function parseDeclarations(src: string): CDecl[] {
  const re = /extern\s+CL_API_ENTRY\s+(?:CL_API_PREFIX__VERSION_\w+\s+)?([\w\s*]+?)\s*CL_API_CALL\s+(cl[A-Z]\w*)\s*\(([^;]*?)\)\s*CL_(?:API|EXT)_SUFFIX__VERSION_(\d)_(\d)(?:_DEPRECATED)?\s*;/gs;
  const decls: CDecl[] = [];
  for (const m of src.matchAll(re)) {
    decls.push({ name: m[2]!, returns: m[1]!.trim(), params: splitParams(m[3]!).map(parseParam), version: Number(m[4]) * 10 + Number(m[5]) });
  }
  return decls;
}

/** The CL_* error codes (negative, and CL_SUCCESS) that the header defines for OpenCL <= 1.2. */
function parseErrorCodes(src: string): Map<string, number> {
  const codes = new Map<string, number>();
  const stack: (number | null)[] = [];
  const section = src.slice(src.indexOf('/* Error Codes */'), src.indexOf('/* cl_bool */'));
  for (const raw of section.split('\n')) {
    const line = raw.trim();
    const version = line.match(/^#ifdef\s+CL_VERSION_(\d)_(\d)/);
    if (version) stack.push(Number(version[1]) * 10 + Number(version[2]));
    else if (/^#if/.test(line)) stack.push(null);
    else if (/^#endif/.test(line)) stack.pop();
    const def = line.match(/^#define\s+(CL_\w+)\s+(-?\d+)/);
    if (def && !stack.some((v) => v !== null && v > 12)) codes.set(def[1]!, Number(def[2]));
  }
  return codes;
}

/** `typedef A B;` of cl.h and cl_platform.h, resolved to the base C types. */
function typedefs(): Map<string, string> {
  const map = new Map<string, string>([
    ['cl_char', 'int8_t'], ['cl_uchar', 'uint8_t'], ['cl_short', 'int16_t'], ['cl_ushort', 'uint16_t'],
    ['cl_int', 'int32_t'], ['cl_uint', 'uint32_t'], ['cl_long', 'int64_t'], ['cl_ulong', 'uint64_t'],
  ]);
  for (const m of readHeader().matchAll(/^typedef\s+(\w+)\s+(\w+)\s*;/gm)) map.set(m[2]!, m[1]!);
  return map;
}

const TYPEDEFS = existsSync(HEADER) ? typedefs() : new Map<string, string>();

function baseType(type: string): string {
  let t = type.replace(/\bconst\b/g, '').trim();
  for (let i = 0; i < 10 && TYPEDEFS.has(t); i++) t = TYPEDEFS.get(t)!;
  return t;
}

const SCALAR_OF_C: Record<string, ScalarType> = {
  int32_t: 'int32', uint32_t: 'uint32', int64_t: 'int64', uint64_t: 'uint64', size_t: 'size', intptr_t: 'uintptr',
};

const HANDLE_OF_C: Record<string, string> = {
  cl_platform_id: 'platform', cl_device_id: 'device', cl_context: 'context', cl_command_queue: 'command_queue',
  cl_mem: 'mem', cl_program: 'program', cl_kernel: 'kernel', cl_event: 'event', cl_sampler: 'sampler',
};

const cl12 = (): CDecl[] => parseDeclarations(readHeader()).filter((d) => d.version <= 12);

// ---------------------------------------------------------------------------------------------------------------
// The spec and the function list

test('the spec defines without error and is OpenCL 1.2 over libOpenCL', () => {
  assert.is(openclSpec.name, 'opencl');
  assert.is(openclSpec.version, '1.2');
  assert.match(openclSpec.hash, /^[0-9a-f]{64}$/);
  assert.equal(openclSpec.status.names, CL_STATUS_NAMES);
  assert.is(openclSpec.kind.get('mem')?.invalidStatus, CL.INVALID_MEM_OBJECT);
  assert.ok(openclSpec.kind.get('platform')?.interned);
  assert.ok(openclSpec.kind.get('device')?.interned);
  assert.ok(openclSpec.kind.get('event')?.transient);
  for (const kind of openclSpec.handles) assert.type(kind.invalidStatus, 'number', `${kind.name} has an invalid status`);
});

test('every name of OPENCL_12_FUNCTIONS and OPENCL_LATER_FUNCTIONS is in the spec, and nothing else', () => {
  const names = [...openclSpec.fn.keys()];
  const listed = [...OPENCL_12_FUNCTIONS, ...OPENCL_LATER_FUNCTIONS];
  assert.equal([...names].sort(), [...listed].sort());
  assert.is(new Set(listed).size, listed.length, 'no duplicates');
});

test('OPENCL_LATER_FUNCTIONS is what cl.h declares for OpenCL 2.0 to 3.0, in header order', () => {
  assert.equal([...OPENCL_LATER_FUNCTIONS], parseDeclarations(readHeader()).filter((d) => d.version > 12).map((d) => d.name));
});

test('OPENCL_12_FUNCTIONS is what cl.h declares for OpenCL <= 1.2', () => {
  const declared = cl12().map((d) => d.name);
  assert.equal([...OPENCL_12_FUNCTIONS].sort(), [...declared].sort());
  for (const name of ['clCreateImage2D', 'clEnqueueMarker', 'clEnqueueWaitForEvents', 'clEnqueueBarrier', 'clUnloadCompiler',
    'clGetExtensionFunctionAddress', 'clCreateCommandQueue', 'clCreateSampler', 'clEnqueueTask']) {
    assert.ok(OPENCL_12_FUNCTIONS.includes(name), name);
  }
  for (const name of ['clCreateCommandQueueWithProperties', 'clSVMAlloc', 'clCreatePipe', 'clCreateProgramWithIL']) {
    assert.not.ok(OPENCL_12_FUNCTIONS.includes(name), name);
  }
});

test('every implemented function has the C prototype: argument count, names, order and types', () => {
  const decls = new Map(parseDeclarations(readHeader()).map((d) => [d.name, d]));
  for (const f of openclSpec.functions) {
    if (f.unsupported !== undefined) continue;
    const c = decls.get(f.name)!;
    assert.is(f.args.length, c.params.length, `${f.name}: argument count`);
    assert.equal(f.args.map((a) => a.name), c.params.map((p) => p.name), `${f.name}: argument names in C order`);
    f.args.forEach((a, i) => checkArgType(f, a, c.params[i]!));
    checkReturnType(f, f.returns, c.returns);
  }
});

function checkArgType(f: FunctionSpec, a: ArgSpec, p: CParam): void {
  const where = `${f.name}(${a.name}: ${p.type})`;
  const pointer = p.type.endsWith('*');
  switch (a.role) {
    case 'scalar': case 'count':
      assert.not.ok(pointer, `${where} is passed by value`);
      assert.is(a.type, SCALAR_OF_C[baseType(p.type)], `${where}: scalar type`);
      break;
    case 'handle':
      assert.is(a.kind, HANDLE_OF_C[p.type], `${where}: handle kind`);
      break;
    case 'handles': case 'handleOut': case 'handlesOut':
      assert.is(a.kind, HANDLE_OF_C[p.type.replace(/\bconst\b/g, '').replace(/\*$/, '').trim()], `${where}: handle kind`);
      break;
    case 'scalars': case 'scalarsOut': case 'scalarOut': case 'properties': {
      assert.ok(pointer, `${where} is a pointer`);
      const element = baseType(p.type.replace(/\*$/, '').trim());
      if (element !== 'void') assert.is(a.type, SCALAR_OF_C[element], `${where}: element type`);
      break;
    }
    case 'callback':
      assert.is(p.type, 'callback', `${where} is a function pointer`);
      break;
    case 'errcode':
      assert.is(p.type, 'cl_int *', where);
      break;
    default:
      assert.ok(pointer, `${where} is a pointer`);
  }
}

function checkReturnType(f: FunctionSpec, r: ReturnSpec, c: string): void {
  const where = `${f.name} returns ${c}`;
  if (r.role === 'status') assert.is(c, 'cl_int', where);
  else if (r.role === 'handle') assert.is(r.kind, HANDLE_OF_C[c], where);
  else if (r.role === 'mapped') assert.is(c.replace(/\s+/g, ''), 'void*', where);
  else assert.unreachable(`${where}: unexpected return role ${r.role}`);
}

test('CL_STATUS_NAMES names every error code of cl.h up to 1.2', () => {
  const codes = parseErrorCodes(readHeader());
  assert.is(codes.size, 59, `found ${codes.size} error codes`);
  for (const [name, value] of codes) {
    assert.is(CL_STATUS_NAMES[String(value)], name, `${name} (${value})`);
    assert.is((CL as Record<string, number>)[name.slice(3)], value, `CL.${name.slice(3)}`);
  }
  assert.is(CL_STATUS_NAMES['-49'], 'CL_INVALID_ARG_INDEX');
  assert.is(CL_STATUS_NAMES['0'], 'CL_SUCCESS');
  assert.not.ok('-69' in CL_STATUS_NAMES, 'no OpenCL 2.0 codes');
});

test('roles: wait lists, errcodes, info queries, blocking and record classes', () => {
  for (const f of openclSpec.functions) {
    if (f.unsupported !== undefined) continue;
    const byName = new Map(f.args.map((a) => [a.name, a]));
    if (byName.has('errcode_ret')) assert.is(byName.get('errcode_ret')!.role, 'errcode', f.name);
    if (byName.has('event_wait_list')) {
      assert.is(byName.get('num_events_in_wait_list')!.role, 'count', f.name);
      assert.equal(byName.get('event_wait_list'), { role: 'handles', name: 'event_wait_list', kind: 'event', count: 'num_events_in_wait_list', nullable: true });
      assert.equal(byName.get('event'), { role: 'handleOut', name: 'event', kind: 'event', optional: true });
    }
    const info = f.args.find((a) => a.role === 'info');
    if (info) {
      assert.is(f.record, 'query', f.name);
      assert.is(byName.get('param_value_size_ret')?.role, 'scalarOut', f.name);
    }
    if (/^clGet\w*Info$/.test(f.name)) assert.ok(info, `${f.name} has an info value`);
    if (/^clRetain/.test(f.name)) assert.is(f.record, 'retain', f.name);
    if (/^clRelease/.test(f.name)) assert.is(f.record, 'release', f.name);
    if (/^clCreate/.test(f.name)) assert.is(f.record, 'create', f.name);
    if (/^clEnqueue(Read|Map)/.test(f.name)) {
      assert.ok(f.blocking, `${f.name} blocks`);
      const flag = f.args.find((a) => /^blocking_/.test(a.name));
      assert.is(flag?.role === 'scalar' ? flag.workerValue : undefined, 1, `${f.name} always blocks in the worker`);
    }
  }
  const setArg = openclSpec.fn.get('clSetKernelArg')!;
  assert.is(setArg.record, 'configure');
  assert.is(setArg.target, 'kernel');
  assert.equal(setArg.supersedeKey, ['arg_index']);
  for (const name of ['clFinish', 'clWaitForEvents', 'clBuildProgram', 'clCompileProgram', 'clLinkProgram']) {
    assert.ok(openclSpec.fn.get(name)!.blocking, `${name} blocks`);
  }
  assert.not.ok(openclSpec.fn.get('clCreateProgramWithBinary')!.blocking);
  const flags = openclSpec.fn.get('clCreateBuffer')!.args[1]!;
  assert.equal(flags.role === 'scalar' ? flags.rewrite : undefined, { ifSet: CL.MEM_USE_HOST_PTR, clear: CL.MEM_USE_HOST_PTR, set: CL.MEM_COPY_HOST_PTR });
  const programInfo = openclSpec.fn.get('clGetProgramInfo')!.args.find((a) => a.role === 'info');
  assert.equal(programInfo?.role === 'info' ? programInfo.pointerArrays : undefined, { [String(CL.PROGRAM_BINARIES)]: String(CL.PROGRAM_BINARY_SIZES) });
  const unsupported = openclSpec.functions.filter((f) => f.unsupported !== undefined).map((f) => f.name);
  for (const name of ['clEnqueueNativeKernel', 'clGetExtensionFunctionAddress', 'clGetExtensionFunctionAddressForPlatform']) {
    assert.ok(unsupported.includes(name), `${name} is unsupported`);
  }
});

test('handle-valued info parameters are declared for every 1.2 query that returns handles', () => {
  const params = (name: string): Record<string, string> => {
    const info = openclSpec.fn.get(name)!.args.find((a) => a.role === 'info');
    return info?.role === 'info' ? { ...info.handleParams } : {};
  };
  const k = (v: number): string => String(v);
  assert.equal(params('clGetPlatformInfo'), {});
  assert.equal(params('clGetDeviceInfo'), { [k(CL.DEVICE_PLATFORM)]: 'platform', [k(CL.DEVICE_PARENT_DEVICE)]: 'device' });
  assert.equal(params('clGetContextInfo'), { [k(CL.CONTEXT_DEVICES)]: 'device' });
  assert.equal(params('clGetCommandQueueInfo'), { [k(CL.QUEUE_CONTEXT)]: 'context', [k(CL.QUEUE_DEVICE)]: 'device' });
  assert.equal(params('clGetMemObjectInfo'), { [k(CL.MEM_CONTEXT)]: 'context', [k(CL.MEM_ASSOCIATED_MEMOBJECT)]: 'mem' });
  assert.equal(params('clGetImageInfo'), { [k(CL.IMAGE_BUFFER)]: 'mem' });
  assert.equal(params('clGetSamplerInfo'), { [k(CL.SAMPLER_CONTEXT)]: 'context' });
  assert.equal(params('clGetProgramInfo'), { [k(CL.PROGRAM_CONTEXT)]: 'context', [k(CL.PROGRAM_DEVICES)]: 'device' });
  assert.equal(params('clGetKernelInfo'), { [k(CL.KERNEL_CONTEXT)]: 'context', [k(CL.KERNEL_PROGRAM)]: 'program' });
  assert.equal(params('clGetEventInfo'), { [k(CL.EVENT_COMMAND_QUEUE)]: 'command_queue', [k(CL.EVENT_CONTEXT)]: 'context' });
});

// ---------------------------------------------------------------------------------------------------------------
// Explicit state of buffers on the installed OpenCL (PoCL), through a StateContext that calls the spec's functions
// with the worker's native convention: handles and handle returns as uintptr_t numbers, pointers as Buffers.

function koffiType(a: ArgSpec | ReturnSpec, statusType: ScalarType): string {
  const scalar: Record<ScalarType, string> = {
    int8: 'int8_t', uint8: 'uint8_t', int16: 'int16_t', uint16: 'uint16_t', int32: 'int32_t', uint32: 'uint32_t',
    int64: 'int64_t', uint64: 'uint64_t', size: 'size_t', uintptr: 'uintptr_t', float: 'float', double: 'double',
  };
  switch (a.role) {
    case 'scalar': case 'count': return scalar[a.type];
    case 'handle': return 'uintptr_t';
    case 'status': return scalar[statusType];
    case 'void': return 'void';
    default: return 'void *';
  }
}

interface Native {
  ctx: (queues: number[]) => StateContext;
  call: (fn: string, ...args: unknown[]) => unknown;
  lib: ReturnType<typeof koffi.load>;
}

let native: Native | undefined;
function openNative(): Native {
  if (native) return native;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libOpenCL.so.1');
  } catch (error) {
    assert.unreachable(`libOpenCL.so.1 does not load (${(error as Error).message}): ${INSTALL_HINT}`);
    throw error;
  }
  const fns = new Map<string, (...args: unknown[]) => unknown>();
  const call = (name: string, ...args: unknown[]): unknown => {
    let f = fns.get(name);
    if (!f) {
      const spec = openclSpec.fn.get(name)!;
      f = lib.func(name, koffiType(spec.returns, 'int32'), spec.args.map((a) => koffiType(a, 'int32'))) as (...args: unknown[]) => unknown;
      fns.set(name, f);
    }
    const result = f(...args);
    return openclSpec.fn.get(name)!.returns.role === 'mapped' ? result : Number(result);
  };
  native = {
    lib,
    call,
    ctx: (queues) => ({ callNative: call, callNativeOffThread: async (f, ...args) => call(f, ...args), liveHandles: (kind) => (kind === 'command_queue' ? queues : []), status: openclSpec.status }),
  };
  return native;
}

function ok(status: unknown, what: string): void {
  assert.is(status, CL.SUCCESS, `${what} returned ${CL_STATUS_NAMES[String(status)] ?? String(status)}`);
}

function setup(): { n: Native; context: number; device: number; queue: number; close: () => void } {
  const n = openNative();
  const count = Buffer.alloc(4);
  ok(n.call('clGetPlatformIDs', 0, null, count), 'clGetPlatformIDs');
  if (count.readUInt32LE(0) === 0) assert.unreachable(`no OpenCL platform: ${INSTALL_HINT}`);
  const platforms = Buffer.alloc(8 * count.readUInt32LE(0));
  ok(n.call('clGetPlatformIDs', count.readUInt32LE(0), platforms, null), 'clGetPlatformIDs');
  const platform = Number(platforms.readBigUInt64LE(0));
  const devices = Buffer.alloc(8);
  ok(n.call('clGetDeviceIDs', platform, CL.DEVICE_TYPE_ALL, 1, devices, null), 'clGetDeviceIDs');
  const device = Number(devices.readBigUInt64LE(0));
  const err = Buffer.alloc(4);
  const props = Buffer.alloc(24);
  props.writeBigUInt64LE(BigInt(CL.CONTEXT_PLATFORM), 0);
  props.writeBigUInt64LE(BigInt(platform), 8);
  const context = n.call('clCreateContext', props, 1, devices, null, null, err) as number;
  ok(err.readInt32LE(0), 'clCreateContext');
  const queue = n.call('clCreateCommandQueue', context, device, 0, err) as number;
  ok(err.readInt32LE(0), 'clCreateCommandQueue');
  return {
    n, context, device, queue,
    close: () => {
      ok(n.call('clReleaseCommandQueue', queue), 'clReleaseCommandQueue');
      ok(n.call('clReleaseContext', context), 'clReleaseContext');
    },
  };
}

function createBuffer(n: Native, context: number, flags: number, bytes: Buffer): number {
  const err = Buffer.alloc(4);
  const mem = n.call('clCreateBuffer', context, flags | CL.MEM_COPY_HOST_PTR, bytes.length, bytes, err) as number;
  ok(err.readInt32LE(0), 'clCreateBuffer');
  return mem;
}

function readBack(n: Native, queue: number, mem: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  ok(n.call('clEnqueueReadBuffer', queue, mem, 1, 0, size, out, 0, null, null), 'clEnqueueReadBuffer');
  return out;
}

test('mem explicit state: extract and restore a buffer and a sub-buffer on PoCL', async () => {
  const { n, context, queue, close } = setup();
  const state = openclSpec.kind.get('mem')!.state!;
  const initial = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));
  const mem = createBuffer(n, context, CL.MEM_READ_WRITE, initial);
  const extracted = await state.extract(n.ctx([queue]), mem);
  assert.equal(Buffer.from(extracted), initial, 'extract with a live queue of the context');
  assert.equal(Buffer.from(await state.extract(n.ctx([]), mem)), initial, 'extract with a temporary queue');

  const replacement = Buffer.from(Array.from({ length: 4096 }, (_, i) => (255 - i) & 0xff));
  await state.restore(n.ctx([queue]), mem, new Uint8Array(replacement));
  assert.equal(readBack(n, queue, mem, 4096), replacement, 'restore with a live queue');
  await state.restore(n.ctx([]), mem, new Uint8Array(initial));
  assert.equal(readBack(n, queue, mem, 4096), initial, 'restore with a temporary queue');

  const region = Buffer.alloc(16);
  region.writeBigUInt64LE(1024n, 0);
  region.writeBigUInt64LE(512n, 8);
  const err = Buffer.alloc(4);
  const sub = n.call('clCreateSubBuffer', mem, CL.MEM_READ_WRITE, CL.BUFFER_CREATE_TYPE_REGION, region, err) as number;
  ok(err.readInt32LE(0), 'clCreateSubBuffer');
  assert.equal(Buffer.from(await state.extract(n.ctx([queue]), sub)), initial.subarray(1024, 1536), 'sub-buffer contents');
  await state.restore(n.ctx([queue]), sub, new Uint8Array(512).fill(9));
  assert.equal(readBack(n, queue, mem, 4096).subarray(1024, 1536), Buffer.alloc(512, 9), 'sub-buffer restored into its parent');

  try {
    await state.restore(n.ctx([queue]), mem, new Uint8Array(10));
    assert.unreachable('a size mismatch is refused');
  } catch (error) {
    assert.ok(AvaError.isAvaError(error) && error.code === 'ERR_AVA_BAD_CALL', String(error));
  }
  ok(n.call('clReleaseMemObject', sub), 'clReleaseMemObject');
  ok(n.call('clReleaseMemObject', mem), 'clReleaseMemObject');
  close();
});

test('mem explicit state: buffers the host may not access go through a staging buffer', async () => {
  const { n, context, queue, close } = setup();
  const state = openclSpec.kind.get('mem')!.state!;
  const initial = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  for (const hostFlag of [CL.MEM_HOST_NO_ACCESS, CL.MEM_HOST_WRITE_ONLY, CL.MEM_HOST_READ_ONLY]) {
    const mem = createBuffer(n, context, CL.MEM_READ_WRITE | hostFlag, initial);
    assert.equal(Buffer.from(await state.extract(n.ctx([queue]), mem)), initial, `extract with flag ${hostFlag}`);
    const replacement = Buffer.alloc(1000, 0x5a);
    await state.restore(n.ctx([]), mem, new Uint8Array(replacement));
    assert.equal(Buffer.from(await state.extract(n.ctx([queue]), mem)), replacement, `restore with flag ${hostFlag}`);
    ok(n.call('clReleaseMemObject', mem), 'clReleaseMemObject');
  }
  close();
});

test('mem explicit state: images of every dimension round-trip, host-inaccessible ones through a staging buffer; failures carry the CL status', async () => {
  const { n, context, queue, close } = setup();
  const state = openclSpec.kind.get('mem')!.state!;
  const format = Buffer.alloc(8);
  format.writeUInt32LE(CL.RGBA, 0);
  format.writeUInt32LE(CL.UNSIGNED_INT8, 4);
  const err = Buffer.alloc(4);
  const image = (type: number, width: number, height: number, depth: number, layers: number, flags: number = CL.MEM_READ_WRITE): number => {
    const desc = Buffer.alloc(72);
    desc.writeUInt32LE(type, 0);
    [width, height, depth, layers].forEach((v, k) => desc.writeBigUInt64LE(BigInt(v), 8 + 8 * k));
    const made = n.call('clCreateImage', context, flags, format, desc, null, err) as number;
    ok(err.readInt32LE(0), 'clCreateImage');
    return made;
  };
  const shapes: [string, number, number][] = [
    ['1D', image(CL.MEM_OBJECT_IMAGE1D, 7, 0, 0, 0), 7],
    ['1D array', image(CL.MEM_OBJECT_IMAGE1D_ARRAY, 5, 0, 0, 3), 15],
    ['2D', image(CL.MEM_OBJECT_IMAGE2D, 6, 5, 0, 0), 30],
    ['2D array', image(CL.MEM_OBJECT_IMAGE2D_ARRAY, 4, 3, 0, 2), 24],
    ['3D', image(CL.MEM_OBJECT_IMAGE3D, 4, 3, 2, 0), 24],
    ['2D, host no access', image(CL.MEM_OBJECT_IMAGE2D, 6, 5, 0, 0, CL.MEM_READ_WRITE | CL.MEM_HOST_NO_ACCESS), 30],
  ];
  for (const [label, mem, pixels] of shapes) {
    const bytes = new Uint8Array(Array.from({ length: 4 * pixels }, (_, i) => (i * 7 + pixels) & 0xff));
    await state.restore(n.ctx([queue]), mem, bytes);
    assert.equal([...(await state.extract(n.ctx([queue]), mem))], [...bytes], `${label}: restored pixels read back`);
    try {
      await state.restore(n.ctx([queue]), mem, bytes.subarray(1));
      assert.unreachable(`${label}: a wrong size is refused`);
    } catch (error) {
      assert.ok(AvaError.isAvaError(error) && error.code === 'ERR_AVA_BAD_CALL', String(error));
    }
    ok(n.call('clReleaseMemObject', mem), 'clReleaseMemObject');
  }
  // A 1D image on a buffer has no state of its own (the buffer's bytes travel with the buffer).
  const backing = createBuffer(n, context, CL.MEM_READ_WRITE, Buffer.alloc(64, 3));
  const desc = Buffer.alloc(72);
  desc.writeUInt32LE(CL.MEM_OBJECT_IMAGE1D_BUFFER, 0);
  desc.writeBigUInt64LE(16n, 8);
  desc.writeBigUInt64LE(BigInt(backing), 64);
  const linear = n.call('clCreateImage', context, CL.MEM_READ_WRITE, format, desc, null, err) as number;
  ok(err.readInt32LE(0), 'clCreateImage (1D buffer)');
  assert.is((await state.extract(n.ctx([queue]), linear)).byteLength, 0, '1D image buffer: no state of its own');
  ok(n.call('clReleaseMemObject', linear), 'clReleaseMemObject');
  ok(n.call('clReleaseMemObject', backing), 'clReleaseMemObject');
  try {
    // A context-less fake: clGetMemObjectInfo fails; the hook reports the OpenCL status, it does not crash.
    const failing: StateContext = { ...n.ctx([]), callNative: (f, ...args) => (f === 'clGetMemObjectInfo' ? CL.INVALID_MEM_OBJECT : n.call(f, ...args)) };
    await state.extract(failing, 1);
    assert.unreachable('a failing status throws');
  } catch (error) {
    assert.ok(AvaError.isAvaError(error) && error.code === 'ERR_AVA_API_STATUS', String(error));
    assert.is((error as AvaError).details.statusName, 'CL_INVALID_MEM_OBJECT');
  }
  close();
});

test('every callback prototype of the spec is accepted by koffi, one prototype per name', () => {
  const byName = new Map<string, string>();
  let i = 0;
  for (const f of openclSpec.functions) {
    for (const a of f.args) {
      if (a.role !== 'callback') continue;
      const name = a.proto.match(/^\s*\w+\s+(\w+)\s*\(/)?.[1];
      assert.ok(name, `${f.name}(${a.name}): a named prototype`);
      // koffi registers prototype names globally: one name must always mean the same prototype (the worker
      // declares each distinct prototype string once). Checked here under a fresh name, to register nothing else.
      assert.is(byName.get(name!) ?? a.proto, a.proto, `${name} has one prototype`);
      byName.set(name!, a.proto);
      assert.ok(koffi.proto(a.proto.replace(name!, `opencl_spec_test_proto_${i++}`)), `${f.name}(${a.name})`);
    }
  }
});

/** Bytes of one size_t[3]. */
const sizes3 = (x: number, y: number, z: number): Buffer => {
  const b = Buffer.alloc(24);
  [x, y, z].forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
  return b;
};
/** One pointer-sized slot holding a handle (a handle array of one, or a clSetKernelArg value). */
const slot = (ptr: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(ptr), 0);
  return b;
};
const ptrAt = (b: Buffer, i = 0): number => Number(b.readBigUInt64LE(8 * i));
/** A `const char **` of one string (NUL-terminated). */
const stringTable = (text: string): { table: Buffer; keep: Buffer } => {
  const keep = Buffer.from(`${text}\0`);
  return { table: slot(Number(koffi.address(keep))), keep };
};

test('every implemented function runs on PoCL with the spec signature and argument order', async () => {
  const { n, context, device, close } = setup();
  const called = new Set<string>();
  const err = Buffer.alloc(4);
  const sizeRet = Buffer.alloc(8);
  const value = Buffer.alloc(64);
  const run = (name: string, expect: number, ...args: unknown[]): unknown => {
    called.add(name);
    const result = n.call(name, ...args);
    if (openclSpec.fn.get(name)!.returns.role === 'status') ok(result === expect ? CL.SUCCESS : result, name);
    else ok(err.readInt32LE(0) === expect ? CL.SUCCESS : err.readInt32LE(0), name);
    return result;
  };
  const call = (name: string, ...args: unknown[]): unknown => run(name, CL.SUCCESS, ...args);
  const handle = (name: string, ...args: unknown[]): number => {
    err.writeInt32LE(-9999, 0);
    return call(name, ...args) as number;
  };

  // Platform, devices, sub-devices
  const count = Buffer.alloc(4);
  call('clGetPlatformIDs', 0, null, count);
  const platforms = Buffer.alloc(8 * count.readUInt32LE(0));
  call('clGetPlatformIDs', count.readUInt32LE(0), platforms, null);
  const platform = ptrAt(platforms);
  call('clGetPlatformInfo', platform, CL.PLATFORM_NAME, 0, null, sizeRet);
  assert.ok(Number(sizeRet.readBigUInt64LE(0)) > 1, 'platform name size');
  const devices = Buffer.alloc(8);
  call('clGetDeviceIDs', platform, CL.DEVICE_TYPE_ALL, 1, devices, null);
  call('clGetDeviceInfo', device, CL.DEVICE_PLATFORM, 8, value, null);
  assert.is(ptrAt(value), platform, 'CL_DEVICE_PLATFORM');
  const partition = Buffer.alloc(32);
  partition.writeBigInt64LE(BigInt(CL.DEVICE_PARTITION_BY_COUNTS), 0);
  partition.writeBigInt64LE(1n, 8);
  const subDevices = Buffer.alloc(8);
  call('clCreateSubDevices', device, partition, 1, subDevices, count);
  assert.is(count.readUInt32LE(0), 1, 'one sub-device');
  call('clRetainDevice', ptrAt(subDevices));
  call('clReleaseDevice', ptrAt(subDevices));
  call('clReleaseDevice', ptrAt(subDevices));

  // Contexts and queues
  const props = Buffer.alloc(24);
  props.writeBigInt64LE(BigInt(CL.CONTEXT_PLATFORM), 0);
  props.writeBigInt64LE(BigInt(platform), 8);
  const context2 = handle('clCreateContextFromType', props, CL.DEVICE_TYPE_ALL, null, null, err);
  call('clRetainContext', context2);
  call('clReleaseContext', context2);
  call('clReleaseContext', context2);
  call('clGetContextInfo', context, CL.CONTEXT_DEVICES, 8, value, null);
  assert.is(ptrAt(value), device, 'CL_CONTEXT_DEVICES');
  const queue = handle('clCreateCommandQueue', context, device, CL.QUEUE_PROFILING_ENABLE, err);
  call('clRetainCommandQueue', queue);
  call('clReleaseCommandQueue', queue);
  call('clGetCommandQueueInfo', queue, CL.QUEUE_CONTEXT, 8, value, null);
  assert.is(ptrAt(value), context, 'CL_QUEUE_CONTEXT');

  // Buffers
  const N = 64;
  const initial = Buffer.alloc(4 * N);
  for (let i = 0; i < N; i++) initial.writeInt32LE(i, 4 * i);
  const mem = handle('clCreateBuffer', context, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, 4 * N, initial, err);
  const region = Buffer.alloc(16);
  region.writeBigUInt64LE(0n, 0);
  region.writeBigUInt64LE(128n, 8);
  const sub = handle('clCreateSubBuffer', mem, CL.MEM_READ_WRITE, CL.BUFFER_CREATE_TYPE_REGION, region, err);
  call('clGetMemObjectInfo', sub, CL.MEM_ASSOCIATED_MEMOBJECT, 8, value, null);
  assert.is(ptrAt(value), mem, 'CL_MEM_ASSOCIATED_MEMOBJECT');
  call('clRetainMemObject', sub);
  call('clReleaseMemObject', sub);
  run('clSetMemObjectDestructorCallback', CL.INVALID_VALUE, mem, null, null);
  call('clGetSupportedImageFormats', context, CL.MEM_READ_WRITE, CL.MEM_OBJECT_IMAGE2D, 0, null, count);
  const formats = Buffer.alloc(8 * count.readUInt32LE(0));
  call('clGetSupportedImageFormats', context, CL.MEM_READ_WRITE, CL.MEM_OBJECT_IMAGE2D, count.readUInt32LE(0), formats, null);

  // Images: the 1.1 entry points, clCreateImage with a cl_image_desc, and the transfers sized by the element size
  const format = Buffer.alloc(8);
  format.writeUInt32LE(CL.RGBA, 0);
  format.writeUInt32LE(CL.UNSIGNED_INT8, 4);
  const image = handle('clCreateImage2D', context, CL.MEM_READ_WRITE, format, 4, 4, 0, null, err);
  const desc = Buffer.alloc(72);
  desc.writeUInt32LE(CL.MEM_OBJECT_IMAGE2D, 0);
  desc.writeBigUInt64LE(4n, 8);
  desc.writeBigUInt64LE(4n, 16);
  const image2 = handle('clCreateImage', context, CL.MEM_READ_WRITE, format, desc, null, err);
  const volume = handle('clCreateImage3D', context, CL.MEM_READ_WRITE, format, 4, 4, 2, 0, 0, null, err);
  call('clGetImageInfo', image, CL.IMAGE_ELEMENT_SIZE, 8, value, null);
  assert.is(ptrAt(value), 4, 'CL_IMAGE_ELEMENT_SIZE');
  const color = Buffer.alloc(16);
  color.writeUInt32LE(7, 0);
  call('clEnqueueFillImage', queue, image, color, sizes3(0, 0, 0), sizes3(4, 4, 1), 0, null, null);
  call('clEnqueueCopyImage', queue, image, image2, sizes3(0, 0, 0), sizes3(0, 0, 0), sizes3(4, 4, 1), 0, null, null);
  call('clEnqueueCopyImageToBuffer', queue, image2, mem, sizes3(0, 0, 0), sizes3(4, 4, 1), 0, 0, null, null);
  const pixels = Buffer.alloc(64);
  call('clEnqueueReadBuffer', queue, mem, 1, 0, 64, pixels, 0, null, null);
  assert.is(pixels[0], 7, 'fill + copy image + copy to buffer');
  const texel = Buffer.from([1, 2, 3, 4]);
  call('clEnqueueWriteImage', queue, volume, 1, sizes3(3, 3, 1), sizes3(1, 1, 1), 0, 0, texel, 0, null, null);
  const back = Buffer.alloc(4);
  call('clEnqueueReadImage', queue, volume, 1, sizes3(3, 3, 1), sizes3(1, 1, 1), 0, 0, back, 0, null, null);
  assert.equal([...back], [1, 2, 3, 4], 'write + read image');
  const rowPitch = Buffer.alloc(8);
  err.writeInt32LE(-9999, 0);
  const mappedImage = run('clEnqueueMapImage', CL.SUCCESS, queue, image, 1, CL.MAP_READ, sizes3(0, 0, 0), sizes3(4, 4, 1), rowPitch, null, 0, null, null, err);
  assert.ok(Number(rowPitch.readBigUInt64LE(0)) >= 16, 'mapped row pitch');
  call('clEnqueueUnmapMemObject', queue, image, mappedImage, 0, null, null);
  call('clFinish', queue);
  ok(n.call('clReleaseMemObject', volume), 'clReleaseMemObject');
  call('clEnqueueCopyBufferToImage', queue, mem, image, 0, sizes3(0, 0, 0), sizes3(4, 4, 1), 0, null, null);
  call('clFinish', queue);
  ok(n.call('clReleaseMemObject', image2), 'clReleaseMemObject');
  ok(n.call('clReleaseMemObject', image), 'clReleaseMemObject');

  // The later constructors "with properties" (NULL and real property lists), pipes
  const propertyList = (...pairs: number[]): Buffer => {
    const list = Buffer.alloc(8 * (pairs.length + 1));
    pairs.forEach((v, k) => list.writeBigUInt64LE(BigInt(v), 8 * k));
    return list;
  };
  const queue2 = handle('clCreateCommandQueueWithProperties', context, device, propertyList(CL.QUEUE_PROPERTIES, CL.QUEUE_PROFILING_ENABLE), err);
  call('clGetCommandQueueInfo', queue2, CL.QUEUE_PROPERTIES, 8, value, null);
  assert.is(Number(value.readBigUInt64LE(0)), CL.QUEUE_PROFILING_ENABLE, 'queue properties from the list');
  // PoCL 3.1 has no device-side queues, timers, pipes, sub-group queries or destructor callbacks: the same status
  // as natively is all that can be checked of the signature here.
  run('clSetDefaultDeviceCommandQueue', CL.INVALID_OPERATION, context, device, queue2);
  const stamp = Buffer.alloc(8);
  run('clGetDeviceAndHostTimer', CL.INVALID_OPERATION, device, stamp, Buffer.alloc(8));
  run('clGetHostTimer', CL.INVALID_OPERATION, device, stamp);
  run('clSetContextDestructorCallback', CL.INVALID_VALUE, context, null, null);
  err.writeInt32LE(-9999, 0);
  run('clCreatePipe', CL.INVALID_OPERATION, context, CL.MEM_READ_WRITE, 4, 16, null, err);
  called.add('clGetPipeInfo'); // no pipe to ask about on PoCL: checked by the prototype test only
  const withProps = handle('clCreateBufferWithProperties', context, null, CL.MEM_READ_WRITE, 64, null, err);
  call('clReleaseMemObject', withProps);
  const imageDesc = Buffer.alloc(72);
  imageDesc.writeUInt32LE(CL.MEM_OBJECT_IMAGE2D, 0);
  imageDesc.writeBigUInt64LE(4n, 8);
  imageDesc.writeBigUInt64LE(4n, 16);
  const imageWithProps = handle('clCreateImageWithProperties', context, null, CL.MEM_READ_WRITE, format, imageDesc, null, err);
  call('clReleaseMemObject', imageWithProps);
  const samplerWithProps = handle('clCreateSamplerWithProperties', context, propertyList(CL.SAMPLER_NORMALIZED_COORDS, 0), err);
  call('clReleaseSampler', samplerWithProps);
  err.writeInt32LE(-9999, 0);
  run('clCreateProgramWithIL', CL.INVALID_VALUE, context, Buffer.alloc(16), 16, err);
  call('clReleaseCommandQueue', queue2);

  // Samplers
  const sampler = handle('clCreateSampler', context, 0, CL.ADDRESS_CLAMP, CL.FILTER_NEAREST, err);
  call('clRetainSampler', sampler);
  call('clReleaseSampler', sampler);
  call('clGetSamplerInfo', sampler, CL.SAMPLER_CONTEXT, 8, value, null);
  assert.is(ptrAt(value), context, 'CL_SAMPLER_CONTEXT');
  call('clReleaseSampler', sampler);

  // Programs
  const source = stringTable('__kernel void add(__global int *a, int v) { a[get_global_id(0)] += v; }\n__kernel void one(__global int *a) { a[0] = 1; }\n');
  const program = handle('clCreateProgramWithSource', context, 1, source.table, null, err);
  let built = false;
  const notify = koffi.register(() => { built = true; }, koffi.pointer(koffi.proto('void smoke_build_notify(void *program, void *user_data)')));
  const options = Buffer.from('-cl-kernel-arg-info\0');
  call('clBuildProgram', program, 1, devices, options, notify, null);
  // A cold kernel cache on a loaded machine can take seconds to build: wait by time, not by a count of polls.
  for (const deadline = Date.now() + 30_000; !built && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
  assert.ok(built, 'the build notify ran');
  call('clGetProgramBuildInfo', program, device, CL.PROGRAM_BUILD_STATUS, 4, value, null);
  assert.is(value.readInt32LE(0), CL.BUILD_SUCCESS, 'build status');
  call('clGetProgramInfo', program, CL.PROGRAM_BINARY_SIZES, 8, value, null);
  const binary = Buffer.alloc(ptrAt(value));
  call('clGetProgramInfo', program, CL.PROGRAM_BINARIES, 8, slot(Number(koffi.address(binary))), null);
  const binaryStatus = Buffer.alloc(4);
  const fromBinary = handle('clCreateProgramWithBinary', context, 1, devices, slot(binary.length), slot(Number(koffi.address(binary))), binaryStatus, err);
  assert.is(binaryStatus.readInt32LE(0), CL.SUCCESS, 'binary status');
  const specValue = Buffer.alloc(4);
  run('clSetProgramSpecializationConstant', CL.INVALID_PROGRAM, fromBinary, 0, 4, specValue);
  run('clSetProgramReleaseCallback', CL.INVALID_OPERATION, fromBinary, null, null);
  call('clRetainProgram', fromBinary);
  call('clReleaseProgram', fromBinary);
  call('clReleaseProgram', fromBinary);
  const builtIn = handle('clCreateProgramWithBuiltInKernels', context, 1, devices, Buffer.from('pocl.add.i8\0'), err);
  call('clReleaseProgram', builtIn);
  const part = handle('clCreateProgramWithSource', context, 1, stringTable('__kernel void twice(__global int *a) { a[get_global_id(0)] *= 2; }\n').table, null, err);
  call('clCompileProgram', part, 0, null, null, 0, null, null, null, null);
  const linked = handle('clLinkProgram', context, 0, null, null, 1, slot(part), null, null, err);
  call('clReleaseProgram', linked);
  call('clReleaseProgram', part);

  // Kernels
  const kernel = handle('clCreateKernel', program, Buffer.from('add\0'), err);
  call('clCreateKernelsInProgram', program, 0, null, count);
  assert.is(count.readUInt32LE(0), 2, 'two kernels');
  const kernels = Buffer.alloc(16);
  call('clCreateKernelsInProgram', program, 2, kernels, null);
  call('clRetainKernel', kernel);
  call('clReleaseKernel', kernel);
  call('clGetKernelInfo', kernel, CL.KERNEL_PROGRAM, 8, value, null);
  assert.is(ptrAt(value), program, 'CL_KERNEL_PROGRAM');
  call('clGetKernelArgInfo', kernel, 1, CL.KERNEL_ARG_NAME, 0, null, sizeRet);
  call('clGetKernelWorkGroupInfo', kernel, device, CL.KERNEL_WORK_GROUP_SIZE, 8, value, null);
  run('clGetKernelSubGroupInfo', CL.INVALID_OPERATION, kernel, device, 0x2033, 8, slot(1), 8, value, null);
  call('clSetKernelArg', kernel, 0, 8, slot(mem));
  const three = Buffer.alloc(4);
  three.writeInt32LE(3, 0);
  call('clSetKernelArg', kernel, 1, 4, three);

  // Transfers and kernels
  call('clEnqueueWriteBuffer', queue, mem, 1, 0, 4 * N, initial, 0, null, null);
  const event = Buffer.alloc(8);
  call('clEnqueueNDRangeKernel', queue, kernel, 1, null, slot(N), null, 0, null, event);
  call('clWaitForEvents', 1, event);
  call('clGetEventInfo', ptrAt(event), CL.EVENT_COMMAND_QUEUE, 8, value, null);
  assert.is(ptrAt(value), queue, 'CL_EVENT_COMMAND_QUEUE');
  call('clGetEventProfilingInfo', ptrAt(event), CL.PROFILING_COMMAND_END, 8, value, null);
  call('clRetainEvent', ptrAt(event));
  call('clReleaseEvent', ptrAt(event));
  call('clReleaseEvent', ptrAt(event));
  const out = Buffer.alloc(4 * N);
  call('clEnqueueReadBuffer', queue, mem, 1, 0, 4 * N, out, 0, null, null);
  assert.is(out.readInt32LE(4 * 10), 13, 'kernel result');
  const oneKernel = [ptrAt(kernels, 0), ptrAt(kernels, 1)].find((k) => {
    call('clGetKernelInfo', k, CL.KERNEL_FUNCTION_NAME, 64, value, null);
    return value.toString('latin1', 0, 4) === 'one\0';
  });
  assert.ok(oneKernel, 'clCreateKernelsInProgram made "one"');
  call('clSetKernelArg', oneKernel, 0, 8, slot(mem));
  call('clEnqueueTask', queue, oneKernel, 0, null, null);
  const rect = Buffer.alloc(4 * N);
  call('clEnqueueReadBufferRect', queue, mem, 1, sizes3(0, 0, 0), sizes3(0, 0, 0), sizes3(16, 2, 1), 32, 0, 32, 0, rect, 0, null, null);
  assert.is(rect.readInt32LE(0), 1, 'task result via a rect read');
  call('clEnqueueWriteBufferRect', queue, mem, 1, sizes3(0, 0, 0), sizes3(0, 0, 0), sizes3(16, 2, 1), 32, 0, 32, 0, initial, 0, null, null);
  const pattern = Buffer.alloc(4, 0xab);
  call('clEnqueueFillBuffer', queue, mem, pattern, 4, 128, 64, 0, null, null);
  const mem2 = handle('clCreateBuffer', context, CL.MEM_READ_WRITE, 4 * N, null, err);
  call('clEnqueueCopyBuffer', queue, mem, mem2, 0, 0, 4 * N, 0, null, null);
  call('clEnqueueCopyBufferRect', queue, mem, mem2, sizes3(0, 0, 0), sizes3(0, 0, 0), sizes3(16, 2, 1), 32, 0, 32, 0, 0, null, null);
  err.writeInt32LE(-9999, 0);
  const mapped = run('clEnqueueMapBuffer', CL.SUCCESS, queue, mem2, 1, CL.MAP_READ | CL.MAP_WRITE, 0, 4 * N, 0, null, null, err);
  const view = Buffer.from(koffi.view(mapped as never, 4 * N) as ArrayBuffer);
  assert.is(view[128], 0xab, 'copy of the fill, through a map');
  call('clEnqueueUnmapMemObject', queue, mem2, mapped, 0, null, null);
  call('clEnqueueMigrateMemObjects', queue, 1, slot(mem2), 0, 0, null, null);

  // Markers, barriers, user events, callbacks
  const marker = Buffer.alloc(8);
  call('clEnqueueMarkerWithWaitList', queue, 0, null, marker);
  call('clEnqueueBarrierWithWaitList', queue, 1, marker, null);
  const marker2 = Buffer.alloc(8);
  call('clEnqueueMarker', queue, marker2);
  call('clEnqueueBarrierWithWaitList', queue, 1, marker2, null);
  call('clEnqueueBarrier', queue);
  call('clFlush', queue);
  call('clFinish', queue);
  const user = handle('clCreateUserEvent', context, err);
  let fired = -1;
  const onEvent = koffi.register((_event: unknown, status: number) => { fired = status; },
    koffi.pointer(koffi.proto('void smoke_event_notify(void *event, int32_t event_command_status, void *user_data)')));
  call('clSetEventCallback', user, CL.COMPLETE, onEvent, null);
  call('clSetUserEventStatus', user, CL.COMPLETE);
  for (const deadline = Date.now() + 30_000; fired < 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
  assert.is(fired, CL.COMPLETE, 'the event callback ran');
  for (const e of [marker, marker2]) ok(n.call('clReleaseEvent', ptrAt(e)), 'clReleaseEvent');
  ok(n.call('clReleaseEvent', user), 'clReleaseEvent');

  // Teardown, and the compiler unloads last
  for (const k of [kernel, ptrAt(kernels, 0), ptrAt(kernels, 1)]) call('clReleaseKernel', k);
  call('clReleaseProgram', program);
  for (const m of [sub, mem2, mem]) call('clReleaseMemObject', m);
  call('clReleaseCommandQueue', queue);
  call('clUnloadPlatformCompiler', platform);
  call('clUnloadCompiler');
  called.add('clCreateContext');
  close();

  const implemented = openclSpec.functions.filter((f) => f.unsupported === undefined).map((f) => f.name);
  assert.equal(implemented.filter((name) => !called.has(name)), [], 'every implemented function was called');
});

test.run();
