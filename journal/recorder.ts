/**
 * The journal as an interceptor subscriber: records, per session, the calls that create handles or change state
 * (record classes create, configure, retain, release, global) and that succeeded. Asynchronous calls are recorded
 * when sent and retracted if the worker later reports them failed. With `timings`, the stage timings of every call
 * are stored too.
 */
import type { Subscription } from 'rxjs';
import { journalTimings, journalData } from '../src/config.js';
import type { GuestSession } from '../src/guest/session.js';
import type { CallEvent } from '../src/intercept/interceptor.js';
import { callFailed, keptFailure } from '../src/spec/outcome.js';
import type { FunctionSpec, RecordClass } from '../src/spec/types.js';
import type { ReplyFrame, WireValue } from '../src/wire/frames.js';
import type { JournalRecord } from './format.js';
import type { Journal, SessionJournal } from './journal.js';

/** The record classes the journal keeps. */
export const JOURNALED: ReadonlySet<RecordClass> = new Set(['create', 'configure', 'retain', 'release', 'global']);

/** A running recording of one guest session; `stop()` flushes and detaches. */
export interface Recording {
  readonly journal: SessionJournal;
  stop(): Promise<void>;
}

/** Options of {@link record}. */
export interface RecordOptions {
  /**
   * Also store every call's stage timings (all record classes, asynchronous calls too) under `s!<n>!t!<seq>`.
   * @defaultValue `AVA_JOURNAL_TIMINGS`, else false
   */
  readonly timings?: boolean;
  /**
   * Data journaling: also keep the transfer and execute calls (writes with their bytes, launches), so that failover
   * replays the work done since the last checkpoint and loses nothing that completed.
   * @defaultValue `AVA_JOURNAL_DATA`, else false
   */
  readonly data?: boolean;
}

/** What {@link recordOf} needs to know of a function, worked out once: it runs for every call of a journaled session. */
interface RecordShape {
  /**
   * The call makes a mapping (a map) or ends one (an unmap): a migration while the mapping is live maps the region
   * again on the target, so the pair is journaled (compaction drops it once unmapped).
   */
  readonly mapping: boolean;
  /** Its handle out-arguments (an enqueue's event). */
  readonly handleOuts: readonly number[];
}
const recordShapes = new WeakMap<FunctionSpec, RecordShape>();

function recordShapeOf(f: FunctionSpec): RecordShape {
  let shape = recordShapes.get(f);
  if (!shape) {
    shape = {
      mapping: f.returns.role === 'mapped' || f.args.some((a) => a.role === 'mapped'),
      handleOuts: f.args.flatMap((a, i) => (a.role === 'handleOut' ? [i] : [])),
    };
    recordShapes.set(f, shape);
  }
  return shape;
}

/** True when the call stored a handle of a transient kind (an enqueue's event): replay must recreate it. */
function createsTransient(shape: RecordShape, event: CallEvent): boolean {
  for (const i of shape.handleOuts) if (event.args[i] !== null && event.args[i] !== undefined) return true;
  return false;
}

/** The record classes data journaling adds. */
export const DATA_JOURNALED: ReadonlySet<RecordClass> = new Set(['transfer', 'execute']);

/** `{id, bytes}` of a mapping without its bytes: replay maps the region again and needs only the id. */
function mappingIdOnly(value: WireValue): WireValue {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
    ? { id: (value as { id?: WireValue }).id ?? null, bytes: null }
    : value;
}

