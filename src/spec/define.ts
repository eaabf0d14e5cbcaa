/**
 * `defineSpec`: validates a spec at definition time (so that a mistake fails where it is written, with
 * the function and argument named), freezes it and computes its stable hash.
 */
import { createHash } from 'node:crypto';
import { SpecError } from '../errors.js';
import { checkLengthExpr, type LengthScope } from './length.js';
import { RECORD_CLASSES, SCALAR_SIZE } from './types.js';
import type { ApiSpec, ArgSpec, FunctionSpec, HandleKindSpec, ScalarType, SpecInput } from './types.js';

const SCALAR_TYPES: ReadonlySet<ScalarType> = new Set<ScalarType>([
  'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'size', 'uintptr', 'float', 'double',
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

const HANDLE_ROLES = new Set(['handle', 'handles', 'handleOut', 'handlesOut']);

function checkScalarType(type: unknown, where: string): void {
  if (!SCALAR_TYPES.has(type as ScalarType)) throw new SpecError(`${where}: unknown scalar type "${String(type)}"`);
}

function checkArg(a: ArgSpec, f: FunctionSpec, names: LengthScope, kinds: ReadonlyMap<string, HandleKindSpec>): void {
  const where = `${f.name}(${a.name})`;
  const needKind = (kind: string): void => {
    if (!kinds.has(kind)) throw new SpecError(`${where}: unknown handle kind "${kind}"`);
  };
  const needArg = (name: string | undefined, what: string): ArgSpec => {
    const found = f.args.find((x) => x.name === name);
    if (!found) throw new SpecError(`${where}: ${what} names unknown argument "${String(name)}"`);
    return found;
  };
  switch (a.role) {
    case 'scalar': case 'count': case 'scalarOut': checkScalarType(a.type, where); break;
    case 'handle': case 'handleOut': needKind(a.kind); break;
    case 'handles': needKind(a.kind); checkLengthExpr(a.count, names, where); break;
    case 'handlesOut': needKind(a.kind); checkLengthExpr(a.capacity, names, where); break;
    case 'bufferIn': case 'bufferOut': checkLengthExpr(a.length, names, where); break;
    case 'string': case 'errcode': case 'userData': case 'mapped': break;
    case 'strings':
      checkLengthExpr(a.count, names, where);
      if (a.lengths !== undefined) needArg(a.lengths, 'lengths');
      break;
    case 'scalars': case 'scalarsOut': checkScalarType(a.type, where); checkLengthExpr(a.length, names, where); break;
    case 'properties':
      checkScalarType(a.type, where);
      for (const [key, kind] of Object.entries(a.handleKeys)) {
        if (!/^-?\d+$/.test(key)) throw new SpecError(`${where}: property key "${key}" is not an integer`);
        needKind(kind);
      }
      break;
    case 'info':
      needArg(a.size, 'size');
      needArg(a.param, 'param');
      for (const [key, kind] of Object.entries(a.handleParams)) {
        if (!/^-?\d+$/.test(key)) throw new SpecError(`${where}: info parameter "${key}" is not an integer`);
        needKind(kind);
      }
      for (const [key, sizes] of Object.entries(a.pointerArrays ?? {})) {
        if (!/^-?\d+$/.test(key) || !/^-?\d+$/.test(sizes)) throw new SpecError(`${where}: pointer-array parameters "${key}" -> "${sizes}" must be integers`);
      }
      for (const [param, keys] of Object.entries(a.propertyParams ?? {})) {
        if (!/^-?\d+$/.test(param)) throw new SpecError(`${where}: property-list parameter "${param}" is not an integer`);
        for (const [key, kind] of Object.entries(keys)) {
          if (!/^-?\d+$/.test(key)) throw new SpecError(`${where}: property key "${key}" is not an integer`);
          needKind(kind);
        }
      }
      break;
    case 'argValue':
      needArg(a.size, 'size');
      a.handleKinds.forEach(needKind);
      break;
    case 'struct': {
      if (!Number.isInteger(a.size) || a.size <= 0 || a.size > 4096) throw new SpecError(`${where}: struct size ${String(a.size)} is not in 1..4096`);
      const seen = new Set<string>();
      for (const field of a.fields) {
        if (!IDENTIFIER.test(field.name) || seen.has(field.name)) throw new SpecError(`${where}: field name "${field.name}" is not a new identifier`);
        seen.add(field.name);
        if ((field.kind === undefined) === (field.type === undefined)) throw new SpecError(`${where}.${field.name}: a field has a scalar type or a handle kind`);
        if (field.kind !== undefined) needKind(field.kind);
        else checkScalarType(field.type, `${where}.${field.name}`);
        const width = field.kind !== undefined ? 8 : SCALAR_SIZE[field.type!];
        if (!Number.isInteger(field.offset) || field.offset < 0 || field.offset + width > a.size || field.offset % width !== 0) {
          throw new SpecError(`${where}.${field.name}: offset ${String(field.offset)} is not an aligned place inside ${a.size} bytes`);
        }
      }
      break;
    }
    case 'callback':
      if (typeof a.proto !== 'string' || a.proto.length === 0) throw new SpecError(`${where}: callback needs a prototype`);
      if (needArg(a.userData, 'userData').role !== 'userData') throw new SpecError(`${where}: "${a.userData}" is not a userData argument`);
      if (a.dropped && a.delivered) throw new SpecError(`${where}: a callback is delivered or dropped, not both`);
      break;
    default:
      throw new SpecError(`${where}: unknown argument role "${(a as { role: unknown }).role}"`);
  }
}

function checkFunction(f: FunctionSpec, kinds: ReadonlyMap<string, HandleKindSpec>): void {
  if (typeof f.name !== 'string' || !IDENTIFIER.test(f.name)) throw new SpecError(`function name "${String(f.name)}" is not a C identifier`);
  if (!RECORD_CLASSES.includes(f.record)) throw new SpecError(`${f.name}: unknown record class "${String(f.record)}"`);
  if (f.unsupported !== undefined) {
    if (typeof f.unsupported !== 'string' || f.unsupported.length === 0) throw new SpecError(`${f.name}: an unsupported function needs a reason`);
    return;
  }
  const names = new Set<string>();
  for (const a of f.args) {
    if (typeof a.name !== 'string' || !IDENTIFIER.test(a.name)) throw new SpecError(`${f.name}: argument name "${String(a.name)}" is not a C identifier`);
    if (names.has(a.name)) throw new SpecError(`${f.name}: argument "${a.name}" declared twice`);
    names.add(a.name);
  }
  const scope: LengthScope = { args: new Map(f.args.map((a) => [a.name, a])), attributesOf: (kind) => kinds.get(kind)?.attributes ?? [] };
  for (const a of f.args) checkArg(a, f, scope, kinds);
  const r = f.returns;
  if (r.role === 'handle' && !kinds.has(r.kind)) throw new SpecError(`${f.name}: returns unknown handle kind "${r.kind}"`);
  if (r.role === 'scalar') checkScalarType(r.type, `${f.name}(return)`);
  if (r.role === 'mapped') checkLengthExpr(r.length, scope, `${f.name}(return)`);
  for (const [attr, expr] of Object.entries(f.sets ?? {})) {
    if (r.role !== 'handle' || !(kinds.get(r.kind)?.attributes ?? []).includes(attr)) {
      throw new SpecError(`${f.name}: sets "${attr}", which is not an attribute of the handle kind it returns`);
    }
    checkLengthExpr(expr, scope, `${f.name}(sets ${attr})`);
  }
  if (!['void', 'status', 'scalar', 'handle', 'mapped'].includes(r.role)) throw new SpecError(`${f.name}: unknown return role "${r.role}"`);
  const makesHandle = r.role === 'handle' || f.args.some((a) => a.role === 'handleOut' || a.role === 'handlesOut');
  if (f.record === 'create' && !makesHandle) throw new SpecError(`${f.name}: a create function must return or store a handle`);
  if (f.record === 'retain' || f.record === 'release' || f.record === 'configure') {
    const target = f.args.find((a) => a.name === f.target);
    if (!target || !HANDLE_ROLES.has(target.role)) throw new SpecError(`${f.name}: a ${f.record} function needs a handle argument as its target`);
  }
  if (f.writes) {
    for (const name of [f.writes.target, f.writes.offset, f.writes.size]) {
      if (!names.has(name)) throw new SpecError(`${f.name}: writes names unknown argument "${name}"`);
    }
  }
  if (f.split) {
    const role = (name: string): string | undefined => f.args.find((a) => a.name === name)?.role;
    if (role(f.split.offset) !== 'scalar' || role(f.split.size) !== 'scalar' || !['bufferIn', 'bufferOut'].includes(role(f.split.data) ?? '')) {
      throw new SpecError(`${f.name}: split needs scalar offset and size arguments and a bufferIn or bufferOut data argument`);
    }
  }
  if (f.deferred) {
    const role = (name: string): string | undefined => f.args.find((a) => a.name === name)?.role;
    const d = f.deferred;
    const transfer = d.data !== undefined && ['bufferIn', 'bufferOut'].includes(role(d.data) ?? '') && f.returns.role === 'status';
    const map = d.data === undefined && f.returns.role === 'mapped';
    if (role(d.blocking) !== 'scalar' || role(d.event) !== 'handleOut' || !(transfer || map)) {
      throw new SpecError(`${f.name}: deferred needs a scalar blocking argument, a handleOut event, and a status return with a bufferIn or bufferOut data argument or a mapped return without one`);
    }
  }
  for (const key of f.supersedeKey ?? []) {
    if (!names.has(key)) throw new SpecError(`${f.name}: supersede key names unknown argument "${key}"`);
  }
}

/**
 * Serializes spec data deterministically (sorted keys). Functions (explicit-state hooks) count only by their place:
 * their source text differs between the TypeScript sources and the compiled package, and a guest, a worker and a
 * journal of the same spec must agree whichever of the two runs them.
 */
function stableStringify(value: unknown): string {
  if (typeof value === 'function') return JSON.stringify('fn');
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validates and freezes a spec and computes its hash.
 * @throws {SpecError} `ERR_AVA_SPEC_INVALID` naming the function and argument at fault.
 * @example
 * const spec = defineSpec({ name: 'mylib', version: '1', library: { names: ['libmy.so'] },
 *   status: { type: 'int32', success: 0, names: { '-1': 'MY_ERROR' } },
 *   handles: [{ name: 'thing' }],
 *   functions: [fn('my_make', ret.handle('thing'), 'create', [arg.errcode()])] });
 */
export function defineSpec(input: SpecInput): ApiSpec {
  if (!input || typeof input !== 'object') throw new SpecError('a spec must be an object');
  if (typeof input.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(input.name)) throw new SpecError(`spec name "${String(input.name)}" must be lower-case letters, digits and dashes`);
  if (typeof input.version !== 'string' || input.version.length === 0) throw new SpecError(`${input.name}: spec version must be a non-empty string`);
  const lib = input.library as { names?: unknown; resolve?: unknown } | undefined;
  if (!lib || !(Array.isArray(lib.names) || typeof lib.resolve === 'function')) throw new SpecError(`${input.name}: library needs names or a resolve function`);
  if (!input.status || !Number.isInteger(input.status.success)) throw new SpecError(`${input.name}: status convention needs an integer success value`);
  checkScalarType(input.status.type, `${input.name}(status)`);
  const kinds = new Map<string, HandleKindSpec>();
  for (const k of input.handles ?? []) {
    if (typeof k.name !== 'string' || !IDENTIFIER.test(k.name)) throw new SpecError(`${input.name}: handle kind name "${String(k.name)}" is not an identifier`);
    if (kinds.has(k.name)) throw new SpecError(`${input.name}: handle kind "${k.name}" declared twice`);
    for (const attr of k.attributes ?? []) {
      if (typeof attr !== 'string' || !IDENTIFIER.test(attr)) throw new SpecError(`${input.name}: attribute "${String(attr)}" of "${k.name}" is not an identifier`);
    }
    if (k.state && (typeof k.state.extract !== 'function' || typeof k.state.restore !== 'function')) {
      throw new SpecError(`${input.name}: explicit state of "${k.name}" needs extract and restore functions`);
    }
    kinds.set(k.name, k);
  }
  const fns = new Map<string, FunctionSpec>();
  for (const f of input.functions ?? []) {
    checkFunction(f, kinds);
    if (fns.has(f.name)) throw new SpecError(`${input.name}: function "${f.name}" declared twice`);
    fns.set(f.name, f);
  }
  if (fns.size === 0) throw new SpecError(`${input.name}: a spec needs at least one function`);
  const { library: _library, ...hashed } = input;
  const hash = createHash('sha256').update(stableStringify(hashed)).digest('hex');
  const spec: ApiSpec = { ...input, hash, fn: fns, kind: kinds };
  deepFreeze(input.functions);
  deepFreeze(input.status);
  return Object.freeze(spec);
}

/** The name of a status value in a spec's convention, or `UNKNOWN_STATUS_<n>`. */
export function statusName(spec: Pick<ApiSpec, 'status'>, status: number): string {
  return spec.status.names[String(status)] ?? `UNKNOWN_STATUS_${status}`;
}
