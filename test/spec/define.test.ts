/**
 * defineSpec: validation at definition time (ERR_AVA_SPEC_INVALID), the stable hash, and length expressions.
 *
 * node --import tsx test/spec/define.test.ts
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AvaError } from '../../src/errors.js';
import { arg, defineSpec, evalLength, fn, LENGTH_FUNCTIONS, ret, unsupported } from '../../src/spec/index.js';
import type { FunctionSpec, HandleKindSpec, LengthExpr, RecordClass, ScalarType, SpecInput } from '../../src/spec/index.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A small valid spec; every call builds fresh objects (defineSpec freezes what it is given). */
function functions(): FunctionSpec[] {
  return [
    fn('my_make', ret.handle('thing'), 'create', [arg.scalar('size', 'size'), arg.errcode()]),
    fn('my_release', ret.status(), 'release', [arg.handle('thing', 'thing')], { target: 'thing' }),
    fn('my_write', ret.status(), 'transfer', [
      arg.handle('thing', 'thing'), arg.scalar('size', 'size'), arg.bufferIn('src', 'size'),
    ]),
    fn('my_info', ret.status(), 'query', [
      arg.handle('thing', 'thing'), arg.scalar('param', 'uint32'), arg.scalar('size', 'size'),
      arg.info('value', 'size', 'param'), arg.scalarOut('size_ret', 'size'),
    ]),
  ];
}

function input(overrides: Partial<SpecInput> = {}, extra: FunctionSpec[] = []): SpecInput {
  return {
    name: 'mini',
    version: '1',
    library: { names: ['libmini.so'] },
    status: { type: 'int32', success: 0, names: { '-1': 'MY_ERROR' } },
    handles: [{ name: 'thing', invalidStatus: -1 }],
    functions: [...functions(), ...extra],
    ...overrides,
  };
}

function specCode(make: () => SpecInput): string | undefined {
  try {
    defineSpec(make());
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `not an AvaError: ${String(error)}`);
    return (error as AvaError).code;
  }
  return undefined;
}

const invalid = (name: string, make: () => SpecInput): void => {
  test(`invalid: ${name}`, () => {
    assert.is(specCode(make), 'ERR_AVA_SPEC_INVALID');
  });
};

test('the base spec is valid (so every mistake below is the only one)', () => {
  const spec = defineSpec(input());
  assert.is(spec.name, 'mini');
  assert.is(spec.fn.size, 4);
  assert.ok(spec.kind.has('thing'));
  assert.match(spec.hash, /^[0-9a-f]{64}$/);
  assert.ok(Object.isFrozen(spec));
});

invalid('unknown handle kind of an argument', () =>
  input({}, [fn('my_use', ret.status(), 'execute', [arg.handle('other', 'nonesuch')])]));
invalid('unknown handle kind of a return', () =>
  input({}, [fn('my_make2', ret.handle('nonesuch'), 'create', [arg.errcode()])]));
invalid('length expression naming an unknown argument', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('n', 'size'), arg.bufferIn('src', 'nbytes')])]));
invalid('length product naming an unknown argument', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('n', 'size'), arg.bufferIn('src', { mul: ['n', 'width'] })])]));
invalid('negative constant length', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.bufferIn('src', -4)])]));
invalid('empty length product', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.bufferIn('src', { mul: [] })])]));
invalid('unknown length function', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('n', 'size'), arg.bufferIn('src', { fn: 'cubeExtent', args: ['n'] })])]));
invalid('length function naming an unknown argument', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [
    arg.scalars('origin', 'size', 3), arg.bufferIn('src', { fn: 'rectExtent', args: ['origin', 'region', 'row', 'slice'] }),
  ])]));
invalid('duplicate function', () => input({}, [fn('my_write', ret.status(), 'transfer', [])]));
invalid('duplicate argument', () =>
  input({}, [fn('my_twice', ret.status(), 'execute', [arg.scalar('n', 'uint32'), arg.scalar('n', 'uint32')])]));
invalid('duplicate handle kind', () => input({ handles: [{ name: 'thing' }, { name: 'thing' }] }));
invalid('bad record class', () =>
  input({}, [fn('my_odd', ret.status(), 'teleport' as RecordClass, [])]));
invalid('create function without a handle', () =>
  input({}, [fn('my_create_nothing', ret.status(), 'create', [arg.scalar('n', 'uint32')])]));
