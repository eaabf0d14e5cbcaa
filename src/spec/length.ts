/**
 * Evaluation of {@link LengthExpr}: the size of a buffer or array argument, from the values of the
 * call's other arguments. Named length functions are a closed set here and in the generated C front
 * (`src/cfront/c/ava_front.c`, in the order of {@link LENGTH_FUNCTION_NAMES}), so that a spec stays data.
 */
import { BadCallError, SpecError } from '../errors.js';
import type { ArgSpec, LengthExpr } from './types.js';

/** Reads an argument's value by name (`"arg"` or `"arg.field"`), as a number (arrays for `scalars` arguments). */
export type ArgLookup = (name: string) => unknown;
/** Reads attribute `attr` of the handle passed as argument `of` (undefined when unknown). */
export type AttributeLookup = (of: string, attr: string) => number | undefined;

const toNumber = (value: unknown, what: string): number => {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value === null || value === undefined) return 0;
  throw new BadCallError(`length argument ${what} is not a number`);
};

const vec3 = (value: unknown, what: string): [number, number, number] => {
  if (!Array.isArray(value) || value.length < 3) throw new BadCallError(`${what} must hold 3 numbers`);
  return [toNumber(value[0], what), toNumber(value[1], what), toNumber(value[2], what)];
};

/** Channels per pixel of an OpenCL channel order (`CL_R` 0x10B0 ...). */
const CHANNELS: Readonly<Record<number, number>> = {
  0x10b0: 1, 0x10b1: 1, 0x10b2: 2, 0x10b3: 2, 0x10b4: 3, 0x10b5: 4, 0x10b6: 4, 0x10b7: 4, 0x10b8: 1, 0x10b9: 1,
  0x10ba: 2, 0x10bb: 3, 0x10bc: 4, 0x10bd: 1, 0x10be: 1, 0x10bf: 3, 0x10c0: 4, 0x10c1: 4, 0x10c2: 4, 0x10c3: 4,
};
/** Bytes per channel of an OpenCL channel type (`CL_SNORM_INT8` 0x10D0 ...); negative: bytes per whole pixel (packed). */
const CHANNEL_BYTES: Readonly<Record<number, number>> = {
  0x10d0: 1, 0x10d1: 2, 0x10d2: 1, 0x10d3: 2, 0x10d4: -2, 0x10d5: -2, 0x10d6: -4, 0x10d7: 1, 0x10d8: 2, 0x10d9: 4,
  0x10da: 1, 0x10db: 2, 0x10dc: 4, 0x10dd: 2, 0x10de: 4, 0x10df: -4, 0x10e0: -4,
};
/** OpenCL image types whose second / third dimension is the array size. */
const IMAGE1D_ARRAY = 0x10f5;
const IMAGE2D_ARRAY = 0x10f3;
const IMAGE3D = 0x10f2;
const IMAGE2D = 0x10f1;

/**
 * Named length functions, each taking evaluated arguments (numbers, or arrays where an argument names a `scalars`
 * argument):
 * - `rectExtent(origin, region, rowPitch, slicePitch)`: bytes from the start of a host buffer up to the end of a
 *   rectangular region (OpenCL's `*BufferRect`), with OpenCL's defaults for zero pitches.
 * - `imageExtent(region, rowPitch, slicePitch, elementSize)`: bytes of an image region on the host.
 * - `imageElementSize(channelOrder, channelType)`: bytes per pixel of an OpenCL image format (0 for an unknown one:
 *   the library then refuses the format).
 * - `imageSize(imageType, width, height, depth, arraySize, rowPitch, slicePitch, elementSize)`: bytes of a whole
 *   image's host memory (`host_ptr` of clCreateImage), as OpenCL sizes it: row pitch x height, slice pitch x depth or
 *   x array size.
 */
