/**
 * Moving a live session to another worker, the application unaware (it only sees one slower call):
 *
 * 1. drain: every call already sent has run on the source (asynchronous ones too), the journal is written;
 * 2. connect: a target worker session is opened (a fresh worker, one from the manager, or a peer manager's);
 * 3. replay: the target replays the journal's live closure, binding the same ids;
 * 4. extract + restore: the source syncs the device and hands over the explicit state of the live objects (buffer
 *    contents) in chunks, each written into the target's object and checked there against its checksum, the next
 *    chunk read while the current one is written;
 * 5. switch: the guest session moves to the target channel; the source session is released.
 *
 * If any step fails, the target is discarded, the session stays on the source and keeps working, and the error is
 * reported (`ERR_AVA_MIGRATION_FAILED`, with the cause). Each phase is timed; downtime is their sum.
 */
import type { SessionJournal } from '../journal/journal.js';
import { replayOnto } from '../replay/executor.js';
import { planReplay } from '../replay/plan.js';
import { AvaError } from '../src/errors.js';
import type { GuestSession } from '../src/guest/session.js';
import type { Channel } from '../src/transport/channel.js';
import { copyStates } from './copy-state.js';

/**
 * Milliseconds per phase. State moves in chunks while source reads and target writes overlap: `extract` is the time
 * spent waiting for the source's chunks, `restore` the rest of the copy (target writes and checks). `replay`
 * includes planning.
 */
export interface MigrationPhases {
  readonly drain: number;
  readonly extract: number;
  readonly connect: number;
  readonly replay: number;
  readonly restore: number;
  readonly switch: number;
}

/** What one migration did. */
export interface MigrationReport {
  /** The call before which the session moved. */
  readonly call: number;
  readonly session: string;
  readonly from: string;
  readonly to: string;
  readonly phases: MigrationPhases;
  /** Sum of the phases: the application's extra wait. */
  readonly total: number;
  /** Explicit state moved, in bytes, and the objects it belongs to. */
  readonly bytes: number;
  readonly stateObjects: number;
  /** How the state went: `direct` (streamed from the source worker to the target worker) or `relayed` (through the guest). */
  readonly stateRoute: 'direct' | 'relayed';
  /** Records replayed on the target. */
  readonly replayed: number;
}

/** A migration that did not happen (`ERR_AVA_MIGRATION_FAILED`); the session is still on its source. */
export class MigrationError extends AvaError {
  constructor(phase: string, cause: unknown) {
    super('ERR_AVA_MIGRATION_FAILED', `migration failed in the ${phase} phase, the session stays on its worker: ${(cause as Error)?.message ?? String(cause)}`, {
      cause, details: { phase },
    });
  }
}

/** Options of {@link migrateSession}. */
export interface MigrateOptions {
  /** The call the migration happens before (calls from it on are not sent yet). */
  readonly beforeCall: number;
  /** Opens the target channel (a worker session of the same spec). */
  readonly openTarget: () => Promise<Channel>;
  /** Describes a channel in reports. */
  readonly describe?: (channel: Channel) => string;
  /** Progress while state streams. */
  readonly onProgress?: (message: string) => void;
}

/** A channel in reports: its kind, and the worker's id where the channel knows it (`unix:1234-ab12cd34`). */
export function describeChannel(channel: Channel): string {
  const worker = (channel as { workerId?: string }).workerId;
  return worker ? `${channel.kind}:${worker}` : channel.kind;
}

/**
 * Migrates `session` (journaled into `journal`) now. Call it from a task scheduled on the session
 * (`session.schedule`), so that no call is sent while it runs.
 * @throws {MigrationError} after putting everything back as it was.
 */
export async function migrateSession(session: GuestSession, journal: SessionJournal, options: MigrateOptions): Promise<MigrationReport> {
  const describe = options.describe ?? describeChannel;
  const source = session.channel;
  const call = options.beforeCall;
  let phase = 'drain';
  let target: Channel | undefined;
  const t = [performance.now()];
  try {
    await source.barrier();
    await journal.flush();
    t.push(performance.now());

    phase = 'extract';
    const plan = await planReplay(journal, { before: call });
    t.push(performance.now());

    phase = 'connect';
    target = await options.openTarget();
    t.push(performance.now());

    phase = 'replay';
    const replayed = await replayOnto(target, plan);
    t.push(performance.now());

    // State goes in chunks straight from the source to the target, each checked on the target against the checksum
    // taken at extraction; `extract` and `restore` are the time spent waiting on each side.
    phase = 'restore';
    const copied = await copyStates(source, target, plan.withState, plan.held);
    options.onProgress?.(`copied ${copied.objects} objects, ${copied.bytes} bytes (${copied.direct ? 'worker to worker' : 'through the guest'})`);
    t.push(performance.now());

    phase = 'switch';
    const old = session.switchChannel(target);
    t.push(performance.now());
    // Releasing the source session is not downtime: the application already runs on the target.
    void old.close().catch((error: unknown) => session.onTaskError(error));
    const [t0, t1, t2, t3, t4, t5, t6] = t as [number, number, number, number, number, number, number];
    const phases: MigrationPhases = {
      drain: t1 - t0, extract: copied.extractMs, connect: t3 - t2, replay: (t4 - t3) + (t2 - t1), restore: (t5 - t4) - copied.extractMs, switch: t6 - t5,
    };
    return {
      call, session: session.id, from: describe(old), to: describe(target), phases, total: t6 - t0,
      bytes: copied.bytes, stateObjects: copied.objects, stateRoute: copied.direct ? 'direct' : 'relayed', replayed: replayed.calls,
    };
  } catch (error) {
    if (target) await target.close().catch(() => undefined);
    throw new MigrationError(phase, error);
  }
}
