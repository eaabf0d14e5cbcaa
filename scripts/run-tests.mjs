#!/usr/bin/env node
// The test runner behind `npm test`: type-checks the project, then runs every uvu suite under test/ in its own
// Node process (native libraries and worker state stay isolated per suite), two at a time, and ends with the line
// `tests: N passed, N failed`. Exits non-zero on any failure. Usage: npm test [-- <filter substring>...]
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
const PER_FILE_TIMEOUT_MS = 5 * 60_000;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => { output += `\n[runner] killed after ${PER_FILE_TIMEOUT_MS / 1000}s\n`; child.kill('SIGKILL'); }, PER_FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 1 : 0), output, ms: Date.now() - started }); });
  });
}

function summary(output) {
  const num = (label) => Number(output.match(new RegExp(`${label}:\\s+(\\d+)`, 'g'))?.map((m) => m.match(/\d+/)[0]).reduce((a, b) => a + Number(b), 0) ?? 0);
  return { total: num('Total'), passed: num('Passed'), skipped: num('Skipped') };
}

let passed = 0;
let failed = 0;
const report = (ok, name, detail) => {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` ${detail}` : ''}`);
};

const tsc = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit']);
report(tsc.code === 0, 'typecheck (tsc --noEmit, strict)', `(${tsc.ms} ms)`);
if (tsc.code !== 0) console.log(tsc.output);

const files = findTests(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
const queue = [...files];
const worker = async () => {
  for (let file = queue.shift(); file; file = queue.shift()) {
    const name = relative(root, file);
    const res = await run(process.execPath, ['--import', 'tsx', file]);
    const s = summary(res.output);
    const notes = [...res.output.matchAll(/^SKIPPED: .*$/gm)].map((m) => m[0]);
    if (res.code === 0 && s.total === 0 && notes.length > 0) {
      // A suite whose real component is missing here (e.g. no OpenCL platform outside CI) says so and counts as neither.
      console.log(`skip ${name}: not run (${res.ms} ms)`);
      for (const note of notes) console.log(`     ${note}`);
      continue;
    }
    const bad = res.code !== 0 || s.total === 0 || s.passed + s.skipped < s.total;
    const filePassed = bad ? Math.max(0, s.passed) : s.passed;
    const fileFailed = bad ? Math.max(1, s.total - s.passed - s.skipped) : 0;
    passed += filePassed;
    failed += fileFailed;
    console.log(`${bad ? 'FAIL' : 'ok  '} ${name}: ${filePassed} passed, ${fileFailed} failed${s.skipped ? `, ${s.skipped} skipped` : ''} (${res.ms} ms)`);
    for (const note of notes) console.log(`     ${note}`);
    if (bad) console.log(res.output.split('\n').map((l) => `     | ${l}`).join('\n'));
  }
};
await Promise.all([worker(), worker()]);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
