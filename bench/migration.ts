/**
 * Migration downtime, phase by phase, against the cost of moving the same bytes raw, all measured in one run.
 *
 * For each state size (1 MiB, 64 MiB, 1 GiB; `--quick` leaves out 1 GiB) a toyacc session over the unix channel
 * (guest in this process, workers in other processes) holds the state in buffers of at most 256 MiB (1 GiB = 4
 * buffers), filled with random bytes through tq_enqueue_write in chunks of at most 16 MiB. The CRC-32 of every chunk
 * is kept, and after each migration every buffer is read back on the target, chunk by chunk, and compared: a fast
 * but wrong migration does not pass.
 *
 * - stop-and-copy: `armMigration` (migrate/arm.ts) at the next call; a waiting call (tq_finish) then runs the
 *   migration before it. `report.phases` (drain, extract, connect, replay, restore, switch) and `report.total`.
 * - pre-copy: `armMigration(..., { mode: 'precopy' })` at the next call (a query); AFTER that trigger the application
 *   makes 16 MiB dirty (one tq_enqueue_write of 16 MiB of new bytes into the first buffer; the whole state when it is
 *   smaller) and keeps making calls until the report arrives. Downtime is `report.total` (the stop phase); the live
 *   phase and the dirty bytes come from `report.precopy`. At 1 GiB it runs once more with the state in 64 buffers of
 *   16 MiB, so the dirtied 16 MiB is a whole object: what the stop phase would copy if dirt were tracked per range
 *   (today it is per object, so 16 MiB dirty in a 256 MiB buffer recopies 256 MiB). The target is judged on 4 x 256 MiB.
 * - baselines, same sizes, same run: a raw memcpy (`Buffer.copy` between buffers already touched), a raw socket
 *   copy between two processes over a unix socket (a child process receives N bytes and answers one byte; the time
 *   is send + ack), and a write of N bytes into freshly allocated memory (allocate, then fill: the first touch of
 *   every page). The last is what a restore into the target's new device buffers costs at least on toyacc, whose
 *   buffers are host memory allocated by replay (calloc) and touched first by the restore; the raw socket copy's
 *   receiver touches no new memory.
 *
 * The target worker is started before the migration and handed over by `openTarget`, as a manager's warm pool
 * (AVA_WPOOL) gives it, so `connect` is a connection and handshake; the cost of starting a fresh worker process
 * (what `defaultTarget` does without a manager) is measured once, at 1 MiB, and printed beside.
 *
 * Targets (issue): stop-and-copy total <= 1.5x the raw socket copy + 10 ms at 1 GiB; pre-copy downtime with 1 GiB of
 * state of which 16 MiB is dirty <= 50 ms.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { crc32 } from 'node:zlib';
import { armMigration } from '../migrate/arm.js';
import type { MigrationPhases, MigrationReport } from '../migrate/migrate.js';
import type { PrecopyStats } from '../migrate/precopy.js';
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import type { Handle } from '../src/guest/handle.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Guestlib } from '../src/guest/open.js';
import type { Channel } from '../src/transport/channel.js';
import { connectSocketChannel } from '../src/transport/connect.js';
import { spawnWorkerProcess } from '../src/worker/spawn.js';
import type { BenchRow } from './harness.js';
import { report } from './harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** toyacc's largest buffer. */
const BUFFER_MAX = 256 * MiB;
/** Largest tq_enqueue_write / tq_enqueue_read of the fill and the read-back. */
const CHUNK = 16 * MiB;
/** A waiting call after this many posted bytes, so the batch frames (and the guest's copies) stay bounded. */
const FLUSH_BYTES = 256 * MiB;
const DIRTY = 16 * MiB;
const STOP_RATIO = 1.5;
const STOP_SLACK_MS = 10;
const PRECOPY_MS = 50;

const quick = process.argv.includes('--quick');
const SIZES = quick ? [MiB, 64 * MiB] : [MiB, 64 * MiB, GiB];
/** Migrations per size (each on a fresh session); the median total is kept. */
const runsFor = (size: number): number => (size >= GiB ? 1 : 3);
/** Timed runs of each baseline per size (after one warm-up). */
const baselineRunsFor = (size: number): number => (size >= GiB ? 3 : size >= 64 * MiB ? 5 : 15);