invalid('release without target', () =>
  input({}, [fn('my_release2', ret.status(), 'release', [arg.handle('thing', 'thing')])]));
invalid('retain whose target is not a handle', () =>
  input({}, [fn('my_retain', ret.status(), 'retain', [arg.scalar('n', 'uint32')], { target: 'n' })]));
invalid('configure whose target names no argument', () =>
  input({}, [fn('my_set', ret.status(), 'configure', [arg.handle('thing', 'thing')], { target: 'obj' })]));
invalid('callback whose userData is not a userData argument', () =>
  input({}, [fn('my_on', ret.status(), 'configure', [
    arg.handle('thing', 'thing'), arg.callback('notify', 'void my_cb(int, void *)', 'n'), arg.scalar('n', 'uint32'),
  ], { target: 'thing' })]));
invalid('callback whose userData names no argument', () =>
  input({}, [fn('my_on', ret.status(), 'configure', [
    arg.handle('thing', 'thing'), arg.callback('notify', 'void my_cb(int, void *)', 'user_data'),
  ], { target: 'thing' })]));
invalid('bad scalar type of an argument', () =>
  input({}, [fn('my_big', ret.status(), 'execute', [arg.scalar('n', 'int128' as ScalarType)])]));
invalid('bad scalar type of the status convention', () =>
  input({ status: { type: 'bool' as ScalarType, success: 0, names: {} } }));
invalid('bad scalar type of a return', () =>
  input({}, [fn('my_count', ret.scalar('uint33' as ScalarType), 'query', [])]));
invalid('unsupported without reason', () => input({}, [unsupported('my_magic', 'global', '')]));
invalid('bad spec name (upper case and space)', () => input({ name: 'My Spec' }));
invalid('bad spec name (leading digit)', () => input({ name: '1spec' }));
invalid('empty version', () => input({ version: '' }));
invalid('library with neither names nor resolve', () => input({ library: {} as SpecInput['library'] }));
invalid('non-integer success status', () => input({ status: { type: 'int32', success: 0.5, names: {} } }));
invalid('no functions', () => input({ functions: [] }));
invalid('info arg naming an unknown size arg', () =>
  input({}, [fn('my_info2', ret.status(), 'query', [
    arg.handle('thing', 'thing'), arg.scalar('param', 'uint32'), arg.info('value', 'value_size', 'param'),
  ])]));
invalid('info arg naming an unknown param arg', () =>
  input({}, [fn('my_info2', ret.status(), 'query', [
    arg.handle('thing', 'thing'), arg.scalar('size', 'size'), arg.info('value', 'size', 'which'),
  ])]));
invalid('info handle parameter that is not an integer', () =>
  input({}, [fn('my_info2', ret.status(), 'query', [
    arg.scalar('param', 'uint32'), arg.scalar('size', 'size'), arg.info('value', 'size', 'param', { THING: 'thing' }),
  ])]));
invalid('function name that is not a C identifier', () =>
  input({}, [fn('my-dash', ret.status(), 'global', [])]));
invalid('argument name that is not a C identifier', () =>
  input({}, [fn('my_fn', ret.status(), 'global', [arg.scalar('2n', 'uint32')])]));
invalid('supersede key naming an unknown argument', () =>
  input({}, [fn('my_set', ret.status(), 'configure', [arg.handle('thing', 'thing'), arg.scalar('index', 'uint32')], {
    target: 'thing', supersedeKey: ['slot'],
  })]));
invalid('property key that is not an integer', () =>
  input({}, [fn('my_props', ret.status(), 'global', [arg.properties('props', 'int64', { PLATFORM: 'thing' })])]));
invalid('struct field outside the struct', () =>
  input({}, [fn('my_desc', ret.status(), 'global', [arg.struct('desc', 8, [{ name: 'width', offset: 8, type: 'size' }])])]));
invalid('struct field misaligned', () =>
  input({}, [fn('my_desc', ret.status(), 'global', [arg.struct('desc', 16, [{ name: 'width', offset: 4, type: 'size' }])])]));
invalid('struct field with both a type and a kind', () =>
  input({}, [fn('my_desc', ret.status(), 'global', [arg.struct('desc', 8, [{ name: 'h', offset: 0, type: 'uint64', kind: 'thing' }])])]));
