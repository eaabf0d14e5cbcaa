/**
 * The child process of crash.test.ts: journals a toyacc session (local channel, asynchronous calls, durability as
 * given, default `batch`) in a loop of journaled calls only, so that the journal it leaves is easy to predict:
 *
 * - seq 0: tq_get_devices (waiting; devices get ids 1 and 2)
 * - seq 1: tq_create_context (posted; id 3), seq 2: tq_create_buffer (posted; id 4)
 * - then rounds of {@link PAIRS} tq_retain_buffer + tq_release_buffer pairs (posted) and one tq_get_devices (waiting).
 *
 * It prints `ready`, then the seq of each waiting call once it has returned, one per line, and `done` at the end.
 * It never runs past `maxCalls` calls, nor (a safety net) longer than 60 s.
 *
 * node --import tsx test/journal/crash-child.ts <journal folder> [maxCalls=20000] [durability=batch]
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Durability } from '../../journal/journal.js';

/** Retain + release pairs per round. */
export const PAIRS = 25;
/** The session id the child journals under. */
export const SESSION_ID = 'crash-child';

/** What the child writes at `seq` (function name and the handle it names), for the parent's check. */
export function expectedCall(seq: number): { fn: string; target: number | null } {
  if (seq === 0) return { fn: 'tq_get_devices', target: null };
  if (seq === 1) return { fn: 'tq_create_context', target: null };
  if (seq === 2) return { fn: 'tq_create_buffer', target: 3 };
  const inRound = (seq - 3) % (2 * PAIRS + 1);
  if (inRound === 2 * PAIRS) return { fn: 'tq_get_devices', target: null };
  return { fn: inRound % 2 === 0 ? 'tq_retain_buffer' : 'tq_release_buffer', target: 4 };
}

async function main(): Promise<void> {
  const [path, max = '20000', durability = 'batch'] = process.argv.slice(2);
  if (!path) throw new Error('usage: crash-child.ts <journal folder> [maxCalls] [durability]');
  const maxCalls = Number(max);
  const safety = setTimeout(() => process.exit(3), 60_000);
  safety.unref();
  const lib = await openGuestlib(toyaccSpec, {
    transport: 'local', asyncCalls: true, sessionId: SESSION_ID, journal: { path, durability: durability as Durability },
  });
  const api = lib.api;
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
  const buffer = (await api.tq_create_buffer!(ctx, 0, 64, null)).ret as Handle;
  if (devices[0]!.id !== 1 || ctx.id !== 3 || buffer.id !== 4) throw new Error(`unexpected ids ${devices.join()} ${ctx} ${buffer}`);
  process.stdout.write('ready\n');
  while (lib.session.callCount + 2 * PAIRS + 1 <= maxCalls) {
    for (let i = 0; i < PAIRS; i++) {
      void api.tq_retain_buffer!(buffer);
      void api.tq_release_buffer!(buffer);
    }
    const seq = lib.session.callCount;
    await api.tq_get_devices!(2, true);
    process.stdout.write(`${seq}\n`);
  }
  await lib.close();
  process.stdout.write('done\n');
  clearTimeout(safety);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