const fmtSize = (n: number): string => (n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (n: number): string => n.toFixed(1);

// ------------------------------------------------------------------------------------------------ baselines

/** True when the kernel hands freed pages back to a hypervisor (`page_reporting` on its command line): new memory then costs host faults. */
function freePageReporting(): boolean {
  try {
    return /\bpage_reporting\./.test(readFileSync('/proc/cmdline', 'utf8'));
  } catch {
    return false;
  }
}

/** Median ms of a Buffer.copy of `size` bytes, in pieces of at most 256 MiB (the state's layout), pages touched. */
function memcpyMs(size: number, runs: number): number {
  const pieces: { src: Buffer; dst: Buffer }[] = [];
  for (let at = 0; at < size; at += BUFFER_MAX) {
    const n = Math.min(BUFFER_MAX, size - at);
    const src = Buffer.allocUnsafe(n);
    randomFillSync(src, 0, Math.min(n, MiB));
    for (let o = MiB; o < n; o += MiB) src.copy(src, o, 0, Math.min(MiB, n - o));
    pieces.push({ src, dst: Buffer.alloc(n) });
  }
  const once = (): number => {
    const t0 = performance.now();
    for (const { src, dst } of pieces) src.copy(dst);
    return performance.now() - t0;
  };
  once();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(once());
  return median(samples);
}

/**
 * The sink, as a script for `node -e`: listens on the unix path given as its argument; each transfer is an 8-byte
 * big-endian length and that many bytes, answered with one byte once all of them arrived.
 */
const SINK = `
const net = require('node:net');
const server = net.createServer((socket) => {
  let want = -1, got = 0, head = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (want < 0) {
        const take = Math.min(8 - head.length, chunk.length - at);
        head = Buffer.concat([head, chunk.subarray(at, at + take)]);
        at += take;
        if (head.length === 8) { want = Number(head.readBigUInt64BE(0)); got = 0; head = Buffer.alloc(0); }
      } else {
        const take = Math.min(want - got, chunk.length - at);
        got += take;
        at += take;
      }
      if (want >= 0 && got === want) { want = -1; socket.write(Buffer.from([0x6b])); }
    }
  });
  socket.on('error', () => {});
});
server.listen(process.argv[1], () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

interface Sink {
  readonly child: ChildProcess;
  readonly socket: Socket;
}

async function startSink(path: string): Promise<Sink> {
  const child = spawn(process.execPath, ['-e', SINK, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the raw socket sink did not start within 10 s')), 10_000);
    createInterface({ input: child.stdout! }).once('line', () => { clearTimeout(timer); resolve(); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the raw socket sink exited (${code})`)); });
  });
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  return { child, socket };
}

/** Median ms of sending `size` bytes (pieces of at most 256 MiB) to the sink process and receiving its ack. */
async function socketCopyMs(sink: Sink, size: number, runs: number): Promise<number> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < size; at += BUFFER_MAX) {
    const n = Math.min(BUFFER_MAX, size - at);
    const b = Buffer.allocUnsafe(n);
    randomFillSync(b, 0, Math.min(n, MiB));
    for (let o = MiB; o < n; o += MiB) b.copy(b, o, 0, Math.min(MiB, n - o));
    pieces.push(b);
  }
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(size));
  const once = async (): Promise<number> => {
    const acked = new Promise<void>((resolve) => sink.socket.once('data', () => resolve()));
    const t0 = performance.now();
    sink.socket.write(head);
    for (const p of pieces) sink.socket.write(p);
    await acked;
    return performance.now() - t0;
  };
  await once();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(await once());
  return median(samples);
}

// ------------------------------------------------------------------------------------------------ the state

/** A toyacc session holding `size` bytes of buffer state, and the CRC-32 of every chunk of it. */
interface StateSession {
  readonly lib: Guestlib;
  readonly queue: Handle;
  readonly device: Handle;
  readonly buffers: { readonly handle: Handle; readonly size: number; readonly crcs: number[] }[];
  readonly size: number;
}

/**
 * Opens a session over a new unix worker, creates buffers of `bufferSize` bytes (the last one may be smaller) and
 * fills them (random bytes, chunk by chunk).
 */
