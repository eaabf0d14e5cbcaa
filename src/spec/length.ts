/**
 * Evaluation of {@link LengthExpr}: the size of a buffer or array argument, from the values of the
 * call's other arguments. Named length functions are a closed set here (and, later, in the generated C
 * front), so that a spec stays data.
 */
import { BadCallError, SpecError } from '../errors.js';
import type { LengthExpr } from './types.js';

/** Reads an argument's value by name, as a number (arrays for `scalars` arguments). */
export type ArgLookup = (name: string) => unknown;

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

/**
 * Named length functions. `rectExtent(origin, region, rowPitch, slicePitch)`: bytes from the start of a
 * host buffer up to the end of a rectangular region (OpenCL's `*BufferRect`), with OpenCL's defaults for
 * zero pitches. `imageExtent(region, rowPitch, slicePitch, elementSize)`: bytes of an image region on the host.
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
};

/** Checks that a length expression only names known arguments and functions. */
export function checkLengthExpr(expr: LengthExpr, argNames: ReadonlySet<string>, where: string): void {
  if (typeof expr === 'number') {
    if (!Number.isInteger(expr) || expr < 0) throw new SpecError(`${where}: length ${expr} is not a non-negative integer`);
  } else if (typeof expr === 'string') {
    if (!argNames.has(expr)) throw new SpecError(`${where}: length names unknown argument "${expr}"`);
  } else if ('mul' in expr) {
    if (expr.mul.length === 0) throw new SpecError(`${where}: empty product`);
    for (const part of expr.mul) checkLengthExpr(part, argNames, where);
  } else if ('fn' in expr) {
    if (!(expr.fn in LENGTH_FUNCTIONS)) throw new SpecError(`${where}: unknown length function "${expr.fn}"`);
    for (const name of expr.args) checkLengthExpr(name, argNames, where);
  } else {
    throw new SpecError(`${where}: malformed length expression`);
  }
}

/** Evaluates a length expression against a call's argument values. */
export function evalLength(expr: LengthExpr, lookup: ArgLookup): number {
  if (typeof expr === 'number') return expr;
  if (typeof expr === 'string') return toNumber(lookup(expr), expr);
  if ('mul' in expr) return expr.mul.reduce<number>((acc, part) => acc * evalLength(part, lookup), 1);
  const impl = LENGTH_FUNCTIONS[expr.fn]!;
  return impl(expr.args.map((name) => lookup(name)));
}
