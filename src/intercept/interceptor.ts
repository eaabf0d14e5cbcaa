/**
 * The interceptor: every call a guest session forwards, on every channel, passes through here and is emitted on
 * `calls$`, an rxjs Observable of {@link CallEvent}s. Tracing, metrics, resource accounting and (issue 5) the journal
 * are subscribers.
 *
 * Subscribers run synchronously, in the call's path, after the call completed (a waiting call: when its reply
 * arrived; an asynchronous one: when it was queued). A subscriber that must do slow work should move it off the
 * call path itself, e.g. `calls$.pipe(observeOn(asyncScheduler))` or buffering operators; nothing is dropped by
 * the interceptor, so a subscriber that cannot keep up holds memory, not calls. When nobody subscribes, no event is
 * built at all.
 */
// Subject alone, from the path rxjs exports for it: `import from 'rxjs'` loads every operator, ~60 ms of every
// process start here (ava-guestd, workers, CLIs), against ~15 ms; the class is the one 'rxjs' re-exports.
import { Subject } from 'rxjs/internal/Subject';
import type { Observable } from 'rxjs';
import type { RecordClass } from '../spec/types.js';
import type { ReplyFrame, WireValue } from '../wire/frames.js';

/**
 * AvA's seven stage timestamps of a call, in ms since the epoch (µs resolution). The worker-side stages are absent
 * for asynchronous calls (no reply) and on channels whose worker does not report them.
 */
export interface StageTimings {
  readonly beforeMarshal: number;
  readonly beforeSendCommand: number;
  readonly afterReceiveCommand?: number;
  readonly afterUnmarshal?: number;
  readonly afterExecution?: number;
  readonly afterMarshal?: number;
  readonly afterReceiveResult?: number;
}

/** One forwarded call. */
export interface CallEvent {
  readonly session: string;
  readonly seq: number;
  readonly fn: string;
  readonly record: RecordClass;
  readonly args: readonly WireValue[];
  /** Sent without waiting. */
  readonly async: boolean;
  /** The id the guest issued for a returned handle, if any. */
  readonly retId: number | null;
  /** The reply (absent for asynchronous calls, which are answered only on failure). */
  readonly reply?: ReplyFrame;
  readonly stages: StageTimings;
}

/** See the module comment. */
export class Interceptor {
  readonly #subject = new Subject<CallEvent>();
  readonly #failures = new Subject<ReplyFrame>();
  /** Every call, as it completes. */
  readonly calls$: Observable<CallEvent> = this.#subject.asObservable();
  /**
   * Failure replies of asynchronous calls (emitted on `calls$` earlier as if they had succeeded), as the worker reports
   * them; `seq` names the call.
   */
  readonly asyncFailures$: Observable<ReplyFrame> = this.#failures.asObservable();

  /** Emits an asynchronous call's failure. */
  emitFailure(reply: ReplyFrame): void {
    this.#failures.next(reply);
  }

  /** True when someone listens (events are only built then). */
  get observed(): boolean {
    return this.#subject.observed;
  }

  /** Emits one event. */
  emit(event: CallEvent): void {
    this.#subject.next(event);
  }

  /** Completes the streams. */
  complete(): void {
    this.#subject.complete();
    this.#failures.complete();
  }
}

/** Formats a call's stages as AvA prints them with `AVA_PRINT_TIMESTAMP=1` (µs relative to before_marshal). */
export function formatStages(event: CallEvent): string {
  const s = event.stages;
  const rel = (t: number | undefined): string => (t === undefined ? '-' : ((t - s.beforeMarshal) * 1000).toFixed(1));
  return `[ava] ${event.session.slice(0, 8)} #${event.seq} ${event.fn}${event.async ? ' (async)' : ''}: before_marshal=0 ` +
    `before_send_command=${rel(s.beforeSendCommand)} after_receive_command=${rel(s.afterReceiveCommand)} ` +
    `after_unmarshal=${rel(s.afterUnmarshal)} after_execution=${rel(s.afterExecution)} after_marshal=${rel(s.afterMarshal)} ` +
    `after_receive_result=${rel(s.afterReceiveResult)} us`;
}