async function openState(size: number, journalDir: string, bufferSize = BUFFER_MAX): Promise<StateSession> {
  const lib = await openGuestlib(toyaccSpec, { transport: 'unix', journal: { path: journalDir } });
  const api = lib.api;
  const device = ((await api.tq_get_devices!(1, true)).outs.devices as Handle[])[0]!;
  const context = (await api.tq_create_context!(1, [device])).ret as Handle;
  const queue = (await api.tq_create_queue!(context, device)).ret as Handle;
  const buffers: StateSession['buffers'][number][] = [];
  // A plain Uint8Array, not a Buffer: the proxy's copy of posted inputs is `bytes.slice()`, which for a Buffer is a
  // view (src/guest/encode.ts), so a reused Buffer would change bytes already posted but not yet sent.
  const chunk = new Uint8Array(Math.min(CHUNK, size));
  let posted = 0;
  for (let at = 0; at < size; at += bufferSize) {
    const n = Math.min(bufferSize, size - at);
    const handle = (await api.tq_create_buffer!(context, 0, n, null)).ret as Handle;
    const crcs: number[] = [];
    for (let o = 0; o < n; o += CHUNK) {
      const len = Math.min(CHUNK, n - o);
      const bytes = chunk.subarray(0, len);
      randomFillSync(bytes);
      crcs.push(crc32(bytes) >>> 0);
      await api.tq_enqueue_write!(queue, handle, o, len, bytes); // posted; the proxy copies the bytes
      posted += len;
      if (posted >= FLUSH_BYTES) {
        await api.tq_finish!(queue);
        posted = 0;
      }
    }
    buffers.push({ handle, size: n, crcs });
  }
  await api.tq_finish!(queue);
  return { lib, queue, device, buffers, size };
}

/**
 * Checks that the session left `source` and reads every buffer back chunk by chunk (on the worker that serves the
 * session now) against the CRCs of what was written.
 */
async function verify(state: StateSession, source: Channel): Promise<{ ok: boolean; ms: number; detail: string }> {
  if (state.lib.session.channel === source) return { ok: false, ms: 0, detail: 'the session still runs on its source worker' };
  const t0 = performance.now();
  const dst = new Uint8Array(Math.min(CHUNK, state.size));
  const bad: string[] = [];
  for (const [b, buffer] of state.buffers.entries()) {
    for (let c = 0; c < buffer.crcs.length; c++) {
      const len = Math.min(CHUNK, buffer.size - c * CHUNK);
      const view = dst.subarray(0, len);
      view.fill(0);
      await state.lib.api.tq_enqueue_read!(state.queue, buffer.handle, c * CHUNK, len, view);
      if ((crc32(view) >>> 0) !== buffer.crcs[c]) bad.push(`buffer ${b} chunk ${c}`);
    }
  }
  return { ok: bad.length === 0, ms: performance.now() - t0, detail: bad.length === 0 ? 'all chunks match' : `${bad.length} chunks differ (${bad.slice(0, 4).join(', ')}${bad.length > 4 ? ', ...' : ''})` };
}

/**
 * A target worker started now (as a warm pool gives one): `open` connects a session to it (the channel stops it when
 * closed), `stop` stops it in case no migration got that far.
 */
async function warmTarget(dir: string, tag: string): Promise<{ open: () => Promise<Channel>; stop: () => Promise<void> }> {
  const worker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'unix', path: join(dir, `target-${tag}.sock`) } });
  return {
    open: () => connectSocketChannel({ address: worker.address, spec: toyaccSpec, sessionId: `bench-target-${tag}`, dispose: () => worker.stop() }),
    stop: () => worker.stop(),
  };
}

// ------------------------------------------------------------------------------------------------ migrations

interface StopResult {
  readonly report: MigrationReport;
  /** What the application saw: the waiting call that ran the migration before it. */
  readonly callMs: number;
  readonly verified: { ok: boolean; ms: number; detail: string };
}

