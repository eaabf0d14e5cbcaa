/**
 * What replay costs, in one run:
 *
 * - `replay-plan`: planning (the live closure of a journal) over a synthetic 1,000,000-record toyacc journal with
 *   mostly dead objects (buffers created and released again, superseded kernel arguments) and a few live ones, from
 *   records in memory (`planFromRecords`), and over a 200,000-record LevelDB journal (`planReplay`: read, checksum,
 *   decode, plan). Target (issue 6): >= 500,000 records/s.
 * - `replay-time`: a realistic live closure (contexts, queues, programs with builds, kernels with arguments, buffers
 *   with data and retains: a few hundred records) replayed onto a fresh worker with `replayOnto`, against the time
 *   of the same native calls through `openNativeApi(toyaccSpec)` in the same run (the baseline). Target: replay
 *   <= 1.5x native. State restore of the buffers is reported beside it (it is not part of the target).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TQ } from '../fixtures/toyacc/constants.js';
import type { JournalRecord } from '../journal/format.js';
import { Journal } from '../journal/journal.js';
import type { JournalDb } from '../journal/journal.js';
import { record } from '../journal/recorder.js';
import { replayOnto } from '../replay/executor.js';
import { planFromRecords, planReplay } from '../replay/plan.js';
import type { ReplayPlan } from '../replay/plan.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import type { ApiObject } from '../src/guest/call-shape.js';
import type { Handle } from '../src/guest/handle.js';
import { createProxy } from '../src/guest/proxy.js';
import { GuestSession } from '../src/guest/session.js';
import { LocalChannel } from '../src/transport/local.js';
import { openNativeApi } from '../src/worker/native-api.js';
import { Worker } from '../src/worker/worker.js';
import { MemoryLevel } from 'memory-level';
import { report, rows } from './harness.js';

const PLAN_RECORDS = 1_000_000;
const LEVEL_RECORDS = 200_000;
const RUNS = 21;

const fnIndex = (name: string): number => {
  const i = toyaccSpec.functions.findIndex((f) => f.name === name);
  if (i < 0) throw new Error(`toyacc has no ${name}`);
  return i;
};

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// ------------------------------------------------------------------------------------------------ planning

/**
 * A synthetic journal of `n` records: devices, a context, a program with a build and a kernel; then, per 1,000
 * records, two buffers that stay live (one of them set as the kernel's argument 0, superseding the previous one, plus
 * a float argument that supersedes the previous float), and create + release pairs of buffers for the rest (dead).
 */
export function syntheticJournal(n: number): JournalRecord[] {
  const f = {
    devices: fnIndex('tq_get_devices'), context: fnIndex('tq_create_context'), program: fnIndex('tq_create_program'),
    build: fnIndex('tq_build_program'), kernel: fnIndex('tq_create_kernel'), buffer: fnIndex('tq_create_buffer'),
    release: fnIndex('tq_release_buffer'), setArg: fnIndex('tq_set_kernel_arg'),
  };
  const out: JournalRecord[] = [];
  let seq = 0;
  let id = 10;
  const push = (fn: number, args: JournalRecord['args'], ret: JournalRecord['ret'], outs: JournalRecord['outs'] = null): void => {
    out.push({ seq, fn, args, ret, outs, t: 1_700_000_000_000 + seq });
    seq += 1 + (seq % 3 === 0 ? 1 : 0); // queries and transfers between journaled calls leave gaps in seq
  };
  push(f.devices, [2, [1, 2], true], 0, { devices: [1, 2] });
  push(f.context, [2, [1, 2], true], 3);
  push(f.program, [3, 'fill scale', true], 4);
  push(f.build, [4, null], 0);
  push(f.kernel, [4, 'scale', true], 5);
  const float = new Uint8Array([0, 0, 0xc0, 0x3f]);
  while (out.length < n) {
    if (out.length % 1000 < 4) {
      const live = id++;
      push(f.buffer, [3, 0, 4096, null, true], live);
      push(f.setArg, [5, 0, 8, { handle: live }], 0);
      push(f.setArg, [5, 1, 4, float], 0);
      push(f.buffer, [3, 0, 64, null, true], id++);
      continue;
    }
    const dead = id++;
    push(f.buffer, [3, 0, 64, null, true], dead);
    if (out.length < n) push(f.release, [dead], 0);
  }
  return out;
}

