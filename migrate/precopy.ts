/**
 * Pre-copy (live) migration: the explicit state is copied while the application keeps running, so downtime follows
 * the state that changed during the copy, not the total.
 *
 * Live phase (the application runs on the source): a target is opened, the journal's live closure up to the cut is
 * replayed there, and every stateful live object is copied over (checked by checksum). Meanwhile every call after the
 * cut that can change an object's contents marks it dirty: a transfer or launch naming it, a launch of a kernel whose
 * arguments name it (through the journal's graph), or its creation after the cut.
 *
 * Stop phase (the session paused, as in stop-and-copy): drain, replay the records journaled since the cut, copy only
 * the dirty objects, switch. Its phases are the downtime.
 */
import type { Subscription } from 'rxjs';
import { createdHandles, inputHandles } from '../journal/graph.js';
import type { JournalRecord } from '../journal/format.js';
import type { SessionJournal } from '../journal/journal.js';
import { replayOnto } from '../replay/executor.js';
import { planReplay } from '../replay/plan.js';
import type { ReplayPlan } from '../replay/plan.js';
import type { GuestSession } from '../src/guest/session.js';
import type { Channel } from '../src/transport/channel.js';
import { copyStates, moveState, rangeItems, wholeItems } from './copy-state.js';
import { planOf } from '../src/spec/plan.js';
import type { MigrateOptions, MigrationReport } from './migrate.js';
import { MigrationError, describeChannel } from './migrate.js';

/** Pre-copy specifics of a report. */
export interface PrecopyStats {
  /** Milliseconds of the live phase (not downtime). */
  readonly liveMs: number;
  /** Bytes copied while the application ran. */
  readonly liveBytes: number;
  /** Objects copied again in the stop phase, and their bytes. */
  readonly dirtyObjects: number;
  readonly dirtyBytes: number;
}

/** Marks objects whose contents calls after the cut may have changed: whole objects, or byte ranges of them. */
class DirtyTracker {
  /** Whole objects to recopy. */
  readonly dirty = new Set<number>();
  /** Byte ranges to recopy, for objects only written through calls that say what they write. */
  readonly ranges = new Map<number, [offset: number, size: number][]>();
  #sub: Subscription | undefined;

  start(session: GuestSession, journal: SessionJournal, cut: number): void {
    const spec = session.spec;
    this.#sub = session.interceptor.calls$.subscribe((event) => {
      if (event.seq < cut) return;
      const f = spec.fn.get(event.fn);
      if (!f) return;
      if (f.writes) {
        const { indexOf } = planOf(f);
        const target = event.args[indexOf.get(f.writes.target)!];
        const offset = Number(event.args[indexOf.get(f.writes.offset)!]);
        const size = Number(event.args[indexOf.get(f.writes.size)!]);
        const kind = typeof target === 'number' ? journal.graph.nodes.get(target)?.kind : undefined;
        // Only kinds with chunked state access can take a region; the others are recopied whole.
        const ranged = kind !== undefined && spec.kind.get(kind)?.state?.extractRange !== undefined;
        if (ranged && typeof target === 'number' && Number.isSafeInteger(offset) && Number.isSafeInteger(size)) {
          if (!this.dirty.has(target)) this.ranges.set(target, [...(this.ranges.get(target) ?? []), [offset, size]]);
          return;
        }
      }
      if (f.record === 'transfer' || f.record === 'execute') {
        for (const id of inputHandles(f, event.args)) {
          this.#whole(id);
          // A launched kernel writes the buffers its arguments name.
          for (const c of journal.graph.nodes.get(id)?.configs.values() ?? []) for (const d of c.deps) this.#whole(d);
        }
      } else if (f.record === 'create') {
        const ret = event.reply?.ret ?? event.retId;
        for (const { id } of createdHandles(f, { args: event.args, ret: ret ?? null, outs: event.reply?.outs ?? null })) this.#whole(id);
      }
    });
  }

  #whole(id: number): void {
    this.dirty.add(id);
    this.ranges.delete(id);
  }

  stop(): void {
    this.#sub?.unsubscribe();
  }
}