async function stopAndCopy(size: number, dir: string, tag: string, fresh = false): Promise<StopResult> {
  const state = await openState(size, join(dir, `journal-${tag}`));
  const target = fresh ? undefined : await warmTarget(dir, tag);
  try {
    const openTarget = target?.open;
    const source = state.lib.session.channel;
    const armed = armMigration(state.lib.session, state.lib.journal!, {
      trigger: { kind: 'at', call: state.lib.session.callCount }, log: () => undefined,
      ...(openTarget ? { openTarget } : {}),
    });
    const t0 = performance.now();
    await state.lib.api.tq_finish!(state.queue);
    const callMs = performance.now() - t0;
    const migrated = armed.reports[0];
    if (!migrated) throw new Error(`stop-and-copy at ${fmtSize(size)}: no migration report (see the ava-migrate line above)`);
    const verified = await verify(state, source);
    return { report: migrated, callMs, verified };
  } finally {
    await state.lib.close();
    await target?.stop();
  }
}

interface PrecopyResult {
  readonly report: MigrationReport & { precopy: PrecopyStats };
  /** Bytes the application rewrote after the trigger. */
  readonly dirtied: number;
  /** Longest single call the application waited for while the migration ran (its view of the downtime). */
  readonly longestCallMs: number;
  readonly callsDuringMigration: number;
  readonly verified: { ok: boolean; ms: number; detail: string };
}

async function precopy(size: number, dir: string, tag: string, bufferSize = BUFFER_MAX): Promise<PrecopyResult> {
  const state = await openState(size, join(dir, `journal-${tag}`), bufferSize);
  const target = await warmTarget(dir, tag);
  try {
    const openTarget = target.open;
    const api = state.lib.api;
    const source = state.lib.session.channel;
    let done: (r: MigrationReport) => void = () => undefined;
    const reported = new Promise<MigrationReport>((resolve) => { done = resolve; });
    let failed: unknown;
    state.lib.session.onTaskError = (error) => { failed = error; done(undefined as never); };
    armMigration(state.lib.session, state.lib.journal!, {
      trigger: { kind: 'at', call: state.lib.session.callCount }, mode: 'precopy', openTarget, log: () => undefined, onMigrated: (r) => done(r),
    });
    let migrated: MigrationReport | undefined;
    void reported.then((r) => { migrated = r; });
    const info = new Uint8Array(4);
    // The trigger: a query. The live phase starts before it and runs beside the application from here on.
    await api.tq_get_device_info!(state.device, TQ.DEVICE_UNITS, 4, info);

    // After the trigger: rewrite 16 MiB (the whole state when smaller) of the first buffer with new bytes.
    const first = state.buffers[0]!;
    const dirtied = Math.min(DIRTY, first.size);
    const fresh = new Uint8Array(Math.min(CHUNK, dirtied)); // not a Buffer: see openState
    for (let o = 0; o < dirtied; o += CHUNK) {
      const len = Math.min(CHUNK, dirtied - o);
      const bytes = fresh.subarray(0, len);
      randomFillSync(bytes);
      first.crcs[o / CHUNK] = crc32(bytes) >>> 0;
      await api.tq_enqueue_write!(state.queue, first.handle, o, len, bytes);
    }
    // The application goes on (small calls with a little think time) until the migration is reported.
    let longest = 0;
    let calls = 0;
    while (!migrated && !failed) {
      const t0 = performance.now();
      await api.tq_get_device_info!(state.device, TQ.DEVICE_UNITS, 4, info);
      longest = Math.max(longest, performance.now() - t0);
      calls++;
      await sleep(1);
    }
    if (failed || !migrated) throw new Error(`pre-copy at ${fmtSize(size)} failed: ${(failed as Error)?.message ?? 'no report'}`);
    const verified = await verify(state, source);
    return { report: migrated as PrecopyResult['report'], dirtied, longestCallMs: longest, callsDuringMigration: calls, verified };
  } finally {
    await state.lib.close();
    await target.stop();
  }
}

/** Median ms to allocate `size` bytes (in pieces of at most 256 MiB) and write every byte: fresh pages first touched. */
function freshWriteMs(size: number, runs: number): number {
  const once = (): number => {
    const t0 = performance.now();
    for (let at = 0; at < size; at += BUFFER_MAX) Buffer.allocUnsafeSlow(Math.min(BUFFER_MAX, size - at)).fill(0x5a);
    return performance.now() - t0;
  };
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(once());
  return median(samples);
}

