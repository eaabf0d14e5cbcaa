/**
 * Generates the C front of a spec: one descriptor per function (argument roles, scalar types, handle kinds, length
 * expressions as small postfix programs, record class), a thin entry point per function that packs its arguments
 * into 64-bit slots and calls the one generic marshaller (`c/ava_front.c`), and, for an OpenCL ICD, the dispatch
 * table that every object handed to the application points to. Nothing per function is written by hand.
 */
import { LENGTH_FUNCTION_NAMES, splitLengthName } from '../spec/length.js';
import { planOf } from '../spec/plan.js';
import type { ApiSpec, ArgSpec, FunctionSpec, LengthExpr, ScalarType } from '../spec/types.js';
import { RECORD_CLASSES } from '../spec/types.js';
import { SpecError } from '../errors.js';
import { DEFAULT_LIMITS } from '../wire/codec.js';

/** Options of {@link generateCFront}. */
export interface GenerateOptions {
  /** Node executable ava-guestd runs under (baked in; `AVA_GUESTD_NODE` overrides at run time). */
  readonly node: string;
  /** The ava-guestd entry script (baked in; `AVA_GUESTD_SCRIPT` overrides at run time). */
  readonly guestdScript: string;
  /** A module node imports before the script (the tsx loader when running from the TypeScript sources). */
  readonly guestdImport?: string;
  /**
   * The ICD dispatch table to fill (`struct _cl_icd_dispatch` of CL/cl_icd.h): every spec function with a field of
   * the same name is entered there. Absent: no table (a plain library of entry points).
   */
  readonly icdDispatch?: { readonly header: string; readonly struct: string; readonly fields: ReadonlySet<string> };
}

const ROLE_INDEX: Readonly<Record<ArgSpec['role'], number>> = {
  scalar: 0, count: 1, handle: 2, handles: 3, handleOut: 4, handlesOut: 5, bufferIn: 6, bufferOut: 7, string: 8, strings: 9,
  scalars: 10, properties: 11, scalarOut: 12, scalarsOut: 13, errcode: 14, info: 15, argValue: 16, callback: 17, userData: 18,
  mapped: 19, struct: 20,
};
const TYPE_INDEX: Readonly<Record<ScalarType, number>> = {
  int8: 0, uint8: 1, int16: 2, uint16: 3, int32: 4, uint32: 5, int64: 6, uint64: 7, size: 8, uintptr: 9, float: 10, double: 11,
};
const RET_INDEX = { void: 0, status: 1, scalar: 2, handle: 3, mapped: 4 } as const;
const OP = { END: 0, CONST: 1, ARG: 2, MUL: 3, FN: 4, FIELD: 5, ATTR: 6 } as const;
/** The named length functions ava_front.c implements, in its numbering: a function added in TypeScript only must fail here. */
const C_LENGTH_FUNCTIONS = ['rectExtent', 'imageExtent', 'imageElementSize', 'imageSize'];
/** Attribute slots per object in ava_front.c (AVA_MAX_ATTRS). */
const C_MAX_ATTRS = 4;
/** Record classes whose calls the front sends without waiting, when the spec's plan allows it. */
const ASYNC_RECORDS: ReadonlySet<string> = new Set(['transfer', 'execute', 'retain', 'release']);

const cString = (s: string): string => JSON.stringify(s); // JSON string escapes are valid C for the ASCII we emit
const C_TYPES: Readonly<Record<ScalarType, string>> = {
  int8: 'int8_t', uint8: 'uint8_t', int16: 'int16_t', uint16: 'uint16_t', int32: 'int32_t', uint32: 'uint32_t',
  int64: 'int64_t', uint64: 'uint64_t', size: 'size_t', uintptr: 'uintptr_t', float: 'float', double: 'double',
};

/**
 * Compiles a length expression of `f` into postfix opcodes (appended to `out`); returns its offset. `attrIndex` numbers
 * handle attributes (one numbering per spec).
 */
