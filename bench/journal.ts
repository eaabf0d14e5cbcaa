/**
 * What journaling costs: call throughput of small journaled calls (tq_retain_buffer + tq_release_buffer pairs,
 * posted asynchronously, then one waiting call) on shm and on unix, each with journaling off, durability `batch`
 * and `sync`, in one run, as ratios against off; and journal bytes per record (stored key and value bytes, and the
 * LevelDB folder on disk, before and after LevelDB compacts it).
 *
 * Targets (issue 5): `batch` costs <= 10% of throughput against journaling off; <= 64 bytes per record for small
 * calls. Also reported: the guest-side share of the journal (recorder + store) per call, measured over a channel
 * that drops every call, so the hot spots can be told apart from the transport.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import { nullChannel } from './null-channel.js';
import type { ChannelKind } from '../src/config.js';
import type { Handle } from '../src/guest/handle.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Guestlib } from '../src/guest/open.js';
import { keys } from '../journal/format.js';
import { Journal } from '../journal/journal.js';
import type { Durability } from '../journal/journal.js';
import { report, rows } from './harness.js';

/** Retain + release pairs per timed run (each pair is two journaled calls). */
const PAIRS = 50_000;
const CALLS = 2 * PAIRS;
const RUNS = 7;

type Mode = 'off' | Durability;

function folderBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    total += st.isDirectory() ? folderBytes(path) : st.size;
  }
  return total;
}


interface Setup {
  readonly lib: Guestlib;
  readonly loop: () => Promise<void>;
}

async function setUp(lib: Guestlib, fake: boolean): Promise<Setup> {
  const api = lib.api;
  const devices = fake ? [] : ((await api.tq_get_devices!(2, true)).outs.devices as Handle[]);
  const device = fake ? lib.handleAt('device', new BigUint64Array([1n])) : devices[0];
  const ctx = (await api.tq_create_context!(1, fake ? [device] : devices)).ret as Handle;
  const buffer = (await api.tq_create_buffer!(ctx, 0, 64, null)).ret as Handle;
  const out = new Uint8Array(4);
  return {
    lib,
    loop: async () => {
      for (let i = 0; i < PAIRS; i++) {
        void api.tq_retain_buffer!(buffer);
        void api.tq_release_buffer!(buffer);
      }
      await api.tq_get_device_info!(device, TQ.DEVICE_UNITS, 4, out);
    },
  };
}

