/**
 * The OpenCL ICD (the C front, src/cfront): unmodified native programs (fixtures/opencl-c) natively vs through the
 * ICD, beside the TypeScript proxy over the same transport, in one run:
 *
 * - the floor: the raw SharedArrayBuffer ping-pong of bench/shm.ts (spin-then-wait, an event-loop turn per message),
 *   its {@link pingPong} itself;
 * - a cheap query, clGetDeviceInfo(CL_DEVICE_MAX_COMPUTE_UNITS), per call: `microbench` natively, through the ICD
 *   with AVA_CHANNEL=SHM (and LOCAL, to tell the sidecar's shm hop from the rest), and the TypeScript proxy over shm
 *   (openGuestlib(openclSpec, { transport: 'shm' }));
 * - a small launch (64 work items) + clFinish, per iteration: the same four;
 * - the launch-heavy program `launches 100000`: natively and through the ICD with AVA_CHANNEL=SHM and LOCAL, the
 *   wall time of the whole process (sidecar start included) and the program's own reported time;
 * - event-heavy: `launches N/5 --events` (every launch asks for its event, released right after), natively and through
 *   the ICD (LOCAL), without and with journaling (AVA_RECORD_REPLAY=1): no target, a guard against regressions;
 * - transfers: `transfers 64 R` (blocking 64 MiB writes, then reads), natively and through the ICD (LOCAL), MB/s each
 *   way: no target either.
 *
 * Targets (issue): launch-heavy through the ICD within 1.5x of native (PoCL); the cheap query's round trip within
 * 2x of the raw shm ping-pong floor. The native programs run on the first platform the ICD loader shows; through
 * the ICD that is the remoted platform, whose worker uses the first native one. `--quick` cuts the counts.
 * Without a C compiler or an OpenCL platform it prints a SKIPPED line and writes nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildOpenclPrograms } from '../fixtures/opencl-c/build.js';
import type { OpenclCProgramName } from '../fixtures/opencl-c/build.js';
import { buildProgram, call, created, openclWorkloadContext, release, setArgs } from '../fixtures/opencl/common.js';
import { CL } from '../src/apis/opencl/constants.js';
import { missingReason } from '../src/apis/opencl/probe.js';
import { openclSpec } from '../src/apis/opencl/spec.js';
import { icdEnvironment } from '../src/cfront/icd-env.js';
import { AvaError } from '../src/errors.js';
import { openGuestlib } from '../src/guest/open.js';
import { DEFAULT_SPIN_MICROS } from '../src/transport/shm-ring.js';
import type { BenchRow } from './harness.js';
import { measure, report } from './harness.js';
import { pingPong } from './shm.js';

const LAUNCH_TARGET = 1.5;
const QUERY_FLOOR_TARGET = 2;

// ---------------------------------------------------------------------------------------------------------------
// Running the native programs

interface ProgramRun {
  /** From the spawn to the program's exit (its sidecar's own exit not included). */
  readonly wallNs: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Something (a sidecar that outlived the program) still held the program's stdout/stderr this long after its exit. */
  readonly heldStdioMs: number | undefined;
}

/** How long to wait, after the program exited, for its stdout/stderr to close before reading what came. */
const STDIO_GRACE_MS = 3_000;

/**
 * Runs `exe args` with `env`, to its exit; rejects unless it exits 0 with `OK <name>` last on stdout. A sidecar
 * inherits the program's stdout/stderr, so one that outlives the program would keep them open: after the exit this
 * waits at most {@link STDIO_GRACE_MS} for them to close, then goes on with what came (and says so).
 */
function runProgram(name: OpenclCProgramName, exe: string, args: readonly string[], env: NodeJS.ProcessEnv, what: string, timeoutMs = 120_000): Promise<ProgramRun> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(exe, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, wallNs: number, heldStdioMs: number | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code !== 0 || !stdout.trimEnd().endsWith(`OK ${name}`)) {
        reject(new Error(`${what}: ${name} ${args.join(' ')} exited ${code ?? signal}${signal === 'SIGKILL' ? ` (killed after ${timeoutMs} ms?)` : ''}\n` +
          `stdout: ${stdout.trim()}\nstderr: ${stderr.trim()}`));
        return;
      }
      resolve({ wallNs, stdout, stderr, heldStdioMs });
    };
    child.once('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      const wallNs = Number(process.hrtime.bigint() - t0);
      const exited = process.hrtime.bigint();
      const grace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal, wallNs, Number(process.hrtime.bigint() - exited) / 1e6);
      }, STDIO_GRACE_MS);
      child.once('close', () => {
        clearTimeout(grace);
        finish(code, signal, wallNs, undefined);
      });
    });
  });
}