function compileLength(f: FunctionSpec, expr: LengthExpr, out: number[], attrIndex: ReadonlyMap<string, number>): number {
  const start = out.length;
  const index = (name: string): number => {
    const i = planOf(f).indexOf.get(name);
    if (i === undefined) throw new SpecError(`${f.name}: length names unknown argument "${name}"`);
    return i;
  };
  const emit = (e: LengthExpr): void => {
    if (typeof e === 'number') out.push(OP.CONST, e);
    else if (typeof e === 'string') {
      const { arg, field } = splitLengthName(e);
      const i = index(arg);
      const a = f.args[i]!;
      if (field === undefined) out.push(OP.ARG, i);
      else if (a.role === 'struct') out.push(OP.FIELD, i, a.fields.findIndex((x) => x.name === field));
      else throw new SpecError(`${f.name}: "${e}" is not a field of a struct argument`);
    } else if ('mul' in e) {
      for (const part of e.mul) emit(part);
      out.push(OP.MUL, e.mul.length);
    } else if ('attr' in e) {
      out.push(OP.ATTR, index(e.of), attrIndex.get(e.attr)!);
    } else {
      const fnIndex = C_LENGTH_FUNCTIONS.indexOf(e.fn);
      if (fnIndex < 0) throw new SpecError(`${f.name}: the C front has no length function "${e.fn}"`);
      for (const part of e.args) emit(part);
      out.push(OP.FN, fnIndex, e.args.length);
    }
  };
  emit(expr);
  out.push(OP.END);
  return start;
}

