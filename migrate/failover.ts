/**
 * Failover: when the worker serving a session dies (kill -9, a crash, a lost host), the guest's next call notices
 * (`ERR_AVA_CHANNEL_CLOSED`) and the session is rebuilt on a new worker from its journal and its last checkpoint;
 * the call then goes on, the application unaware.
 *
 * What comes back:
 * - always: every object (journaled creates, configuration, retains and releases), and the explicit state saved by
 *   the last checkpoint (`checkpoint()`, or every `AVA_CHECKPOINT_EVERY` calls);
 * - with data journaling (`AVA_JOURNAL_DATA=1`): also every transfer and launch since that checkpoint, replayed in
 *   order, so no completed work is lost.
 * - without data journaling, what changed device contents after the last checkpoint (writes, kernel launches) is
 *   lost: buffers come back as the checkpoint (or their creation) left them.
 */
import type { Subscription } from 'rxjs';
import type { JournalRecord } from '../journal/format.js';
import type { SessionJournal } from '../journal/journal.js';
import { replayOnto } from '../replay/executor.js';
import { planFromRecords, planReplay } from '../replay/plan.js';
import { AvaError } from '../src/errors.js';
import type { GuestSession } from '../src/guest/session.js';
import type { Channel } from '../src/transport/channel.js';
import { describeChannel } from './migrate.js';

/** What one recovery did. */
export interface FailoverReport {
  /** The first call the dead worker did not answer. */
  readonly beforeCall: number;
  /** The checkpoint restored (-1: none), and the call before which it was taken. */
  readonly checkpoint: number;
  readonly checkpointCall: number;
  readonly replayed: number;
  readonly restoredObjects: number;
  readonly ms: number;
  readonly to: string;
}

/**
 * Writes a checkpoint of the session's explicit state now (the session paused while its state is read).
 * Returns the checkpoint's number.
 */
export function checkpoint(session: GuestSession, journal: SessionJournal): Promise<number> {
  return session.runExclusive(async () => {
    const seq = session.firstUnsent;
    await session.channel.barrier();
    const plan = await planReplay(journal, { before: seq });
    const states = new Map<number, Uint8Array>();
    for (const id of plan.withState) states.set(id, await session.channel.extractState(id, plan.held.has(id)));
    return journal.writeCheckpoint(states, 1 << 20, seq);
  });
}

/** Options of {@link enableFailover}. */
export interface FailoverOptions {
  /** Opens a new worker session of the same spec. */
  readonly openTarget: () => Promise<Channel>;
  /** Write a checkpoint every this many calls (0: only when `checkpoint()` is called). */
  readonly checkpointEvery?: number;
  /** Lines for the user (default: stderr). */
  readonly log?: (line: string) => void;
}

/** A session with failover on. */
export interface Failover {
  readonly reports: FailoverReport[];
  /** Stops checkpointing and failover. */
  stop(): void;
}

async function rebuild(session: GuestSession, journal: SessionJournal, target: Channel, beforeCall: number): Promise<Omit<FailoverReport, 'ms' | 'to'>> {
  await journal.flush();
  const records: JournalRecord[] = [];
  for await (const r of journal.records()) {
    if (r.seq >= beforeCall) break;
    records.push(r);
  }
  const cp = await journal.lastCheckpoint();
  const usable = cp && cp.seq <= beforeCall ? cp : undefined;
  const cut = usable?.seq ?? 0;
  // Before the checkpoint: the live closure (its state is in the checkpoint). After it: every record, in order, so
  // that journaled transfers and launches redo the work since (data journaling), on objects as they were then.
  const before = planFromRecords(session.spec, records.filter((r) => r.seq < cut));
  await replayOnto(target, before);
  let restored = 0;
  for (const [id, bytes] of usable?.states ?? []) {
    if (!before.liveObjects.has(id)) continue;
    await target.restoreState(id, bytes, undefined, before.held.has(id));
    restored++;
  }
  const after = records.filter((r) => r.seq >= cut);
  // With data journaling, transfers and launches run again; without, their records only stand for their events.
  await replayOnto(target, { ...before, records: after }, { recreateTransients: !journal.dataJournaling });
  return { beforeCall, checkpoint: usable?.number ?? -1, checkpointCall: usable?.seq ?? -1, replayed: before.records.length + after.length, restoredObjects: restored };
}

/** Turns failover on for `session`, journaled into `journal`. */
export function enableFailover(session: GuestSession, journal: SessionJournal, options: FailoverOptions): Failover {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const reports: FailoverReport[] = [];
  session.onChannelLost = async (beforeCall) => {
    const t0 = performance.now();
    let target: Channel | undefined;
    try {
      target = await options.openTarget();
      const done = await rebuild(session, journal, target, beforeCall);
      const old = session.switchChannel(target);
      void old.close().catch(() => undefined);
      const report: FailoverReport = { ...done, ms: performance.now() - t0, to: describeChannel(target) };
      reports.push(report);
      log(`ava-migrate: worker lost before call ${beforeCall}; session ${session.id.slice(0, 8)} rebuilt on ${report.to} in ${report.ms.toFixed(1)} ms (${report.replayed} records, checkpoint ${report.checkpoint})`);
    } catch (error) {
      await target?.close().catch(() => undefined);
      throw new AvaError('ERR_AVA_FAILOVER_FAILED', `the worker was lost and the session could not be rebuilt: ${(error as Error).message}`, { cause: error });
    }
  };
  let sub: Subscription | undefined;
  const every = options.checkpointEvery ?? 0;
  if (every > 0) {
    let next = session.callCount + every;
    sub = session.interceptor.calls$.subscribe((event) => {
      if (event.seq + 1 < next) return;
      next = event.seq + 1 + every;
      void checkpoint(session, journal).catch((error: unknown) => session.onTaskError(error));
    });
  }
  return {
    reports,
    stop() {
      sub?.unsubscribe();
      session.onChannelLost = undefined;
    },
  };
}