invalid('struct field of an unknown handle kind', () =>
  input({}, [fn('my_desc', ret.status(), 'global', [arg.struct('desc', 8, [{ name: 'h', offset: 0, kind: 'nonesuch' }])])]));
invalid('length naming an unknown struct field', () =>
  input({}, [fn('my_desc', ret.status(), 'transfer', [
    arg.struct('desc', 8, [{ name: 'width', offset: 0, type: 'size' }]), arg.bufferIn('src', 'desc.height'),
  ])]));
invalid('length naming a field of an argument that is not a struct', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('n', 'size'), arg.bufferIn('src', 'n.width')])]));
invalid('attribute of a kind that does not declare it', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.handle('thing', 'thing'), arg.bufferIn('src', { attr: 'elementSize', of: 'thing' })])]));
invalid('attribute of an argument that is not a handle', () =>
  input({ handles: [{ name: 'thing', attributes: ['elementSize'] }] }, [fn('my_put', ret.status(), 'transfer', [
    arg.scalar('n', 'size'), arg.bufferIn('src', { attr: 'elementSize', of: 'n' }),
  ])]));
invalid('sets an attribute the returned kind does not declare', () =>
  input({}, [fn('my_make2', ret.handle('thing'), 'create', [arg.scalar('n', 'size'), arg.errcode()], { sets: { elementSize: 'n' } })]));
invalid('split whose data argument is not a buffer', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('offset', 'size'), arg.scalar('size', 'size'), arg.scalar('ptr', 'uintptr')], {
    split: { offset: 'offset', size: 'size', data: 'ptr' },
  })]));
invalid('split naming an unknown size argument', () =>
  input({}, [fn('my_put', ret.status(), 'transfer', [arg.scalar('offset', 'size'), arg.bufferIn('ptr', 'offset')], {
    split: { offset: 'offset', size: 'bytes', data: 'ptr' },
  })]));
invalid('explicit state without restore', () =>
  input({ handles: [{ name: 'thing', state: { extract: () => new Uint8Array(0) } } as unknown as HandleKindSpec] }));

test('SpecError is an AvaError and names the mistake in details-free form', () => {
  try {
    defineSpec(input({}, [fn('my_use', ret.status(), 'execute', [arg.handle('other', 'nonesuch')])]));
    assert.unreachable('defineSpec accepted an unknown kind');
  } catch (error) {
    assert.ok(error instanceof Error);
    assert.ok(AvaError.isAvaError(error));
    assert.is((error as AvaError).code, 'ERR_AVA_SPEC_INVALID');
    assert.is((error as AvaError).name, 'SpecError');
  }
});

// ------------------------------------------------------------------------------------------------ hash

test('hash: the same input gives the same hash', () => {
  const a = defineSpec(input());
  const b = defineSpec(input());
  assert.is(a.hash, b.hash);
});

test('hash: the library source is not part of the hash', () => {
  const a = defineSpec(input());
  const b = defineSpec(input({ library: { names: ['/elsewhere/libmini.so.2'] } }));
  assert.is(a.hash, b.hash);
});

test('hash: a changed function changes it', () => {
  const base = defineSpec(input()).hash;
  const changedType = input();
  const fns = functions();
  fns[2] = fn('my_write', ret.status(), 'transfer', [
    arg.handle('thing', 'thing'), arg.scalar('size', 'uint64'), arg.bufferIn('src', 'size'),
  ]);
  assert.is.not(defineSpec({ ...changedType, functions: fns }).hash, base);
  const renamed = functions();
  renamed[0] = fn('my_make_v2', ret.handle('thing'), 'create', [arg.scalar('size', 'size'), arg.errcode()]);
  assert.is.not(defineSpec(input({ functions: renamed })).hash, base);
  assert.is.not(defineSpec(input({}, [fn('my_extra', ret.status(), 'global', [])])).hash, base);
  const blocking = functions();
  blocking[2] = { ...blocking[2]!, blocking: true };
  assert.is.not(defineSpec(input({ functions: blocking })).hash, base);
});

test('hash: a changed status name, handle kind or version changes it', () => {
  const base = defineSpec(input()).hash;
  assert.is.not(defineSpec(input({ status: { type: 'int32', success: 0, names: { '-1': 'MY_FAILURE' } } })).hash, base);
  assert.is.not(defineSpec(input({ handles: [{ name: 'thing', invalidStatus: -2 }] })).hash, base);
  assert.is.not(defineSpec(input({ version: '2' })).hash, base);
});