/** C source of the front for `spec`. */
export function generateCFront(spec: ApiSpec, options: GenerateOptions): string {
  if (LENGTH_FUNCTION_NAMES.join() !== C_LENGTH_FUNCTIONS.join()) {
    throw new SpecError(`the C front implements the length functions ${C_LENGTH_FUNCTIONS.join(', ')}, the spec layer ${LENGTH_FUNCTION_NAMES.join(', ')}`);
  }
  const attrIndex = new Map([...new Set(spec.handles.flatMap((h) => h.attributes ?? []))].map((name, i) => [name, i]));
  if (attrIndex.size > C_MAX_ATTRS) throw new SpecError(`${spec.name}: the C front keeps at most ${C_MAX_ATTRS} handle attributes`);
  const kindIndex = new Map(spec.handles.map((h, i) => [h.name, i]));
  const kind = (name: string): number => kindIndex.get(name) ?? -1;
  // Each kind's release call, when the spec has one that takes only the handle (the front releases objects it made
  // for itself with it: the events chaining the parts of a split transfer).
  const releaseOf = new Map<string, FunctionSpec>();
  for (const f of spec.functions) {
    const a = f.args[0];
    if (f.record === 'release' && f.unsupported === undefined && f.args.length === 1 && a?.role === 'handle' && f.target === a.name && !releaseOf.has(a.kind)) releaseOf.set(a.kind, f);
  }
  const lines: string[] = [
    `/* Generated by src/cfront/generate.ts from the ${spec.name} spec ${spec.version} (hash ${spec.hash}). Do not edit. */`,
    '#include <stdint.h>',
    '#include <stddef.h>',
    ...(options.icdDispatch ? [`#include <${options.icdDispatch.header}>`] : []),
    '#include "ava_front.h"',
    '',
    // Tentative definitions: the kinds name their release calls, whose descriptors come further down.
    ...[...releaseOf.values()].map((f) => `static const ava_fn ${f.name}_fn;`),
    'static const ava_kind kinds[] = {',
    ...spec.handles.map((h) => `  { ${cString(h.name)}, ${h.invalidStatus ?? 0}, ${h.interned ? 1 : 0}, ${h.transient ? 1 : 0}, ${releaseOf.has(h.name) ? `&${releaseOf.get(h.name)!.name}_fn` : 'NULL'} },`),
    '};',
    '',
    'const ava_api ava_api_desc = {',
    `  ${cString(spec.name)}, ${cString(spec.hash)}, kinds, ${spec.handles.length}, ${spec.status.success},`,
    `  ${cString(options.node)}, ${cString(options.guestdScript)}, ${cString(options.guestdImport ?? '')}, ${DEFAULT_LIMITS.maxFrameBytes}ull,`,
    '};',
    '',
  ];
  const entries: string[] = [];
  for (const f of spec.functions) {
    const id = f.name;
    const exprs: number[] = [];
    const indexOf = (name: string | undefined): number => (name === undefined ? -1 : planOf(f).indexOf.get(name) ?? -1);
    const args = f.args.map((a) => {
      let type = 0;
      let flags = 0;
      let k = -1;
      let length = -1;
      let ref = -1;
      let ref2 = -1;
      let pairs: number[] = [];
      let arrays: number[] = [];
      let props: number[] = [];
      let mask = 0;
      let fields: number[] = [];
      let size = 0;
      switch (a.role) {
        case 'scalar': case 'count':
          // Floating-point arguments travel in vector registers, not in the integer slots the entry points take.
          if (a.type === 'float' || a.type === 'double') throw new SpecError(`${f.name}(${a.name}): floating-point arguments by value are not supported by the C front`);
          type = TYPE_INDEX[a.type];
          break;
        case 'scalarOut': type = TYPE_INDEX[a.type]; break;
        case 'errcode': type = TYPE_INDEX[spec.status.type]; break;
        case 'handle': k = kind(a.kind); flags = a.nullable ? 1 : 0; break;
        case 'handles': k = kind(a.kind); flags = a.nullable ? 1 : 0; length = compileLength(f, a.count, exprs, attrIndex); break;
        case 'handleOut': k = kind(a.kind); flags = a.optional ? 1 : 0; break;
        case 'handlesOut': k = kind(a.kind); flags = a.optional ? 1 : 0; length = compileLength(f, a.capacity, exprs, attrIndex); break;
        case 'bufferIn':
          flags = a.nullable ? 1 : 0;
          length = compileLength(f, a.length, exprs, attrIndex);
          if (a.mirror) { ref2 = indexOf(a.mirror.flags); mask = a.mirror.mask; }
          break;
        case 'bufferOut': flags = (a.optional ? 1 : 0) | (a.preserve ? 2 : 0); length = compileLength(f, a.length, exprs, attrIndex); break;
        case 'string': flags = a.nullable ? 1 : 0; break;
        case 'strings': flags = a.nullable ? 1 : 0; length = compileLength(f, a.count, exprs, attrIndex); ref = indexOf(a.lengths); break;
        case 'scalars': type = TYPE_INDEX[a.type]; flags = a.nullable ? 1 : 0; length = compileLength(f, a.length, exprs, attrIndex); break;
        case 'scalarsOut': type = TYPE_INDEX[a.type]; length = compileLength(f, a.length, exprs, attrIndex); break;
        case 'properties':
          type = TYPE_INDEX[a.type];
          flags = a.nullable ? 1 : 0;
          pairs = Object.entries(a.handleKeys).flatMap(([key, kd]) => [Number(key), kind(kd)]);
          break;
        case 'info':
          ref = indexOf(a.size);
          ref2 = indexOf(a.param);
          pairs = Object.entries(a.handleParams).flatMap(([key, kd]) => [Number(key), kind(kd)]);
          arrays = Object.entries(a.pointerArrays ?? {}).flatMap(([key, sizes]) => [Number(key), Number(sizes)]);
          props = Object.entries(a.propertyParams ?? {}).flatMap(([param, keys]) => Object.entries(keys).flatMap(([k, kd]) => [Number(param), Number(k), kind(kd)]));
          break;
        case 'argValue': ref = indexOf(a.size); pairs = a.handleKinds.flatMap((kd) => [0, kind(kd)]); break;
        case 'callback': ref = indexOf(a.userData); flags = a.delivered ? 4 : 0; break;
        case 'userData': case 'mapped': break;
        case 'struct':
          flags = a.nullable ? 1 : 0;
          size = a.size;
          fields = a.fields.flatMap((x) => [x.offset, x.type === undefined ? -1 : TYPE_INDEX[x.type], x.kind === undefined ? -1 : kind(x.kind)]);
          break;
      }
      return { a, type, flags, k, length, ref, ref2, pairs, arrays, props, mask, fields, size };
    });
    const retLength = f.returns.role === 'mapped' ? compileLength(f, f.returns.length, exprs, attrIndex) : -1;
    for (const [i, x] of args.entries()) {
      if (x.pairs.length > 0) lines.push(`static const int64_t ${id}_pairs${i}[] = { ${x.pairs.join(', ')} };`);
      if (x.arrays.length > 0) lines.push(`static const int64_t ${id}_arrays${i}[] = { ${x.arrays.join(', ')} };`);
      if (x.props.length > 0) lines.push(`static const int64_t ${id}_props${i}[] = { ${x.props.join(', ')} };`);
      if (x.fields.length > 0) lines.push(`static const int64_t ${id}_fields${i}[] = { ${x.fields.join(', ')} };`);
    }
    const sets = Object.entries(f.sets ?? {}).flatMap(([attr, expr]) => [attrIndex.get(attr)!, compileLength(f, expr, exprs, attrIndex)]);
    if (sets.length > 0) lines.push(`static const int64_t ${id}_sets[] = { ${sets.join(', ')} };`);
    lines.push(`static const int64_t ${id}_exprs[] = { ${exprs.length > 0 ? exprs.join(', ') : '0'} };`);
    lines.push(`static const ava_arg ${id}_args[] = {`);
    for (const [i, x] of args.entries()) {
      lines.push(`  { ${cString(x.a.name)}, ${ROLE_INDEX[x.a.role]}, ${x.type}, ${x.flags}, ${x.k}, ${x.length}, ${x.ref}, ${x.ref2}, ` +
        `${x.pairs.length ? `${id}_pairs${i}` : 'NULL'}, ${x.pairs.length / 2}, ${x.arrays.length ? `${id}_arrays${i}` : 'NULL'}, ${x.arrays.length / 2}, ` +
        `${x.props.length ? `${id}_props${i}` : 'NULL'}, ${x.props.length / 3}, ${x.mask}u, ` +
        `${x.fields.length ? `${id}_fields${i}` : 'NULL'}, ${x.fields.length / 3}, ${x.size} },`);
    }
    if (args.length === 0) lines.push('  { 0 },');
    lines.push('};');
    const plan = planOf(f);
    const async = plan.asyncEligible && ASYNC_RECORDS.has(f.record) && (f.returns.role === 'status' || f.returns.role === 'void') ? 1 : 0;
    const r = f.returns;
    // The front delivers the bytes of deferred reads and maps; a deferred write needs nothing of it (the worker keeps a copy).
    const read = f.deferred && (f.deferred.data === undefined || f.args.find((a) => a.name === f.deferred!.data)?.role === 'bufferOut') ? f.deferred : undefined;
    lines.push(`static const ava_fn ${id}_fn = { ${cString(f.name)}, ${RET_INDEX[r.role]}, ${r.role === 'scalar' ? TYPE_INDEX[r.type] : 0}, ` +
      `${r.role === 'handle' ? kind(r.kind) : -1}, ${retLength}, ${RECORD_CLASSES.indexOf(f.record)}, ${async}, ${f.args.length}, ${id}_args, ${id}_exprs, ` +
      `${f.unsupported === undefined ? 'NULL' : cString(f.unsupported)}, ${sets.length ? `${id}_sets` : 'NULL'}, ${sets.length / 2}, ` +
      `{ ${indexOf(f.split?.offset)}, ${indexOf(f.split?.size)}, ${indexOf(f.split?.data)} }, ` +
      `{ ${indexOf(read?.blocking)}, ${indexOf(read?.event)}, ${indexOf(read?.data)} } };`);
    // The entry point: every argument arrives as a 64-bit slot (integer registers and 8-byte stack slots on the
    // 64-bit Linux ABIs); ava_invoke narrows each to its declared type, so garbage in upper halves never matters.
    const retC = r.role === 'void' ? 'void' : r.role === 'status' ? C_TYPES[spec.status.type] : r.role === 'scalar' ? C_TYPES[r.type] : 'void *';
    const params = f.args.length === 0 ? 'void' : f.args.map((_, i) => `uintptr_t a${i}`).join(', ');
    const slots = f.args.length === 0 ? '0' : f.args.map((_, i) => `a${i}`).join(', ');
    const call = `ava_invoke(&${id}_fn, s)`;
    const body = r.role === 'void' ? `${call};` : r.role === 'handle' || r.role === 'mapped' ? `return (void *)(uintptr_t)${call};` : `return (${retC})${call};`;
    // An ICD reaches its entry points through the dispatch table only; any other front is the library itself, so
    // its entry points carry the C names (a program linked against the real library loads this one instead).
    const entry = options.icdDispatch ? `${retC} ava_${id}` : `__attribute__((visibility("default"))) ${retC} ${id}`;
    lines.push(`${entry}(${params}) { uint64_t s[${Math.max(f.args.length, 1)}] = { ${slots} }; ${body} }`, '');
    if (options.icdDispatch?.fields.has(f.name)) entries.push(`  d->${f.name} = (cl_api_${f.name})(void (*)(void))ava_${f.name};`);
  }
  if (options.icdDispatch) {
    lines.push(`void ava_fill_dispatch(${options.icdDispatch.struct} *d) {`, ...entries, '}');
  }
  return `${lines.join('\n')}\n`;
}

/** Field names of `struct _cl_icd_dispatch` in a CL/cl_icd.h text. */
export function dispatchFields(header: string): Set<string> {
  const body = header.slice(header.indexOf('typedef struct _cl_icd_dispatch'));
  return new Set([...body.matchAll(/cl_api_(\w+)\s+(\w+);/g)].filter((m) => m[1] === m[2]).map((m) => m[1]!));
}