/**
 * Migrates `session` by pre-copy, starting now while the application runs. Resolves with the report once the
 * session runs on the target.
 * @throws {MigrationError} after discarding the target; the session stays on its source.
 */
export async function precopyMigrate(session: GuestSession, journal: SessionJournal, options: Omit<MigrateOptions, 'beforeCall'>): Promise<MigrationReport & { precopy: PrecopyStats }> {
  const tracker = new DirtyTracker();
  const source = session.channel;
  // The first call not sent yet (the trigger call itself, when started from a task): everything before it is on the
  // source, everything from it on is tracked and journaled for the stop phase.
  const cut = session.firstUnsent;
  tracker.start(session, journal, cut);
  let target: Channel | undefined;
  let phase = 'pre-copy';
  try {
    const live0 = performance.now();
    session.flush();
    await source.barrier();
    const plan = await planReplay(journal, { before: cut });
    target = await options.openTarget();
    await replayOnto(target, plan);
    // The application keeps running: an object it releases meanwhile is skipped here and left to the stop phase,
    // whose plan says whether it still matters (held by a live object) and how.
    const first = await copyStates(source, target, [...plan.liveObjects].filter((id) => plan.withState.has(id)), plan.held, { skipReleased: true });
    for (const id of first.skipped) tracker.dirty.add(id);
    const liveMs = performance.now() - live0;
    options.onProgress?.(`pre-copied ${first.objects} objects, ${first.bytes} bytes in ${liveMs.toFixed(1)} ms`);

    const chosen = target;
    type Report = MigrationReport & { precopy: PrecopyStats };
    const stopPhase = async (): Promise<Report> => {
      const stopCall = session.firstUnsent;
      const t0 = performance.now();
      phase = 'drain';
      await source.barrier();
      await journal.flush();
      const t1 = performance.now();
      phase = 'replay';
      const now = await planReplay(journal, { before: stopCall });
      const delta: JournalRecord[] = [];
      for await (const r of journal.records()) {
        if (r.seq >= stopCall) break;
        if (r.seq >= cut) delta.push(r);
      }
      await replayOnto(chosen, { ...now, records: delta });
      const t2 = performance.now();
      phase = 'copy dirty state';
      tracker.stop();
      // Dirty objects whole, and the dirty regions of the others, in one copy.
      const dirty = await moveState(source, chosen, [
        ...wholeItems([...tracker.dirty].filter((id) => now.withState.has(id)), now.held),
        ...rangeItems([...tracker.ranges].filter(([id]) => now.withState.has(id)), now.held),
      ]);
      const t3 = performance.now();
      phase = 'switch';
      const old = session.switchChannel(chosen);
      const t4 = performance.now();
      void old.close().catch((error: unknown) => session.onTaskError(error));
      const describe = options.describe ?? describeChannel;
      return {
        call: stopCall, session: session.id, from: describe(old), to: describe(chosen),
        phases: { drain: t1 - t0, extract: dirty.extractMs, connect: 0, replay: t2 - t1, restore: dirty.restoreMs, switch: t4 - t3 },
        total: t4 - t0, bytes: first.bytes + dirty.bytes, stateObjects: first.objects, stateRoute: dirty.direct || first.direct ? 'direct' : 'relayed', replayed: plan.records.length + delta.length,
        precopy: { liveMs, liveBytes: first.bytes, dirtyObjects: dirty.objects, dirtyBytes: dirty.bytes },
      };
    };
    // The stop phase pauses the session: at once, unless work waits on the application (another thread blocked in a
    // wait, an incomplete user event), when pausing could never finish; then it runs before a later call, where the
    // session checks that again (see GuestSession.schedule). A session that is closing makes no later call.
    if (!session.waitingOnApplication || session.closing) return await session.runExclusive(stopPhase);
    return await new Promise<Report>((resolve, reject) => {
      session.schedule(session.callCount, async () => {
        try {
          resolve(await stopPhase());
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  } catch (error) {
    tracker.stop();
    if (target) await target.close().catch(() => undefined);
    throw new MigrationError(phase, error);
  }
}
