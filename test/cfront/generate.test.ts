/**
 * The C front generator (src/cfront/generate.ts) and the `ava-icd` command: every OpenCL spec function gets a
 * descriptor and an entry point, each 1.2 function has its slot in the ICD dispatch table of CL/cl_icd.h, the
 * asynchronous ones are the enqueues and releases, floating-point arguments by value are refused at generation, and
 * `ava-icd` prints what a shell needs, runs a program, and refuses bad use with exit status 2.
 *
 * node --import tsx test/cfront/generate.test.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { openclIncludeDir } from '../../src/cfront/build.js';
import { dispatchFields, generateCFront } from '../../src/cfront/generate.js';
import { defineSpec } from '../../src/spec/define.js';
import { arg, fn, ret } from '../../src/spec/roles.js';
import { test } from '../helpers/uvu.js';
import { runCommand } from '../migrate/helpers.js';

const options = { node: '/usr/bin/node', guestdScript: '/x/run-guestd.js' };

test('every OpenCL function gets a descriptor and an entry point; the ICD table names each one', () => {
  const include = openclIncludeDir();
  assert.ok(include, 'CL/cl_icd.h is installed (scripts/install-opencl.sh)');
  const fields = dispatchFields(readFileSync(join(include!, 'CL', 'cl_icd.h'), 'utf8'));
  assert.ok(fields.has('clGetPlatformIDs') && fields.has('clEnqueueNDRangeKernel') && fields.size > 100, `${fields.size} dispatch fields`);
  const c = generateCFront(openclSpec, { ...options, icdDispatch: { header: 'CL/cl_icd.h', struct: 'cl_icd_dispatch', fields } });
  for (const f of openclSpec.functions) {
    assert.ok(c.includes(`static const ava_fn ${f.name}_fn = { "${f.name}"`), `${f.name} has a descriptor`);
    assert.ok(c.includes(` ava_${f.name}(`), `${f.name} has an entry point`);
    assert.ok(fields.has(f.name), `${f.name} has a dispatch slot`);
    assert.ok(c.includes(`d->${f.name} = (cl_api_${f.name})`), `${f.name} is entered in the dispatch table`);
  }
  assert.ok(c.includes(openclSpec.hash), 'the spec hash is baked in (the sidecar checks it)');
});

test('sent without waiting: enqueues and releases; answered at once: creates, set-arg, queries, builds', () => {
  const c = generateCFront(openclSpec, options);
  const asyncFlag = (name: string): string => new RegExp(`static const ava_fn ${name}_fn = \\{ "${name}", \\d+, \\d+, -?\\d+, -?\\d+, \\d+, (\\d)`).exec(c)![1]!;
  for (const name of ['clEnqueueNDRangeKernel', 'clEnqueueWriteBuffer', 'clReleaseMemObject', 'clRetainKernel']) assert.is(asyncFlag(name), '1', name);
  for (const name of ['clCreateBuffer', 'clSetKernelArg', 'clGetDeviceInfo', 'clBuildProgram', 'clEnqueueReadBuffer', 'clFinish', 'clEnqueueMapBuffer']) {
    assert.is(asyncFlag(name), '0', name);
  }
});

test('without an ICD, the entry points carry the C names and are exported', () => {
  const c = generateCFront(toyaccSpec, options);
  assert.ok(c.includes('__attribute__((visibility("default"))) int32_t tq_get_devices('));
  assert.not.ok(c.includes('ava_fill_dispatch'));
});

test('a floating-point argument by value is refused at generation (it would travel in another register class)', () => {
  const spec = defineSpec({
    name: 'floaty', version: '1', library: { names: ['libfloaty.so'] }, status: { type: 'int32', success: 0, names: {} }, handles: [],
    functions: [fn('f_scale', ret.status(), 'query', [arg.scalar('factor', 'float')])],
  });
  assert.throws(() => generateCFront(spec, options), (e: Error) => (e as { code?: string }).code === 'ERR_AVA_SPEC_INVALID' && /f_scale\(factor\)/.test(e.message));
});

test('ava-icd: env prints the loader variables, run runs a program, bad use exits 2 with ERR_AVA_CONFIG', async () => {
  const cli = ['--import', 'tsx', 'src/cli/run-icd.ts'];
  const env = await runCommand(process.execPath, [...cli, 'env'], { timeoutMs: 120_000 });
  assert.is(env.code, 0, env.stderr);
  const vendors = /^export OCL_ICD_VENDORS='([^']+)'$/m.exec(env.stdout)?.[1];
  assert.ok(vendors && existsSync(join(vendors, 'ava-opencl.icd')), env.stdout);
  assert.match(env.stdout, /^export OCL_ICD_FILENAMES='[^']+libava-opencl\.so'$/m);
  const run = await runCommand(process.execPath, [...cli, 'run', '--', 'sh', '-c', 'echo "$OCL_ICD_VENDORS"; exit 3'], { timeoutMs: 60_000 });
  assert.is(run.code, 3, 'the program\'s exit status passes through');
  assert.is(run.stdout.trim(), vendors);
  const bad = await runCommand(process.execPath, [...cli, 'frobnicate'], { timeoutMs: 60_000 });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /ava-icd: ERR_AVA_CONFIG: unknown command "frobnicate"/);
  const help = await runCommand(process.execPath, [...cli, '--help'], { timeoutMs: 60_000 });
  assert.is(help.code, 0);
  assert.match(help.stdout, /Usage: ava-icd env/);
});

test.run();