// ------------------------------------------------------------------------------------------------ the run

interface SizeResult {
  readonly size: number;
  readonly memcpyMs: number;
  readonly socketMs: number;
  readonly freshMs: number;
  readonly stop: StopResult[];
  readonly pre: PrecopyResult[];
}

const PHASES: readonly (keyof MigrationPhases)[] = ['drain', 'extract', 'connect', 'replay', 'restore', 'switch'];

/** The run whose total is the median. */
function medianRun<T extends { report: MigrationReport }>(runs: readonly T[]): T {
  const sorted = [...runs].sort((a, b) => a.report.total - b.report.total);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ava-bench-migration-'));
  let sink: Sink | undefined;
  const results: SizeResult[] = [];
  let freshConnectMs: number | undefined;
  /** Pre-copy of 1 GiB held in 16 MiB buffers: what object-granular dirty tracking costs when an object is 16 MiB. */
  let smallObjects: PrecopyResult | undefined;
  try {
    sink = await startSink(join(dir, 'sink.sock'));
    for (const size of SIZES) {
      const memcpy = memcpyMs(size, baselineRunsFor(size));
      const socket = await socketCopyMs(sink, size, baselineRunsFor(size));
      const fresh = freshWriteMs(size, baselineRunsFor(size));
      console.log(`  ${fmtSize(size)}: raw memcpy ${ms(memcpy)} ms, raw unix socket copy ${ms(socket)} ms, write into fresh memory ${ms(fresh)} ms`);
      const stop: StopResult[] = [];
      const pre: PrecopyResult[] = [];
      for (let r = 0; r < runsFor(size); r++) {
        const s = await stopAndCopy(size, dir, `stop-${size}-${r}`);
        stop.push(s);
        console.log(`  ${fmtSize(size)} stop-and-copy #${r + 1}: ${ms(s.report.total)} ms (${PHASES.map((p) => `${p} ${ms(s.report.phases[p])}`).join(', ')}); read-back ${s.verified.ok ? 'ok' : `WRONG: ${s.verified.detail}`}`);
        const p = await precopy(size, dir, `pre-${size}-${r}`);
        pre.push(p);
        console.log(`  ${fmtSize(size)} pre-copy #${r + 1}: downtime ${ms(p.report.total)} ms, live ${ms(p.report.precopy.liveMs)} ms, dirty ${fmtSize(p.report.precopy.dirtyBytes)} in ${p.report.precopy.dirtyObjects} objects; read-back ${p.verified.ok ? 'ok' : `WRONG: ${p.verified.detail}`}`);
      }
      if (size === SIZES[0]) {
        const spawned = await stopAndCopy(size, dir, `fresh-${size}`, true);
        freshConnectMs = spawned.report.phases.connect;
        if (!spawned.verified.ok) console.log(`  fresh-worker stop-and-copy at ${fmtSize(size)}: read-back WRONG: ${spawned.verified.detail}`);
      }
      results.push({ size, memcpyMs: memcpy, socketMs: socket, freshMs: fresh, stop, pre });
      if (size === GiB) {
        smallObjects = await precopy(size, dir, `pre-small-${size}`, DIRTY);
        console.log(`  ${fmtSize(size)} in ${fmtSize(DIRTY)} buffers, pre-copy: downtime ${ms(smallObjects.report.total)} ms, live ${ms(smallObjects.report.precopy.liveMs)} ms, dirty ${fmtSize(smallObjects.report.precopy.dirtyBytes)} in ${smallObjects.report.precopy.dirtyObjects} objects; read-back ${smallObjects.verified.ok ? 'ok' : `WRONG: ${smallObjects.verified.detail}`}`);
      }
    }
  } finally {
    sink?.socket.destroy();
    sink?.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- stop-and-copy
  console.log('\nstop-and-copy downtime per phase (ms; median run by total)');
  console.log(`  ${'state'.padEnd(8)}${PHASES.map((p) => p.padStart(9)).join('')}${'total'.padStart(9)}${'memcpy'.padStart(9)}${'socket'.padStart(9)}${'fresh'.padStart(9)}${'tot/sock'.padStart(10)}${'app call'.padStart(10)}  route     read-back`);
  const stopRows: BenchRow[] = [];
  const stopDetails: Record<string, unknown>[] = [];
  for (const r of results) {
    const m = medianRun(r.stop);
    const ratio = m.report.total / r.socketMs;
    const ok = r.stop.every((s) => s.verified.ok);
    console.log(`  ${fmtSize(r.size).padEnd(8)}${PHASES.map((p) => ms(m.report.phases[p]).padStart(9)).join('')}${ms(m.report.total).padStart(9)}${ms(r.memcpyMs).padStart(9)}${ms(r.socketMs).padStart(9)}${ms(r.freshMs).padStart(9)}${`${ratio.toFixed(2)}x`.padStart(10)}${ms(m.callMs).padStart(10)}  ${m.report.stateRoute.padEnd(8)}  ${ok ? 'ok' : 'WRONG'}`);
    stopRows.push(
      { name: `${fmtSize(r.size)} raw unix socket copy (baseline)`, nsPerOp: r.socketMs * 1e6, ratio: 1, ops: 1 },
      { name: `${fmtSize(r.size)} raw memcpy`, nsPerOp: r.memcpyMs * 1e6, ratio: r.memcpyMs / r.socketMs, ops: 1 },
      { name: `${fmtSize(r.size)} write into fresh memory`, nsPerOp: r.freshMs * 1e6, ratio: r.freshMs / r.socketMs, ops: 1 },
      { name: `${fmtSize(r.size)} stop-and-copy total`, nsPerOp: m.report.total * 1e6, ratio, ops: 1 },
    );
    stopDetails.push({
      size: r.size, memcpyMs: r.memcpyMs, socketMs: r.socketMs, freshWriteMs: r.freshMs, totalOverSocket: ratio, verified: ok,
      runs: r.stop.map((s) => ({ phases: s.report.phases, total: s.report.total, bytes: s.report.bytes, stateObjects: s.report.stateObjects, stateRoute: s.report.stateRoute, replayed: s.report.replayed, appCallMs: s.callMs, verify: s.verified })),
    });
  }
  if (freshConnectMs !== undefined) console.log(`  (connect above: a worker already running, as a pool gives it; a fresh worker process started by defaultTarget costs ${ms(freshConnectMs)} ms of connect)`);

  // ---------------------------------------------------------------- pre-copy
  console.log('\npre-copy: stop-phase downtime per phase (ms; median run by downtime); extract/restore = dirty objects only');
  console.log(`  ${'state'.padEnd(8)}${['drain', 'replay', 'extract', 'restore', 'switch'].map((p) => p.padStart(9)).join('')}${'downtime'.padStart(10)}${'live'.padStart(9)}${'dirtied'.padStart(9)}${'recopied'.padStart(10)}${'longest call'.padStart(14)}  read-back`);
  const preRows: BenchRow[] = [];
  const preDetails: Record<string, unknown>[] = [];
  const preDetail = (p: PrecopyResult): Record<string, unknown> => ({
    phases: p.report.phases, downtime: p.report.total, precopy: p.report.precopy, dirtied: p.dirtied, longestAppCallMs: p.longestCallMs, appCalls: p.callsDuringMigration, verify: p.verified,
  });
  const preLine = (label: string, m: PrecopyResult, ok: boolean): void => {
    const pc = m.report.precopy;
    console.log(`  ${label.padEnd(8)}${(['drain', 'replay', 'extract', 'restore', 'switch'] as const).map((p) => ms(m.report.phases[p]).padStart(9)).join('')}${ms(m.report.total).padStart(10)}${ms(pc.liveMs).padStart(9)}${fmtSize(m.dirtied).padStart(9)}${fmtSize(pc.dirtyBytes).padStart(10)}${ms(m.longestCallMs).padStart(14)}  ${ok ? 'ok' : 'WRONG'}`);
  };
  for (const r of results) {
    const m = medianRun(r.pre);
    const ok = r.pre.every((p) => p.verified.ok);
    const pc = m.report.precopy;
    preLine(fmtSize(r.size), m, ok);
    preRows.push(
      { name: `${fmtSize(r.size)} raw unix socket copy (baseline)`, nsPerOp: r.socketMs * 1e6, ratio: 1, ops: 1 },
      { name: `${fmtSize(r.size)} pre-copy downtime`, nsPerOp: m.report.total * 1e6, ratio: m.report.total / r.socketMs, ops: 1 },
      { name: `${fmtSize(r.size)} pre-copy live phase`, nsPerOp: pc.liveMs * 1e6, ratio: pc.liveMs / r.socketMs, ops: 1 },
    );
    preDetails.push({
      size: r.size, socketMs: r.socketMs, memcpyMs: r.memcpyMs, verified: ok,
      runs: r.pre.map(preDetail),
    });
  }
  if (smallObjects) {
    preLine(`${fmtSize(GiB)}/${DIRTY / MiB}M`, smallObjects, smallObjects.verified.ok);
    console.log(`  (${fmtSize(GiB)}/${DIRTY / MiB}M: the same 1 GiB held in ${GiB / DIRTY} buffers of ${fmtSize(DIRTY)}, so that the dirtied ${fmtSize(DIRTY)} is one whole object:`);
    console.log('   what per-range dirty tracking would copy in the stop phase, through today\'s state path; not the target\'s layout)');
  }

  // ---------------------------------------------------------------- targets
  const big = results.find((r) => r.size === GiB);
  let stopMet: boolean | null = null;
  let preMet: boolean | null = null;
  console.log('');
  if (!big) {
    console.log(`  targets: not measured (--quick leaves out 1 GiB)`);
  } else {
    const s = medianRun(big.stop);
    const limit = STOP_RATIO * big.socketMs + STOP_SLACK_MS;
    stopMet = s.report.total <= limit && big.stop.every((x) => x.verified.ok);
    console.log(`  target stop-and-copy at 1 GiB: total ${ms(s.report.total)} ms <= ${STOP_RATIO} x ${ms(big.socketMs)} + ${STOP_SLACK_MS} = ${ms(limit)} ms: ${stopMet ? 'MET' : 'MISSED'}`);
    console.log(`    (for scale: the raw socket copy plus a write of the same bytes into fresh memory, which the restore into new toyacc buffers cannot avoid: ${ms(big.socketMs + big.freshMs)} ms)`);
    if (freePageReporting()) {
      console.log('    (this VM reports freed memory to its hypervisor (page_reporting on the kernel command line): memory a process touches after');
      console.log('     the guest\'s recently used pages run out costs a host fault, ~2.9 s per GiB on the 2-core VMs; the 1 GiB restore pays it)');
    }
    const p = medianRun(big.pre);
    preMet = p.report.total <= PRECOPY_MS && big.pre.every((x) => x.verified.ok);
    console.log(`  target pre-copy at 1 GiB, ${fmtSize(p.dirtied)} dirtied: downtime ${ms(p.report.total)} ms <= ${PRECOPY_MS} ms: ${preMet ? 'MET' : 'MISSED'} (stop phase recopied ${fmtSize(p.report.precopy.dirtyBytes)})`);
  }
  const failedChecks = [...results.flatMap((r) => [...r.stop, ...r.pre]), ...(smallObjects ? [smallObjects] : [])].filter((x) => !x.verified.ok).length;
  if (failedChecks > 0) console.log(`  ${failedChecks} migrations left WRONG bytes on the target (see above)`);

  report('migration-stop', 'stop-and-copy migration downtime vs moving the same bytes raw (ratio: / raw unix socket copy of that size)', stopRows, {
    sizes: stopDetails, target: { ratio: STOP_RATIO, slackMs: STOP_SLACK_MS, at: GiB, met: stopMet }, freshWorkerConnectMs: freshConnectMs ?? null, quick,
    freePageReporting: freePageReporting(),
  });
  report('migration-precopy', 'pre-copy migration downtime (stop phase) with 16 MiB dirtied after the trigger (ratio: / raw unix socket copy)', preRows, {
    sizes: preDetails, target: { downtimeMs: PRECOPY_MS, at: GiB, dirty: DIRTY, met: preMet }, quick,
    smallObjects: smallObjects ? { size: GiB, bufferSize: DIRTY, ...preDetail(smallObjects) } : null,
  });
}