async function benchPlanning(): Promise<void> {
  const records = syntheticJournal(PLAN_RECORDS);
  let plan: ReplayPlan | undefined;
  const memory: number[] = [];
  for (let r = 0; r < 1 + 3; r++) {
    const t0 = performance.now();
    plan = planFromRecords(toyaccSpec, records);
    if (r > 0) memory.push(performance.now() - t0);
  }
  const memoryMs = median(memory);

  const dir = mkdtempSync(join(tmpdir(), 'ava-bench-replay-'));
  let levelMs: number;
  let levelPlan: ReplayPlan;
  const samplesLevel: number[] = [];
  try {
    const journal = await Journal.open({ spec: toyaccSpec, path: dir, durability: 'none' });
    const sj = await journal.session('bench');
    for (const r of records.slice(0, LEVEL_RECORDS)) sj.append(r);
    await sj.flush();
    await journal.close();
    const reopened = await Journal.open({ spec: toyaccSpec, path: dir, durability: 'none' });
    const session = await reopened.session('bench');
    for (let r = 0; r < 1 + 3; r++) {
      const t0 = performance.now();
      levelPlan = await planReplay(session);
      if (r > 0) samplesLevel.push(performance.now() - t0);
    }
    levelMs = median(samplesLevel);
    await reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const perSecond = (count: number, ms: number): number => Math.round(count / (ms / 1000));
  report('replay-plan', 'replay planning (live closure), per record', rows([
    { name: `planFromRecords, ${PLAN_RECORDS.toLocaleString('en')} records in memory`, nsPerOp: (memoryMs * 1e6) / PLAN_RECORDS, ops: PLAN_RECORDS },
    { name: `planReplay, ${LEVEL_RECORDS.toLocaleString('en')} records in LevelDB`, nsPerOp: (levelMs * 1e6) / LEVEL_RECORDS, ops: LEVEL_RECORDS },
  ]), {
    target: { recordsPerSecond: 500_000 },
    memory: { records: PLAN_RECORDS, ms: memoryMs, minMs: Math.min(...memory), recordsPerSecond: perSecond(PLAN_RECORDS, memoryMs), planned: plan!.counts.live, liveObjects: plan!.liveObjects.size },
    level: { records: LEVEL_RECORDS, ms: levelMs, minMs: Math.min(...samplesLevel), recordsPerSecond: perSecond(LEVEL_RECORDS, levelMs), planned: levelPlan!.counts.live },
  });
  console.log(`  planning: ${perSecond(PLAN_RECORDS, memoryMs).toLocaleString('en')} records/s in memory (${plan!.counts.live} of ${PLAN_RECORDS} kept), ` +
    `${perSecond(LEVEL_RECORDS, levelMs).toLocaleString('en')} records/s from LevelDB; target >= 500,000`);
}

// ------------------------------------------------------------------------------------------------ replay against native

/** Sizes of the realistic session. */
const SESSION = { contexts: 3, queues: 2, programs: 3, kernelsPerProgram: 6, buffers: 120, bufferBytes: 4096, retains: 40 };

/**
 * A realistic live session through `api` (guestlib or native binding): every object stays live. Returns the handles
 * to release afterwards (native) and the buffers (for state).
 */
async function liveSession(api: ApiObject): Promise<{ release: [string, Handle][]; buffers: Handle[] }> {
  const release: [string, Handle][] = [];
  const buffers: Handle[] = [];
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const host = new Uint8Array(SESSION.bufferBytes).map((_, i) => i & 0xff);
  const sources = ['fill axpy scale checksum', 'fill; scale', 'axpy checksum'];
  const kernelNames = [['fill', 'axpy', 'scale', 'checksum', 'fill', 'axpy'], ['fill', 'scale', 'fill', 'scale', 'fill', 'scale'], ['axpy', 'checksum', 'axpy', 'checksum', 'axpy', 'checksum']];
  const argKinds: Record<string, ('buf' | 'float')[]> = { fill: ['buf', 'float'], axpy: ['float', 'buf', 'buf'], scale: ['buf', 'float'], checksum: ['buf', 'buf'] };
  for (let c = 0; c < SESSION.contexts; c++) {
    const ctx = (await api.tq_create_context!(2, devices)).ret as Handle;
    release.push(['context', ctx]);
    for (let q = 0; q < SESSION.queues; q++) release.push(['queue', (await api.tq_create_queue!(ctx, devices[q % 2])).ret as Handle]);
    const own: Handle[] = [];
    for (let b = 0; b < SESSION.buffers / SESSION.contexts; b++) {
      const buffer = (await api.tq_create_buffer!(ctx, TQ.MEM_COPY_HOST, SESSION.bufferBytes, host)).ret as Handle;
      own.push(buffer);
      buffers.push(buffer);
      release.push(['buffer', buffer]);
    }
    for (let p = 0; p < SESSION.programs; p++) {
      const program = (await api.tq_create_program!(ctx, sources[p]!)).ret as Handle;
      release.push(['program', program]);
      await api.tq_build_program!(program, p === 1 ? '-O2' : null);
      for (let k = 0; k < SESSION.kernelsPerProgram; k++) {
        const name = kernelNames[p]![k]!;
        const kernel = (await api.tq_create_kernel!(program, name)).ret as Handle;
        release.push(['kernel', kernel]);
        for (const [i, kind] of argKinds[name]!.entries()) {
          if (kind === 'buf') await api.tq_set_kernel_arg!(kernel, i, 8, own[(p * 7 + k * 3 + i) % own.length]);
          else await api.tq_set_kernel_arg!(kernel, i, 4, new Float32Array([0.5 + k]));
        }
      }
    }
  }
  for (let r = 0; r < SESSION.retains; r++) {
    const buffer = buffers[(r * 5) % buffers.length]!;
    await api.tq_retain_buffer!(buffer);
    release.push(['buffer', buffer]);
  }
  return { release, buffers };
}

function memoryDb(): JournalDb {
  return new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb;
}

async function benchReplay(): Promise<void> {
  // The live closure, recorded once through a journaled guest session; its buffer states extracted.
  const source = await Worker.open({ spec: toyaccSpec });
  const journal = await Journal.open({ spec: toyaccSpec, db: memoryDb(), durability: 'none' });
  const channel = await LocalChannel.open({ spec: toyaccSpec, worker: source, sessionId: 'bench-replay' });
  const session = new GuestSession({ spec: toyaccSpec, channel, id: 'bench-replay' });
  const recording = await record(session, journal);
  const { api } = createProxy(toyaccSpec, session, { asyncCalls: false });
  const { buffers } = await liveSession(api);
  const plan = await planReplay(recording.journal);
  const states = new Map<number, Uint8Array>();
  for (const b of buffers) if (!states.has(b.id)) states.set(b.id, await session.extractState(b.id));
  await recording.stop();
  await session.close();
  await journal.close();
  await source.close();
  const calls = plan.records.length;

  // Native baseline (the same calls, in the same order, through the spec-driven native binding) and replay onto a
  // fresh worker (opening it is not timed), calls only and calls + state restore, interleaved run by run so that
  // all three see the same machine state; the first round warms up.
  const native = await openNativeApi(toyaccSpec);
  const nativeMs: number[] = [];
  const replayMs: number[] = [];
  const restoreMs: number[] = [];
  const nativeRun = async (): Promise<number> => {
    const t0 = performance.now();
    const { release } = await liveSession(native.api);
    const ms = performance.now() - t0;
    for (const [kind, h] of [...release].reverse()) await native.api[`tq_release_${kind}`]!(h);
    return ms;
  };
  const replayRun = async (withState: boolean): Promise<number> => {
    const worker = await Worker.open({ spec: toyaccSpec });
    const target = await LocalChannel.open({ spec: toyaccSpec, worker, sessionId: 'bench-replay' });
    const t0 = performance.now();
    const result = await replayOnto(target, plan, withState ? { states } : {});
    const ms = performance.now() - t0;
    if (result.calls !== calls) throw new Error(`replayed ${result.calls} of ${calls} calls`);
    await target.close();
    await worker.close();
    return ms;
  };
  const kinds = [
    { samples: nativeMs, run: nativeRun },
    { samples: replayMs, run: () => replayRun(false) },
    { samples: restoreMs, run: () => replayRun(true) },
  ];
  // The order rotates each round, so that none of the three always pays the garbage the one before it left.
  for (let r = 0; r < 1 + RUNS; r++) {
    for (let k = 0; k < kinds.length; k++) {
      const { samples, run } = kinds[(r + k) % kinds.length]!;
      const ms = await run();
      if (r > 0) samples.push(ms);
    }
  }
  await native.close();

  const nativeNs = (median(nativeMs) * 1e6) / calls;
  const replayNs = (median(replayMs) * 1e6) / calls;
  const restoreNs = (median(restoreMs) * 1e6) / calls;
  const stateBytes = [...states.values()].reduce((n, s) => n + s.byteLength, 0);
  report('replay-time', `replay of a live closure (${calls} records, ${states.size} buffers of state) vs the same native calls, per call`, rows([
    { name: 'native: openNativeApi, same calls (baseline)', nsPerOp: nativeNs, ops: calls },
    { name: 'replayOnto a fresh worker (local channel)', nsPerOp: replayNs, ops: calls },
    { name: `replayOnto + restore ${(stateBytes / 1024).toFixed(0)} KiB of state`, nsPerOp: restoreNs, ops: calls },
  ]), {
    target: { ratio: 1.5 },
    records: calls,
    counts: plan.counts,
    ms: { native: median(nativeMs), replay: median(replayMs), replayAndRestore: median(restoreMs) },
    minMs: { native: Math.min(...nativeMs), replay: Math.min(...replayMs), replayAndRestore: Math.min(...restoreMs) },
    ratio: replayNs / nativeNs,
  });
  console.log(`  replay: ${(replayNs / nativeNs).toFixed(2)}x native over ${calls} calls (${median(replayMs).toFixed(2)} ms vs ${median(nativeMs).toFixed(2)} ms); target <= 1.5x`);
}

/** Runs the benchmark. */
export async function run(): Promise<void> {
  await benchPlanning();
  await benchReplay();
}