/** Median ns per call of each setup, timed in turns (one warm-up turn, then {@link RUNS}). */
async function interleaved(setups: ReadonlyMap<Mode, Setup>): Promise<Map<Mode, number>> {
  const samples = new Map<Mode, number[]>([...setups.keys()].map((m) => [m, []]));
  for (let round = 0; round <= RUNS; round++) {
    for (const [mode, { loop }] of setups) {
      const t0 = process.hrtime.bigint();
      await loop();
      if (round > 0) samples.get(mode)!.push(Number(process.hrtime.bigint() - t0) / CALLS);
    }
  }
  return new Map([...samples].map(([m, xs]) => [m, xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]));
}

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'ava-bench-journal-'));
  try {
    const table: { name: string; nsPerOp: number; ops: number }[] = [];
    const callsPerSecond: Record<string, number> = {};
    const costVsOff: Record<string, number> = {};
    let bytes: Record<string, number> = {};
    for (const transport of ['shm', 'unix'] as const satisfies readonly ChannelKind[]) {
      // The three sessions run side by side and are timed in turns, so that drift of the machine (other processes,
      // the heap growing) falls on each alike.
      const modes = ['off', 'batch', 'sync'] as const;
      const setups = new Map<Mode, Setup>();
      for (const mode of modes) {
        const path = join(root, `${transport}-${mode}`);
        setups.set(mode, await setUp(await openGuestlib(toyaccSpec, { transport, journal: mode === 'off' ? false : { path, durability: mode } }), false));
      }
      const ns = await interleaved(setups);
      for (const mode of modes) {
        table.push({ name: `${transport}, journal ${mode}`, nsPerOp: ns.get(mode)!, ops: CALLS });
        callsPerSecond[`${transport}-${mode}`] = Math.round(1e9 / ns.get(mode)!);
        if (mode !== 'off') costVsOff[`${transport}-${mode}`] = ns.get(mode)! / ns.get('off')! - 1;
      }
      for (const [mode, { lib }] of setups) {
        const sessionId = lib.session.id;
        await lib.close();
        // The folder as the session left it (LevelDB's log), before a reopen turns the log into a compressed table.
        if (transport === 'shm' && mode === 'batch') bytes = await journalBytes(join(root, `${transport}-${mode}`), sessionId, folderBytes(join(root, `${transport}-${mode}`)));
      }
    }

    // The guest's share: the same loop over a channel that drops calls, journal off and batch.
    const guest = new Map<Mode, Setup>();
    for (const mode of ['off', 'batch'] as const) {
      guest.set(mode, await setUp(await openGuestlib(toyaccSpec, {
        channel: nullChannel(), asyncCalls: true, journal: mode === 'off' ? false : { path: join(root, `null-${mode}`), durability: mode },
      }), true));
    }
    const guestNs = await interleaved(guest);
    const guestOnly = { off: guestNs.get('off')!, batch: guestNs.get('batch')! };
    table.push({ name: 'guest only (null channel), journal off', nsPerOp: guestOnly.off, ops: CALLS });
    table.push({ name: 'guest only (null channel), journal batch', nsPerOp: guestOnly.batch, ops: CALLS });
    for (const { lib } of guest.values()) await lib.close();

    report('journal-throughput', `journaled calls (${PAIRS} tq_retain_buffer + tq_release_buffer pairs posted, then one waiting call), per call`, rows(table), {
      target: 'batch costs <= 10% of throughput against journaling off',
      callsPerSecond,
      costVsOff,
      journalNsPerCallOnGuest: guestOnly.batch! - guestOnly.off!,
    });
    for (const [k, v] of Object.entries(costVsOff)) console.log(`  ${k}: ${(v * 100).toFixed(0)}% slower than off (${callsPerSecond[k]!.toLocaleString('en-US')} calls/s)`);
    console.log(`  journal on the guest (recorder + store), per call: ${(guestOnly.batch! - guestOnly.off!).toFixed(0)} ns`);

    const perRecord = rows([
      { name: 'value bytes per record (crc + CBOR)', nsPerOp: bytes.valueBytesPerRecord!, ops: bytes.records! },
      { name: 'key + value bytes per record', nsPerOp: bytes.keyValueBytesPerRecord!, ops: bytes.records! },
      { name: 'on disk per record, as the session left it', nsPerOp: bytes.diskBytesPerRecord!, ops: bytes.records! },
      { name: 'on disk per record, reopened and compacted', nsPerOp: bytes.diskBytesPerRecordCompacted!, ops: bytes.records! },
    ]);
    report('journal-bytes', 'journal bytes per record (small calls: retain/release of a buffer; the "ns/op" column holds bytes)', perRecord, {
      target: '<= 64 bytes per record for small calls',
      ...bytes,
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Sizes of one session's journal, read back after the run. */
async function journalBytes(path: string, sessionId: string, writtenBytes: number): Promise<Record<string, number>> {
  const journal = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
  let records = 0;
  let valueBytes = 0;
  let keyBytes = 0;
  let diskBytes = 0;
  let diskCompacted = 0;
  let liveRecords = 0;
  try {
    const n = (await journal.sessions()).find((s) => s.id === sessionId)!.n;
    for await (const [key, value] of journal.db.iterator(keys.records(n))) {
      records++;
      keyBytes += key.byteLength;
      valueBytes += value.byteLength;
    }
    diskBytes = writtenBytes;
    const db = journal.db as unknown as { compactRange?: (a: Uint8Array, b: Uint8Array) => Promise<void> };
    await db.compactRange?.(new Uint8Array([0]), new Uint8Array([0xff]));
    diskCompacted = folderBytes(path);
    liveRecords = (await journal.session(sessionId)).graph.liveRecords().length;
  } finally {
    await journal.close();
  }
  return {
    records,
    liveRecordsAfterCompaction: liveRecords,
    valueBytesPerRecord: valueBytes / records,
    keyValueBytesPerRecord: (keyBytes + valueBytes) / records,
    diskBytesPerRecord: diskBytes / records,
    diskBytesPerRecordCompacted: diskCompacted / records,
  };
}
