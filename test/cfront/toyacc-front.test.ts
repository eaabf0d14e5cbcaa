/**
 * The C front for a spec other than OpenCL (issue 12's "any C library a spec describes"): the toyacc spec's
 * generated front exports the real C names, so a native program linked against libtoyacc.so runs unmodified
 * through ava-guestd when LD_LIBRARY_PATH finds the front under that name. Same stdout natively and through the
 * front, and with a migration at a random call (bounded property over the call index).
 *
 * node --import tsx test/cfront/toyacc-front.test.ts
 */
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { buildToyacc, toyaccSourceDir } from '../../fixtures/toyacc/build.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { compileInto } from '../../src/build/compile.js';
import { buildCFront } from '../../src/cfront/build.js';
import { cCompiler } from '../../src/config.js';
import type { RunResult } from '../migrate/helpers.js';
import { removeTemp, runCommand, tempDir, test } from '../migrate/helpers.js';

let dir: string;
let program: string;
let realLibDir: string;
let frontLibDir: string;
let native: string;
uvuTest.before(async () => {
  dir = tempDir();
  const real = await buildToyacc();
  realLibDir = dirname(real);
  const front = await buildCFront(toyaccSpec);
  frontLibDir = join(dir, 'front');
  mkdirSync(frontLibDir);
  symlinkSync(front.library, join(frontLibDir, 'libtoyacc.so'));
  program = join(dir, 'program');
  const src = toyaccSourceDir();
  await compileInto(program, {
    compiler: cCompiler(), what: 'the toyacc C program',
    args: (out) => ['-std=c11', '-O2', '-Wall', '-Wextra', `-I${src}`, join(src, 'program.c'), `-L${realLibDir}`, '-ltoyacc', '-o', out],
  });
});
uvuTest.after(() => { removeTemp(dir); });

const cleanEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AVA_'))), ...extra,
});
const show = (r: RunResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

test('the program natively (linked against libtoyacc.so)', async () => {
  const r = await runCommand(program, [], { env: cleanEnv({ LD_LIBRARY_PATH: realLibDir }) });
  assert.is(r.code, 0, show(r));
  assert.match(r.stdout, /OK program\n$/);
  native = r.stdout;
});

test('the same binary through the generated front: same stdout', async () => {
  const r = await runCommand(program, [], { env: cleanEnv({ LD_LIBRARY_PATH: frontLibDir }) });
  assert.is(r.code, 0, show(r));
  assert.is(r.stdout, native);
});

test('with a migration at a random call (calls 0 to 40 of its 41) between unix workers: same stdout (property, 6 runs)', async () => {
  let run = 0;
  await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 40 }), async (call) => {
    const report = join(dir, `report-${run}.jsonl`);
    const r = await runCommand(program, [], {
      env: cleanEnv({ LD_LIBRARY_PATH: frontLibDir, AVA_MIGRATION_CALL_ID: String(call), AVA_CHANNEL: 'UNIX', AVA_JOURNAL: join(dir, `j${run++}`), AVA_MIGRATION_REPORT: report }),
    });
    if (r.code !== 0 || r.stdout !== native || !existsSync(report)) throw new Error(`call ${call}: ${show(r)}`);
  }), { numRuns: 6, seed: Number(process.env.FC_SEED ?? Date.now() % 1e9) });
});

uvuTest.run();
