/**
 * A session's calls as a Chrome trace (the JSON object format that chrome://tracing and ui.perfetto.dev open):
 * one complete event (`ph: 'X'`) per call on the guest's track, spanning before_marshal to after_receive_result
 * (to before_send_command for an asynchronous call), with every stage in `args` in µs from the call's start; where
 * the worker reported its stages, a second track shows the worker's part and, inside it, the execution.
 * `pid` is the session number, `ts`/`dur` are µs from the first call of the trace.
 */
import type { ApiSpec } from '../../spec/types.js';
import type { CallTimings, Stage } from '../../../journal/format.js';
import { STAGES } from '../../../journal/format.js';

/** One trace event (the fields Chrome's trace format names). */
export interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 'M';
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly cat?: string;
  readonly args?: Record<string, unknown>;
}

/** AvA's name of a stage (`before_marshal`). */
export function stageName(stage: Stage): string {
  return stage.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

const GUEST_TID = 1;
const WORKER_TID = 2;
const us = (ms: number): number => Math.round(ms * 1000 * 1000) / 1000;

/** Builds trace events from sessions' timings; `origin` (ms since the epoch) is the trace's zero. */
export class TraceBuilder {
  readonly events: TraceEvent[] = [];
  readonly #spec: ApiSpec;
  readonly #origin: number;

  constructor(spec: ApiSpec, origin: number) {
    this.#spec = spec;
    this.#origin = origin;
  }

  /** Names a session's process and tracks. */
  session(n: number, id: string): void {
    this.events.push(
      { name: 'process_name', ph: 'M', pid: n, tid: 0, args: { name: `session ${n} ${id}` } },
      { name: 'thread_name', ph: 'M', pid: n, tid: GUEST_TID, args: { name: 'guest' } },
      { name: 'thread_name', ph: 'M', pid: n, tid: WORKER_TID, args: { name: 'worker' } },
    );
  }

  /** Adds one call. */
  call(n: number, t: CallTimings): void {
    const f = this.#spec.functions[t.fn];
    const name = f?.name ?? `fn#${t.fn}`;
    const s = t.stages;
    const start = s.beforeMarshal ?? s.beforeSendCommand;
    if (start === null) return;
    const end = s.afterReceiveResult ?? s.beforeSendCommand ?? start;
    const stages: Record<string, number | null> = {};
    for (const stage of STAGES) stages[stageName(stage)] = s[stage] === null ? null : us(s[stage]! - start);
    const asynchronous = s.afterReceiveResult === null;
    this.events.push({
      name, ph: 'X', cat: f?.record ?? 'call', pid: n, tid: GUEST_TID, ts: us(start - this.#origin), dur: us(Math.max(0, end - start)),
      args: { seq: t.seq, async: asynchronous, ...stages },
    });
    if (s.afterReceiveCommand !== null && s.afterMarshal !== null) {
      this.events.push({
        name, ph: 'X', cat: 'worker', pid: n, tid: WORKER_TID, ts: us(s.afterReceiveCommand - this.#origin), dur: us(Math.max(0, s.afterMarshal - s.afterReceiveCommand)),
        args: { seq: t.seq },
      });
      if (s.afterUnmarshal !== null && s.afterExecution !== null) {
        this.events.push({
          name: `${name} (execute)`, ph: 'X', cat: 'execute', pid: n, tid: WORKER_TID, ts: us(s.afterUnmarshal - this.#origin),
          dur: us(Math.max(0, s.afterExecution - s.afterUnmarshal)), args: { seq: t.seq },
        });
      }
    }
  }

  /** The trace file's object. */
  toJSON(): { traceEvents: TraceEvent[]; displayTimeUnit: 'ms'; otherData: Record<string, unknown> } {
    return { traceEvents: this.events, displayTimeUnit: 'ms', otherData: { spec: this.#spec.name, origin_ms: this.#origin } };
  }
}