test('hash: independent of object key order', () => {
  const a = defineSpec(input());
  const reordered: SpecInput = {
    functions: functions().map((f) => Object.fromEntries(Object.entries(f).reverse()) as unknown as FunctionSpec),
    handles: [{ invalidStatus: -1, name: 'thing' }],
    status: { names: { '-1': 'MY_ERROR' }, success: 0, type: 'int32' },
    library: { names: ['libmini.so'] },
    version: '1',
    name: 'mini',
  };
  assert.is(defineSpec(reordered).hash, a.hash);
});

test('hash: the toyacc spec hashes the same in a child process', async () => {
  const specUrl = new URL('../../src/apis/toyacc/spec.ts', import.meta.url).href;
  const code = `const { toyaccSpec } = await import(${JSON.stringify(specUrl)}); process.stdout.write(toyaccSpec.hash);`;
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    timeout: 30_000,
  });
  assert.match(toyaccSpec.hash, /^[0-9a-f]{64}$/);
  assert.is(stdout.trim(), toyaccSpec.hash);
});

// ------------------------------------------------------------------------------------------------ lengths

const lookupIn = (values: Record<string, unknown>) => (name: string): unknown => values[name];

test('evalLength: constants, argument values, products', () => {
  assert.is(evalLength(16, lookupIn({})), 16);
  assert.is(evalLength('size', lookupIn({ size: 40 })), 40);
  assert.is(evalLength('size', lookupIn({ size: 40n })), 40);
  assert.is(evalLength('size', lookupIn({ size: null })), 0);
  assert.is(evalLength({ mul: ['count', 4] }, lookupIn({ count: 7 })), 28);
  assert.is(evalLength({ mul: ['w', 'h', { mul: [2, 'd'] }] }, lookupIn({ w: 3, h: 5, d: 2 })), 60);
});

test('evalLength: a non-number argument is ERR_AVA_BAD_CALL', () => {
  try {
    evalLength('size', lookupIn({ size: 'ten' }));
    assert.unreachable('accepted a string length');
  } catch (error) {
    assert.is((error as AvaError).code, 'ERR_AVA_BAD_CALL');
  }
});

test('rectExtent: OpenCL defaults for zero pitches, explicit pitches, empty regions', () => {
  const rect: LengthExpr = { fn: 'rectExtent', args: ['origin', 'region', 'row', 'slice'] };
  // row = 4, slice = 4 * 5 = 20: (3 + 6 - 1) * 20 + (2 + 5 - 1) * 4 + 1 + 4
  assert.is(evalLength(rect, lookupIn({ origin: [1, 2, 3], region: [4, 5, 6], row: 0, slice: 0 })), 189);
  // (3 + 6 - 1) * 100 + (2 + 5 - 1) * 10 + 1 + 4
  assert.is(evalLength(rect, lookupIn({ origin: [1, 2, 3], region: [4, 5, 6], row: 10, slice: 100 })), 865);
  // a single row at the origin is just its width
  assert.is(evalLength(rect, lookupIn({ origin: [0, 0, 0], region: [16, 1, 1], row: 0, slice: 0 })), 16);
  assert.is(evalLength(rect, lookupIn({ origin: [8, 8, 8], region: [0, 5, 6], row: 10, slice: 100 })), 0);
  assert.is(LENGTH_FUNCTIONS.rectExtent!([[0, 0, 0], [2, 2, 1], 8, 0]), 10);
});

test('rectExtent: malformed vectors are ERR_AVA_BAD_CALL', () => {
  try {
    LENGTH_FUNCTIONS.rectExtent!([[0, 0], [1, 1, 1], 0, 0]);
    assert.unreachable('accepted a 2-element origin');
  } catch (error) {
    assert.is((error as AvaError).code, 'ERR_AVA_BAD_CALL');
  }
});

test('imageExtent: element size, default and explicit pitches', () => {
  const image: LengthExpr = { fn: 'imageExtent', args: ['region', 'row', 'slice', 'elem'] };
  // row = 4 * 4 = 16: (2 - 1) * 16 + 4 * 4
  assert.is(evalLength(image, lookupIn({ region: [4, 2, 1], row: 0, slice: 0, elem: 4 })), 32);
  // row 64, slice 1024: 1 * 1024 + 2 * 64 + 3 * 2
  assert.is(evalLength(image, lookupIn({ region: [3, 3, 2], row: 64, slice: 1024, elem: 2 })), 1158);
  assert.is(evalLength(image, lookupIn({ region: [3, 0, 2], row: 64, slice: 1024, elem: 2 })), 0);
});