export const LENGTH_FUNCTIONS: Readonly<Record<string, (args: unknown[]) => number>> = {
  rectExtent([origin, region, rowPitch, slicePitch]) {
    const [ox, oy, oz] = vec3(origin, 'origin');
    const [rx, ry, rz] = vec3(region, 'region');
    if (rx === 0 || ry === 0 || rz === 0) return 0;
    const row = toNumber(rowPitch, 'row pitch') || rx;
    const slice = toNumber(slicePitch, 'slice pitch') || row * ry;
    return (oz + rz - 1) * slice + (oy + ry - 1) * row + ox + rx;
  },
  imageExtent([region, rowPitch, slicePitch, elementSize]) {
    const [rx, ry, rz] = vec3(region, 'region');
    if (rx === 0 || ry === 0 || rz === 0) return 0;
    const row = toNumber(rowPitch, 'row pitch') || rx * toNumber(elementSize, 'element size');
    const slice = toNumber(slicePitch, 'slice pitch') || row * ry;
    return (rz - 1) * slice + (ry - 1) * row + rx * toNumber(elementSize, 'element size');
  },
  imageElementSize([order, type]) {
    const channels = CHANNELS[toNumber(order, 'channel order')] ?? 0;
    const bytes = CHANNEL_BYTES[toNumber(type, 'channel type')] ?? 0;
    return bytes < 0 ? (channels > 0 ? -bytes : 0) : channels * bytes;
  },
  imageSize([imageType, width, height, depth, arraySize, rowPitch, slicePitch, elementSize]) {
    const type = toNumber(imageType, 'image type');
    const w = toNumber(width, 'width');
    const elem = toNumber(elementSize, 'element size');
    const row = toNumber(rowPitch, 'row pitch') || w * elem;
    if (type === IMAGE1D_ARRAY) return (toNumber(slicePitch, 'slice pitch') || row) * toNumber(arraySize, 'array size');
    if (type === IMAGE2D) return row * toNumber(height, 'height');
    const slice = toNumber(slicePitch, 'slice pitch') || row * toNumber(height, 'height');
    if (type === IMAGE2D_ARRAY) return slice * toNumber(arraySize, 'array size');
    if (type === IMAGE3D) return slice * toNumber(depth, 'depth');
    return w * elem; // 1D images (and 1D image buffers, which take no host memory)
  },
};

/** The named length functions in the order the C front numbers them. */
export const LENGTH_FUNCTION_NAMES: readonly string[] = Object.keys(LENGTH_FUNCTIONS);

/** `"arg.field"` split into the argument and the field; `field` is undefined for a plain argument name. */
export function splitLengthName(name: string): { arg: string; field: string | undefined } {
  const dot = name.indexOf('.');
  return dot < 0 ? { arg: name, field: undefined } : { arg: name.slice(0, dot), field: name.slice(dot + 1) };
}

/** What a length expression may name: the function's arguments, and the attributes each handle kind declares. */
export interface LengthScope {
  readonly args: ReadonlyMap<string, ArgSpec>;
  readonly attributesOf: (kind: string) => readonly string[];
}

/** Checks that a length expression only names known arguments, fields, attributes and functions. */
export function checkLengthExpr(expr: LengthExpr, scope: LengthScope, where: string): void {
  if (typeof expr === 'number') {
    if (!Number.isInteger(expr) || expr < 0) throw new SpecError(`${where}: length ${expr} is not a non-negative integer`);
  } else if (typeof expr === 'string') {
    const { arg, field } = splitLengthName(expr);
    const a = scope.args.get(arg);
    if (!a) throw new SpecError(`${where}: length names unknown argument "${arg}"`);
    if (field !== undefined && (a.role !== 'struct' || !a.fields.some((x) => x.name === field && x.kind === undefined))) {
      throw new SpecError(`${where}: length names "${expr}", which is not a scalar field of a struct argument`);
    }
  } else if ('mul' in expr) {
    if (expr.mul.length === 0) throw new SpecError(`${where}: empty product`);
    for (const part of expr.mul) checkLengthExpr(part, scope, where);
  } else if ('fn' in expr) {
    if (!(expr.fn in LENGTH_FUNCTIONS)) throw new SpecError(`${where}: unknown length function "${expr.fn}"`);
    for (const part of expr.args) checkLengthExpr(part, scope, where);
  } else if ('attr' in expr) {
    const a = scope.args.get(expr.of);
    if (!a || a.role !== 'handle') throw new SpecError(`${where}: attribute "${expr.attr}" of "${expr.of}", which is not a handle argument`);
    if (!scope.attributesOf(a.kind).includes(expr.attr)) throw new SpecError(`${where}: handle kind "${a.kind}" has no attribute "${expr.attr}"`);
  } else {
    throw new SpecError(`${where}: malformed length expression`);
  }
}

/** Evaluates a length expression against a call's argument values (and its handles' attributes). */
export function evalLength(expr: LengthExpr, lookup: ArgLookup, attribute?: AttributeLookup): number {
  if (typeof expr === 'number') return expr;
  if (typeof expr === 'string') return toNumber(lookup(expr), expr);
  if ('mul' in expr) return expr.mul.reduce<number>((acc, part) => acc * evalLength(part, lookup, attribute), 1);
  if ('attr' in expr) return attribute?.(expr.of, expr.attr) ?? 0;
  const impl = LENGTH_FUNCTIONS[expr.fn]!;
  return impl(expr.args.map((part) => (typeof part === 'string' ? lookup(part) : evalLength(part, lookup, attribute))));
}
