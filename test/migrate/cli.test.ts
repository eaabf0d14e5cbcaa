/**
 * The `ava-migrate` command (src/cli/run-migrate.ts), run as a process (issue 7): the built-in demo prints the
 * per-phase table and exits 0; `--json` prints one JSON object; a workload command after `--` is migrated (its
 * session reads the AVA_* variables the command sets) and its exit code passes through; bad arguments exit 2 with
 * ERR_AVA_CONFIG; `--seed` makes the random call choice reproducible.
 *
 * node --import tsx test/migrate/cli.test.ts
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseCall } from '../../migrate/arm.js';
import type { MigrationReport } from '../../migrate/migrate.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { RunResult } from './helpers.js';
import { ROOT, removeTemp, runCommand, tempDir, test } from './helpers.js';

const PHASES = ['drain', 'extract', 'connect', 'replay', 'restore', 'switch'];
const CLI = join(ROOT, 'src/cli/run-migrate.ts');
const WORKLOAD = join(ROOT, 'test/migrate/cli-workload.ts');

/** Runs `ava-migrate` with `args`, without any AVA_* variable of this process. */
function avaMigrate(...args: string[]): Promise<RunResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AVA_')));
  return runCommand(process.execPath, ['--import', 'tsx', CLI, ...args], { env, timeoutMs: 90_000 });
}

const show = (r: RunResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

let dir: string;
uvuTest.before(() => { dir = tempDir(); });
uvuTest.after(() => { removeTemp(dir); });

test('--call 20 --journal <dir> --demo: prints the table with all six phases for call 20 and the journal, exits 0', async () => {
  const journal = join(dir, 'table');
  const r = await avaMigrate('--call', '20', '--journal', journal, '--demo');
  assert.is(r.code, 0, show(r));
  const lines = r.stdout.split('\n');
  const head = lines.findIndex((l) => l.trimStart().startsWith('call'));
  assert.ok(head >= 0, `a table header:\n${r.stdout}`);
  for (const phase of PHASES) assert.ok(lines[head]!.includes(`${phase} ms`), `a ${phase} column: ${lines[head]}`);
  assert.ok(lines[head]!.includes('total ms'), 'a total column');
  const row = lines[head + 1]!.trim().split(/\s+/);
  assert.is(row[0], '20', `the row of the migration before call 20: ${lines[head + 1]}`);
  const ms = row.slice(1, 8).map(Number);
  assert.ok(ms.every((v) => Number.isFinite(v) && v >= 0), `six phase times and a total: ${row.join(' ')}`);
  assert.ok(Math.abs(ms[6]! - ms.slice(0, 6).reduce((a, b) => a + b, 0)) < 0.1, 'the total is the sum of the phases');
  assert.ok(r.stdout.includes(`journal: ${journal}`), 'the journal folder is named');
  assert.ok(existsSync(journal), 'and it was written');
});

test('--json: one JSON object with call, phases, total, bytes and journal', async () => {
  const journal = join(dir, 'json');
  const r = await avaMigrate('--call', '20', '--journal', journal, '--demo', '--json');
  assert.is(r.code, 0, show(r));
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, `exactly one line on stdout:\n${r.stdout}`);
  const out = JSON.parse(lines[0]!) as { call: number; phases: Record<string, number>; total: number; bytes: number; journal: string; migrations: number; reports: MigrationReport[] };
  assert.is(out.call, 20);
  assert.equal(Object.keys(out.phases).sort(), [...PHASES].sort());
  assert.ok(Object.values(out.phases).every((v) => typeof v === 'number' && v >= 0));
  assert.ok(Math.abs(out.total - Object.values(out.phases).reduce((a, b) => a + b, 0)) < 1e-6, 'total = sum of the phases');
  assert.ok(out.bytes > 0, 'the demo\'s buffers moved');
  assert.is(out.journal, journal);
  assert.is(out.migrations, 1);
});

test('-- <workload>: the child\'s session migrates (the report appears) and its exit code passes through', async () => {
  const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
  const reference: ToyaccDemoResult = await runToyaccDemo(lib.api, { elements: 256, rounds: 2 });
  await lib.close();
  for (const code of [0, 3]) {
    const r = await avaMigrate('--call', '20', '--journal', join(dir, `workload-${code}`), '--', process.execPath, '--import', 'tsx', WORKLOAD, String(code));
    assert.is(r.code, code, `the workload's exit code ${code} passes through: ${show(r)}`);
    const child = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"workload"'))!) as { workload: ToyaccDemoResult; migrations: number; channel: string };
    assert.equal(child.workload, reference, 'the workload computed what it computes without migration');
    assert.is(child.migrations, 1, 'the child\'s own session migrated once');
    assert.is(child.channel, 'unix', 'over the default transport');
    assert.ok(/^\s*20\s+[\d.]+/m.test(r.stdout), `the table has the child's migration before call 20:\n${r.stdout}`);
  }
});

test('a workload that fails before the chosen call: no migration, the table says it failed (not that it made too few calls)', async () => {
  const r = await avaMigrate('--call', '20', '--no-icd', '--journal', join(dir, 'fails'), '--', process.execPath, '-e', 'process.exit(5)');
  assert.is(r.code, 5, show(r));
  assert.match(r.stdout, /no migration happened: the workload failed \(exit status 5\)/);
  const none = await avaMigrate('--call', '20', '--no-icd', '--journal', join(dir, 'no-calls'), '--', process.execPath, '-e', '0');
  assert.is(none.code, 0, show(none));
  assert.match(none.stdout, /no migration happened \(the workload made fewer calls than the chosen call\)/);
});

test('bad arguments exit 2 with ERR_AVA_CONFIG: --call abc, --transport vsock, no command', async () => {
  for (const args of [['--call', 'abc', '--demo'], ['--transport', 'vsock', '--demo'], ['--call', '20'], ['--call', '20', '--']]) {
    const r = await avaMigrate(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${show(r)}`);
    assert.ok(r.stderr.includes('ERR_AVA_CONFIG'), `${args.join(' ')}: ${r.stderr}`);
  }
});

test('--seed 7 --call r100 picks the same call on two runs, the one chooseCall gives, and prints it', async () => {
  const expected = chooseCall({ kind: 'random', limit: 100 }, 7).call;
  const calls: (number | null)[] = [];
  const printed: string[] = [];
  for (const i of [1, 2]) {
    const r = await avaMigrate('--seed', '7', '--call', 'r100', '--journal', join(dir, `seed-${i}`), '--demo', '--json');
    assert.is(r.code, 0, show(r));
    const out = JSON.parse(r.stdout.trim()) as { call: number | null; seed: number; trigger: string };
    assert.is(out.seed, 7);
    assert.is(out.trigger, 'r100');
    calls.push(out.call);
    const line = /migration armed at call (\d+) \(r100, seed 7\)/.exec(r.stderr);
    assert.ok(line, `the chosen call is printed: ${r.stderr}`);
    printed.push(line![1]!);
  }
  assert.is(calls[0], calls[1], 'the same call twice');
  assert.equal(printed, [String(expected), String(expected)]);
  // The demo makes 44 calls, so a call below that migrates and appears in the JSON.
  if (expected < 44) assert.is(calls[0], expected);
  else assert.is(calls[0], null);
});

uvuTest.run();