test('a struct argument, a handle attribute set at creation and a length naming both are accepted', () => {
  const spec = defineSpec(input({ handles: [{ name: 'thing', attributes: ['elementSize'] }] }, [
    fn('my_make_image', ret.handle('thing'), 'create', [
      arg.struct('format', 8, [{ name: 'order', offset: 0, type: 'uint32' }, { name: 'type', offset: 4, type: 'uint32' }]),
      arg.struct('desc', 16, [{ name: 'width', offset: 0, type: 'size' }, { name: 'parent', offset: 8, kind: 'thing' }], { nullable: true }),
      arg.bufferIn('host', { mul: ['desc.width', { fn: 'imageElementSize', args: ['format.order', 'format.type'] }] }, { nullable: true }),
      arg.errcode(),
    ], { sets: { elementSize: { fn: 'imageElementSize', args: ['format.order', 'format.type'] } } }),
    fn('my_read_image', ret.status(), 'transfer', [
      arg.handle('image', 'thing'), arg.scalar('n', 'size'), arg.bufferOut('dst', { mul: ['n', { attr: 'elementSize', of: 'image' }] }),
    ]),
  ]));
  assert.ok(spec.fn.get('my_make_image')?.sets?.elementSize);
});

test('imageElementSize and imageSize: bytes per pixel of OpenCL formats, host bytes of whole images', () => {
  const elem = (order: number, type: number): number => LENGTH_FUNCTIONS.imageElementSize!([order, type]);
  assert.is(elem(0x10b5, 0x10da), 4, 'RGBA / UNSIGNED_INT8');
  assert.is(elem(0x10b5, 0x10de), 16, 'RGBA / FLOAT');
  assert.is(elem(0x10b0, 0x10dd), 2, 'R / HALF_FLOAT');
  assert.is(elem(0x10b4, 0x10d4), 2, 'RGB / UNORM_SHORT_565: a packed pixel');
  assert.is(elem(0x10b4, 0x10d6), 4, 'RGB / UNORM_INT_101010');
  assert.is(elem(0x1234, 0x10da), 0, 'unknown order');
  assert.is(elem(0x10b5, 0x1234), 0, 'unknown type');
  const size = (...args: number[]): number => LENGTH_FUNCTIONS.imageSize!(args);
  // type, width, height, depth, array size, row pitch, slice pitch, element size
  assert.is(size(0x10f1, 10, 4, 0, 0, 0, 0, 4), 160, '2D, packed rows');
  assert.is(size(0x10f1, 10, 4, 0, 0, 64, 0, 4), 256, '2D, padded rows');
  assert.is(size(0x10f2, 10, 4, 3, 0, 0, 0, 4), 480, '3D, packed');
  assert.is(size(0x10f2, 10, 4, 3, 0, 48, 200, 4), 600, '3D, pitches');
  assert.is(size(0x10f3, 10, 4, 0, 5, 0, 0, 4), 800, '2D array');
  assert.is(size(0x10f5, 10, 0, 0, 5, 0, 0, 4), 200, '1D array');
  assert.is(size(0x10f4, 10, 0, 0, 0, 0, 0, 4), 40, '1D');
});

test('evalLength: struct fields through the lookup, handle attributes through the attribute reader', () => {
  const expr: LengthExpr = { mul: ['desc.width', { attr: 'elementSize', of: 'image' }] };
  const values: Record<string, number> = { 'desc.width': 12 };
  assert.is(evalLength(expr, (name) => values[name], (of, attr) => (of === 'image' && attr === 'elementSize' ? 4 : undefined)), 48);
  assert.is(evalLength(expr, (name) => values[name]), 0, 'an unknown attribute counts 0');
  const nested: LengthExpr = { fn: 'imageExtent', args: ['region', 0, 0, { fn: 'imageElementSize', args: ['order', 'type'] }] };
  assert.is(evalLength(nested, lookupIn({ region: [3, 2, 1], order: 0x10b5, type: 0x10de })), 96);
});

test.run();