interface Micro {
  readonly queryNs: number;
  readonly launchFinishUs: number;
  readonly queries: number;
  readonly launches: number;
}

function parseMicro(run: ProgramRun, what: string): Micro {
  const line = run.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`${what}: microbench printed no JSON line:\n${run.stdout}`);
  return JSON.parse(line) as Micro;
}

/** The program's own elapsed ms from `launches: N in X ms ...` on stderr. */
function launchesMs(run: ProgramRun, what: string): number {
  const m = /launches: \d+ in ([0-9.]+) ms/.exec(run.stderr);
  if (!m) throw new Error(`${what}: launches reported no time on stderr:\n${run.stderr}`);
  return Number(m[1]);
}

/** Stderr lines other than the expected ones (e.g. `ava-front: ...` from the ICD). */
function unexpectedStderr(run: ProgramRun): string[] {
  return run.stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '' && !/^(launches: \d+ in |transfers: \d+ x )/.test(l));
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// ---------------------------------------------------------------------------------------------------------------
// Skipping

/** A build error that means "this machine lacks the tools" (no compiler, no OpenCL headers or loader) rather than a bug. */
function missingTools(error: unknown): string | null {
  if (!(error instanceof AvaError)) return null;
  if (error.code === 'ERR_AVA_NO_COMPILER') return error.message;
  if (error.code === 'ERR_AVA_BUILD_FAILED' && /CL\/cl(_icd)?\.h|-lOpenCL/.test(error.message)) return error.message.split('\n')[0]!;
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// The TypeScript proxy over shm

const KERNEL = `__kernel void inc(__global int *a) {
  a[get_global_id(0)] += 1;
}
`;
const ITEMS = 64;

async function proxyOverShm(queries: number, launches: number, runs: number): Promise<{ queryNs: number; launchFinishNs: number; units: number }> {
  await using lib = await openGuestlib(openclSpec, { transport: 'shm' });
  const api = lib.api;
  const ctx = await openclWorkloadContext(api, lib.handleAt);
  try {
    const out = new Uint32Array(1);
    await call(api, 'clGetDeviceInfo', ctx.device, CL.DEVICE_MAX_COMPUTE_UNITS, 4, out);
    const units = out[0]!;
    const queryNs = await measure(queries, async () => {
      for (let i = 0; i < queries; i++) await api.clGetDeviceInfo!(ctx.device, CL.DEVICE_MAX_COMPUTE_UNITS, 4, out);
    }, runs);
    if (out[0] !== units) throw new Error(`compute units changed: ${units} then ${out[0]}`);

    const queue = await created(api, 'clCreateCommandQueue', ctx.context, ctx.device, 0);
    const program = await buildProgram(ctx, KERNEL);
    const kernel = await created(api, 'clCreateKernel', program, 'inc');
    const buf = await created(api, 'clCreateBuffer', ctx.context, CL.MEM_READ_WRITE | CL.MEM_COPY_HOST_PTR, 4 * ITEMS, new Int32Array(ITEMS));
    try {
      await setArgs(api, kernel, buf);
      let done = 0;
      const launchFinishNs = await measure(launches, async () => {
        for (let i = 0; i < launches; i++) {
          await api.clEnqueueNDRangeKernel!(queue, kernel, 1, null, [ITEMS], null, 0, null, null);
          await api.clFinish!(queue);
        }
        done += launches;
      }, runs);
      const host = new Int32Array(ITEMS);
      await call(api, 'clEnqueueReadBuffer', queue, buf, CL.BLOCKING, 0, 4 * ITEMS, host, 0, null, null);
      if (!host.every((v) => v === done)) throw new Error(`TS proxy launches: expected every value ${done}, got ${host[0]}...`);
      return { queryNs, launchFinishNs, units };
    } finally {
      await release(api, buf, kernel, program, queue);
    }
  } finally {
    await ctx.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const counts = quick
    ? { pings: 5_000, queries: 1_000, launchFinish: 100, programRuns: 1, proxyRuns: 3, launches: 20_000, launchRuns: 1, eventLaunches: 4_000, transferRounds: 2 }
    : { pings: 20_000, queries: 5_000, launchFinish: 500, programRuns: 3, proxyRuns: 5, launches: 100_000, launchRuns: 5, eventLaunches: 20_000, transferRounds: 8 };

  // The native programs use the first platform the loader lists: a device on a later one would not do.
  const missing = await missingReason({ firstPlatformOnly: true });
  if (missing !== null) {
    console.log(`\nSKIPPED: icd: no OpenCL platform with a device (${missing}); run scripts/install-opencl.sh`);
    return;
  }
  let programs: Record<OpenclCProgramName, string>;
  let icdEnv: Record<string, string>;
  try {
    programs = await buildOpenclPrograms();
    icdEnv = await icdEnvironment();
  } catch (error) {
    const why = missingTools(error);
    if (why === null) throw error;
    console.log(`\nSKIPPED: icd: cannot build the native programs or the ICD (${why})`);
    return;
  }
  const nativeEnv: NodeJS.ProcessEnv = { ...process.env };
  const viaIcd = (channel: 'SHM' | 'LOCAL'): NodeJS.ProcessEnv => ({ ...process.env, ...icdEnv, AVA_CHANNEL: channel });
  const stderrNotes: string[] = [];
  const note = (what: string, r: ProgramRun): void => {
    for (const line of unexpectedStderr(r)) stderrNotes.push(`${what}: ${line}`);
    if (r.heldStdioMs !== undefined) {
      stderrNotes.push(`${what}: the program's stdout/stderr were still open ${(r.heldStdioMs / 1e3).toFixed(1)} s after it exited (a sidecar outlived it?)`);
    }
  };

  // The floor.
  const floorNs = await pingPong(counts.pings, DEFAULT_SPIN_MICROS);

  // Cheap query and launch + finish: microbench natively and through the ICD (alternating), then the TS proxy.
  const microArgs = [String(counts.queries), String(counts.launchFinish)];
  const micro = { native: [] as Micro[], icd: [] as Micro[], icdLocal: [] as Micro[] };
  await runProgram('microbench', programs.microbench, microArgs, nativeEnv, 'native warm-up');
  for (let r = 0; r < counts.programRuns; r++) {
    const n = await runProgram('microbench', programs.microbench, microArgs, nativeEnv, 'native');
    note('microbench native', n);
    micro.native.push(parseMicro(n, 'native'));
    const i = await runProgram('microbench', programs.microbench, microArgs, viaIcd('SHM'), 'ICD (SHM)');
    note('microbench ICD SHM', i);
    micro.icd.push(parseMicro(i, 'ICD (SHM)'));
    const l = await runProgram('microbench', programs.microbench, microArgs, viaIcd('LOCAL'), 'ICD (LOCAL)');
    note('microbench ICD LOCAL', l);
    micro.icdLocal.push(parseMicro(l, 'ICD (LOCAL)'));
  }
  const proxy = await proxyOverShm(counts.queries, counts.launchFinish, counts.proxyRuns);

  // Launch-heavy: native, ICD over SHM, ICD over LOCAL, alternating.
  const launchArgs = [String(counts.launches)];
  const heavy = { native: { wall: [] as number[], ms: [] as number[] }, shm: { wall: [] as number[], ms: [] as number[] }, local: { wall: [] as number[], ms: [] as number[] } };
  await runProgram('launches', programs.launches, ['1000'], nativeEnv, 'native warm-up');
  for (let r = 0; r < counts.launchRuns; r++) {
    for (const [key, env, what] of [['native', nativeEnv, 'native'], ['shm', viaIcd('SHM'), 'ICD (SHM)'], ['local', viaIcd('LOCAL'), 'ICD (LOCAL)']] as const) {
      const res = await runProgram('launches', programs.launches, launchArgs, env, what);
      note(`launches ${what}`, res);
      heavy[key].wall.push(res.wallNs);
      heavy[key].ms.push(launchesMs(res, what));
    }
  }

  // Event-heavy: native, ICD LOCAL, ICD LOCAL journaled (a fresh journal per run), alternating.
  const eventArgs = [String(counts.eventLaunches), '--events'];
  const events = { native: [] as number[], local: [] as number[], journaled: [] as number[] };
  const journals = mkdtempSync(join(tmpdir(), 'ava-bench-icd-'));
  try {
    for (let r = 0; r < counts.launchRuns; r++) {
      const journaled = { ...viaIcd('LOCAL'), AVA_RECORD_REPLAY: '1', AVA_JOURNAL: join(journals, String(r)) };
      for (const [key, env, what] of [['native', nativeEnv, 'native'], ['local', viaIcd('LOCAL'), 'ICD (LOCAL)'], ['journaled', journaled, 'ICD (LOCAL, journaled)']] as const) {
        const res = await runProgram('launches', programs.launches, eventArgs, env, `${what} --events`);
        note(`launches --events ${what}`, res);
        events[key].push(launchesMs(res, what));
      }
    }
  } finally {
    rmSync(journals, { recursive: true, force: true });
  }

  // Transfers: native and ICD LOCAL, alternating; MB/s each way from the program's own report.
  const transfer = { native: { write: [] as number[], read: [] as number[] }, local: { write: [] as number[], read: [] as number[] } };
  for (let r = 0; r < counts.programRuns; r++) {
    for (const [key, env, what] of [['native', nativeEnv, 'native'], ['local', viaIcd('LOCAL'), 'ICD (LOCAL)']] as const) {
      const res = await runProgram('transfers', programs.transfers, ['64', String(counts.transferRounds)], env, `transfers ${what}`);
      note(`transfers ${what}`, res);
      const m = /write (\d+) MB\/s, read (\d+) MB\/s/.exec(res.stderr);
      if (!m) throw new Error(`transfers ${what}: no rates on stderr:\n${res.stderr}`);
      transfer[key].write.push(Number(m[1]));
      transfer[key].read.push(Number(m[2]));
    }
  }
  const tr = Object.fromEntries(Object.entries(transfer).map(([k, v]) => [k, { write: median(v.write), read: median(v.read) }])) as
    Record<keyof typeof transfer, { write: number; read: number }>;

  // Medians and rows.
  const q = {
    native: median(micro.native.map((m) => m.queryNs)), icd: median(micro.icd.map((m) => m.queryNs)),
    icdLocal: median(micro.icdLocal.map((m) => m.queryNs)), proxy: proxy.queryNs,
  };
  const lf = {
    native: median(micro.native.map((m) => m.launchFinishUs * 1e3)), icd: median(micro.icd.map((m) => m.launchFinishUs * 1e3)),
    icdLocal: median(micro.icdLocal.map((m) => m.launchFinishUs * 1e3)), proxy: proxy.launchFinishNs,
  };
  const hv = Object.fromEntries(Object.entries(heavy).map(([k, v]) => [k, { wallMs: median(v.wall) / 1e6, programMs: median(v.ms) }])) as
    Record<keyof typeof heavy, { wallMs: number; programMs: number }>;
  const n = counts.launches;
  const ne = counts.eventLaunches;
  const ev = { native: median(events.native), local: median(events.local), journaled: median(events.journaled) };
  const row = (name: string, nsPerOp: number, base: number, ops: number): BenchRow => ({ name, nsPerOp, ratio: nsPerOp / base, ops });
  const table: BenchRow[] = [
    row('floor: raw SAB ping-pong, spin-then-wait', floorNs, floorNs, counts.pings),
    row('query: native (microbench)', q.native, q.native, counts.queries),
    row('query: ICD, AVA_CHANNEL=SHM', q.icd, q.native, counts.queries),
    row('query: ICD, AVA_CHANNEL=LOCAL', q.icdLocal, q.native, counts.queries),
    row('query: TS proxy over shm', q.proxy, q.native, counts.queries),
    row('launch+finish: native (microbench)', lf.native, lf.native, counts.launchFinish),
    row('launch+finish: ICD, AVA_CHANNEL=SHM', lf.icd, lf.native, counts.launchFinish),
    row('launch+finish: ICD, AVA_CHANNEL=LOCAL', lf.icdLocal, lf.native, counts.launchFinish),
    row('launch+finish: TS proxy over shm', lf.proxy, lf.native, counts.launchFinish),
    row(`launches ${n}: native, program's time`, hv.native.programMs * 1e6 / n, hv.native.programMs * 1e6 / n, n),
    row(`launches ${n}: ICD SHM, program's time`, hv.shm.programMs * 1e6 / n, hv.native.programMs * 1e6 / n, n),
    row(`launches ${n}: ICD LOCAL, program's time`, hv.local.programMs * 1e6 / n, hv.native.programMs * 1e6 / n, n),
    row(`launches ${n}: native, process wall`, hv.native.wallMs * 1e6 / n, hv.native.wallMs * 1e6 / n, n),
    row(`launches ${n}: ICD SHM, process wall`, hv.shm.wallMs * 1e6 / n, hv.native.wallMs * 1e6 / n, n),
    row(`launches ${n}: ICD LOCAL, process wall`, hv.local.wallMs * 1e6 / n, hv.native.wallMs * 1e6 / n, n),
    row(`launches ${ne} --events: native, program's time`, ev.native * 1e6 / ne, ev.native * 1e6 / ne, ne),
    row(`launches ${ne} --events: ICD LOCAL, program's time`, ev.local * 1e6 / ne, ev.native * 1e6 / ne, ne),
    row(`launches ${ne} --events: ICD LOCAL journaled, program's time`, ev.journaled * 1e6 / ne, ev.native * 1e6 / ne, ne),
    // ns per MiB moved (the ratio is native bandwidth over the ICD's).
    row('transfers 64 MiB host->device: native, ns/MiB', 2 ** 20 / tr.native.write * 1e3, 2 ** 20 / tr.native.write * 1e3, counts.transferRounds),
    row('transfers 64 MiB host->device: ICD LOCAL, ns/MiB', 2 ** 20 / tr.local.write * 1e3, 2 ** 20 / tr.native.write * 1e3, counts.transferRounds),
    row('transfers 64 MiB device->host: native, ns/MiB', 2 ** 20 / tr.native.read * 1e3, 2 ** 20 / tr.native.read * 1e3, counts.transferRounds),
    row('transfers 64 MiB device->host: ICD LOCAL, ns/MiB', 2 ** 20 / tr.local.read * 1e3, 2 ** 20 / tr.native.read * 1e3, counts.transferRounds),
  ];

  const queryOverFloor = { icd: q.icd / floorNs, icdLocal: q.icdLocal / floorNs, proxy: q.proxy / floorNs };
  const launchRatio = { shm: hv.shm.programMs / hv.native.programMs, local: hv.local.programMs / hv.native.programMs };
  const launchWallRatio = { shm: hv.shm.wallMs / hv.native.wallMs, local: hv.local.wallMs / hv.native.wallMs };
  const met = {
    launchHeavy: launchRatio.shm <= LAUNCH_TARGET,
    launchHeavyLocal: launchRatio.local <= LAUNCH_TARGET,
    query: queryOverFloor.icd <= QUERY_FLOOR_TARGET,
  };
  const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');
  const title = `OpenCL ICD: native programs natively vs through the ICD vs the TS proxy (clGetDeviceInfo CL_DEVICE_MAX_COMPUTE_UNITS = ${proxy.units}); ` +
    `ratio against native in each group (the floor against itself)${quick ? ' [--quick]' : ''}`;
  report('icd', title, table, {
    quick, counts, floorNs, query: q, launchFinishNs: lf, launchHeavy: hv, eventHeavyMs: ev, transfersMBps: tr, queryOverFloor, launchRatio, launchWallRatio,
    targets: { launchHeavy: `ICD <= ${LAUNCH_TARGET}x native (program's time, SHM)`, query: `ICD (SHM) query <= ${QUERY_FLOOR_TARGET}x the raw shm ping-pong floor` },
    met, runs: { micro, heavy, events, transfer }, notes: stderrNotes,
  });

  const f = (x: number, d = 2): string => x.toFixed(d);
  console.log('  targets:');
  console.log(`    cheap query, ICD (SHM) <= ${QUERY_FLOOR_TARGET}x shm ping-pong floor: ${f(q.icd / 1e3, 1)} us vs floor ${f(floorNs / 1e3, 1)} us = ` +
    `${f(queryOverFloor.icd)}x -> ${verdict(met.query)}  (ICD LOCAL: ${f(queryOverFloor.icdLocal)}x, TS proxy over shm: ${f(queryOverFloor.proxy)}x the floor)`);
  console.log(`    launch-heavy, ICD <= ${LAUNCH_TARGET}x native: program's time ${f(hv.native.programMs, 1)} ms native, ${f(hv.shm.programMs, 1)} ms SHM ` +
    `(${f(launchRatio.shm)}x) -> ${verdict(met.launchHeavy)}, ${f(hv.local.programMs, 1)} ms LOCAL (${f(launchRatio.local)}x) -> ${verdict(met.launchHeavyLocal)}`);
  console.log(`      process wall (sidecar start included): ${f(hv.native.wallMs, 0)} ms native, ${f(hv.shm.wallMs, 0)} ms SHM (${f(launchWallRatio.shm)}x), ` +
    `${f(hv.local.wallMs, 0)} ms LOCAL (${f(launchWallRatio.local)}x)`);
  console.log(`    event-heavy (no target): ${f(ev.native * 1e3 / ne)} us/launch native, ${f(ev.local * 1e3 / ne)} through the ICD, ` +
    `${f(ev.journaled * 1e3 / ne)} journaled`);
  console.log(`    transfers (no target): host->device ${tr.native.write} MB/s native, ${tr.local.write} through the ICD; ` +
    `device->host ${tr.native.read} native, ${tr.local.read} through the ICD`);
  if (stderrNotes.length > 0) {
    console.log(`  unexpected from the programs (${stderrNotes.length} line(s)):`);
    for (const l of stderrNotes.slice(0, 20)) console.log(`    ${l}`);
  }
}