/** Builds the record of a completed call (null when the call is not journaled or failed). */
export function recordOf(f: FunctionSpec, fnIndex: number, event: CallEvent, success: number, data = false): JournalRecord | null {
  const shape = recordShapeOf(f);
  const mapping = shape.mapping;
  if (!JOURNALED.has(f.record) && !(DATA_JOURNALED.has(f.record) && (data || mapping || createsTransient(shape, event)))) return null;
  // An unmap's write-back bytes matter only to data journaling (which replays the work); a map's bytes never do.
  // Nor do the bytes of a transfer kept only for the event it made: without data journaling, replay recreates that
  // event completed from the record's handles and never runs the transfer (a 1 GiB write with an event put its
  // 1 GiB into the store).
  const forTransient = !data && !mapping && !JOURNALED.has(f.record);
  const args = mapping && !data ? f.args.map((a, i) => (a.role === 'mapped' ? mappingIdOnly(event.args[i] ?? null) : event.args[i] ?? null))
    : forTransient ? f.args.map((a, i) => (a.role === 'bufferIn' ? null : event.args[i] ?? null))
    : event.args;
  let ret: WireValue;
  let outs: Record<string, WireValue> | null = null;
  if (event.async) {
    ret = f.returns.role === 'handle' ? event.retId : f.returns.role === 'status' ? success : null;
  } else {
    const reply = event.reply!;
    ret = f.returns.role === 'mapped' ? mappingIdOnly(reply.ret ?? null) : reply.ret ?? null;
    for (const a of f.args) {
      if ((a.role === 'handlesOut' || a.role === 'handleOut') && reply.outs?.[a.name] !== undefined) {
        outs ??= {};
        outs[a.name] = reply.outs[a.name]!;
      }
    }
  }
  return { seq: event.seq, fn: fnIndex, args, ret, outs, t: event.stages.beforeSendCommand };
}

/**
 * Starts recording `session` into `journal`. With durability `batch` or `sync`, a waiting call returns only once the
 * records before it are in the store.
 */
export async function record(session: GuestSession, journal: Journal, options: RecordOptions = {}): Promise<Recording> {
  const sj = await journal.session(session.id);
  const timings = options.timings ?? journalTimings();
  const data = options.data ?? journalData();
  sj.dataJournaling ||= data;
  const spec = journal.spec;
  const index = new Map(spec.functions.map((f, i) => [f.name, i]));
  const pendingAsync = new Map<number, JournalRecord>();
  const subs: Subscription[] = [];
  /**
   * A record the journal refuses (out of order, a store failure) stops journaling for this session and is reported,
   * instead of escaping into rxjs (which rethrows it and ends the process): the application goes on, and what was
   * journaled before stays.
   */
  const guarded = <T>(body: (value: T) => void) => (value: T): void => {
    try {
      body(value);
    } catch (error) {
      for (const s of subs) s.unsubscribe();
      session.onTaskError(error);
      process.stderr.write(`ava-journal: journaling of session ${session.id} stopped; the records before this one are kept\n`);
    }
  };
  subs.push(session.interceptor.calls$.subscribe(guarded((event) => {
    const f = spec.fn.get(event.fn)!;
    // Timings of every call, failed ones too: they are the session's history, not replay input.
    if (timings) sj.appendTimings(event.seq, index.get(event.fn)!, event.stages);
    if (!event.async && event.reply) {
      // Failures of earlier asynchronous calls arrive before this reply: those not reported succeeded.
      pendingAsync.clear();
      // A kept failure is one the library returned; a call the worker refused (bad handle) never reached it.
      if (callFailed(spec, event.fn, event.reply) && !keptFailure(f, event.reply)) return;
    }
    const r = recordOf(f, index.get(event.fn)!, event, spec.status.success, data);
    if (!r) return;
    const elided = sj.append(r, !session.paused);
    if (elided) for (const seq of elided) pendingAsync.delete(seq);
    else if (event.async) pendingAsync.set(r.seq, r);
  })));
  subs.push(session.interceptor.asyncFailures$.subscribe(guarded((reply: ReplyFrame) => {
    const r = pendingAsync.get(reply.seq);
    if (!r) return;
    pendingAsync.delete(reply.seq);
    // A failure that changed state (a failed build) stays, with its status; any other failed call changed nothing.
    if (keptFailure(spec.functions[r.fn]!, reply)) sj.rewrite({ ...r, ret: reply.ret ?? null });
    else sj.retract(reply.seq, r);
  })));
  const removeBarrier = journal.durability === 'none' ? () => undefined : session.addBarrier(() => sj.flush());
  return {
    journal: sj,
    async stop() {
      for (const s of subs) s.unsubscribe();
      removeBarrier();
      await sj.flush();
    },
  };
}
