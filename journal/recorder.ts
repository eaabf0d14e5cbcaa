/**
 * The journal as an interceptor subscriber: records, per session, the calls that create handles or change state
 * (record classes create, configure, retain, release, global) and that succeeded. Asynchronous calls are recorded
 * when sent and retracted if the worker later reports them failed.
 */
import type { Subscription } from 'rxjs';
import type { GuestSession } from '../src/guest/session.js';
import type { CallEvent } from '../src/intercept/interceptor.js';
import { callFailed } from '../src/spec/outcome.js';
import type { FunctionSpec, RecordClass } from '../src/spec/types.js';
import type { WireValue } from '../src/wire/frames.js';
import type { JournalRecord } from './format.js';
import type { Journal, SessionJournal } from './journal.js';

/** The record classes the journal keeps. */
export const JOURNALED: ReadonlySet<RecordClass> = new Set(['create', 'configure', 'retain', 'release', 'global']);

/** A running recording of one guest session; `stop()` flushes and detaches. */
export interface Recording {
  readonly journal: SessionJournal;
  stop(): Promise<void>;
}

/** Builds the record of a completed call (null when the call is not journaled or failed). */
export function recordOf(f: FunctionSpec, fnIndex: number, event: CallEvent, success: number): JournalRecord | null {
  if (!JOURNALED.has(f.record)) return null;
  let ret: WireValue;
  let outs: Record<string, WireValue> | null = null;
  if (event.async) {
    ret = f.returns.role === 'handle' ? event.retId : f.returns.role === 'status' ? success : null;
  } else {
    const reply = event.reply!;
    ret = reply.ret ?? null;
    for (const a of f.args) {
      if ((a.role === 'handlesOut' || a.role === 'handleOut') && reply.outs?.[a.name] !== undefined) {
        outs ??= {};
        outs[a.name] = reply.outs[a.name]!;
      }
    }
  }
  return { seq: event.seq, fn: fnIndex, args: event.args, ret, outs, t: event.stages.beforeSendCommand };
}

/**
 * Starts recording `session` into `journal`. With durability `batch` or `sync`, a waiting call returns only once the
 * records before it are in the store.
 */
export async function record(session: GuestSession, journal: Journal): Promise<Recording> {
  const sj = await journal.session(session.id);
  const spec = journal.spec;
  const index = new Map(spec.functions.map((f, i) => [f.name, i]));
  const pendingAsync = new Map<number, JournalRecord>();
  const subs: Subscription[] = [];
  subs.push(session.interceptor.calls$.subscribe((event) => {
    const f = spec.fn.get(event.fn)!;
    if (!event.async && event.reply) {
      // Failures of earlier asynchronous calls arrive before this reply: those not reported succeeded.
      pendingAsync.clear();
      if (callFailed(spec, event.fn, event.reply)) return;
    }
    const r = recordOf(f, index.get(event.fn)!, event, spec.status.success);
    if (!r) return;
    sj.append(r);
    if (event.async) pendingAsync.set(r.seq, r);
  }));
  subs.push(session.interceptor.asyncFailures$.subscribe((reply) => {
    const r = pendingAsync.get(reply.seq);
    if (r) {
      pendingAsync.delete(reply.seq);
      sj.retract(reply.seq, r);
    }
  }));
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
