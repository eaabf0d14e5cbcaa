/**
 * The guest session: numbers calls, issues handle and callback ids, and carries call frames over its channel.
 *
 * It deals only in frames, never in JavaScript closures or proxy objects (it must not import the proxy), so that a
 * second front, the C guestlib of a later release, can feed the very same session code.
 */
import { randomUUID } from 'node:crypto';
import { AvaError, ClosedError, toWireError } from '../errors.js';
import { Interceptor } from '../intercept/interceptor.js';
import type { CallEvent } from '../intercept/interceptor.js';
import { planOf } from '../spec/plan.js';
import type { ApiSpec, RecordClass } from '../spec/types.js';
import { wallClock } from '../wire/clock.js';
import type { Channel } from '../transport/channel.js';
import type { CallFrame, EventFrame, ReplyFrame, WireValue } from '../wire/frames.js';

/** Options of {@link GuestSession}. */
export interface GuestSessionOptions {
  readonly spec: ApiSpec;
  readonly channel: Channel;
  /** Session id (defaults to a random UUID). */
  readonly id?: string;
  /** Most asynchronous calls gathered into one batch frame. @defaultValue 512 */
  readonly maxBatch?: number;
}

/**
 * An asynchronous call failed (`ERR_AVA_ASYNC_CALL_FAILED`); reported at the next call that waits for a result.
 * `details` name the call (`fn`, `seq`) and carry its status or the worker's error.
 */
export class AsyncCallError extends AvaError {
  /**
   * @param spec When given, `details.status` carries the failed call's own API status (its return value or
   * `errcode_ret`, or the status of a bad handle), so that a front reports the status the native call would have.
   */
  constructor(reply: ReplyFrame, spec?: ApiSpec) {
    const what = reply.error ? `${reply.error.code}: ${reply.error.message}` : `status ${String(reply.ret ?? JSON.stringify(reply.outs))}`;
    const status = spec ? apiStatusOf(spec, reply) : undefined;
    super('ERR_AVA_ASYNC_CALL_FAILED', `asynchronous call #${reply.seq} ${reply.fn ?? ''} failed: ${what}`, {
      details: {
        seq: reply.seq, fn: reply.fn ?? null, ret: (reply.ret ?? null) as never, outs: (reply.outs ?? null) as never, error: (reply.error ?? null) as never,
        ...(status === undefined ? {} : { status }),
      },
    });
  }
}

/** The API status a failed reply stands for: the status returned or stored in `errcode_ret`, or a bad handle's. */
function apiStatusOf(spec: ApiSpec, reply: ReplyFrame): number | undefined {
  const fromError = (reply.error?.details as { status?: unknown } | undefined)?.status;
  if (typeof fromError === 'number') return fromError;
  const f = reply.fn === undefined ? undefined : spec.fn.get(reply.fn);
  if (!f) return undefined;
  if (f.returns.role === 'status' && typeof reply.ret === 'number' && reply.ret !== spec.status.success) return reply.ret;
  const errcode = f.args.find((a) => a.role === 'errcode');
  const stored = errcode ? reply.outs?.[errcode.name] : undefined;
  return typeof stored === 'number' && stored !== spec.status.success ? stored : undefined;
}

/** See the module comment. */
export class GuestSession implements AsyncDisposable {
  readonly id: string;
  readonly spec: ApiSpec;
  #channel: Channel;
  #unlisten: (() => void)[] = [];
  readonly #eventListeners = new Set<(event: EventFrame) => void>();
  /** Work to run before the call with a given seq is sent (a migration); calls after it wait for it. */
  readonly #tasks = new Map<number, ((seq: number) => Promise<void>)[]>();
  /** While a task runs, frames wait for it. */
  #gate: Promise<void> | null = null;
  /** Every call of this session passes through it; subscribe to `interceptor.calls$`. */
  readonly interceptor = new Interceptor();
  #seq = 0;
  #nextHandleId = 1;
  #nextCallbackId = 1;
  #closed = false;
  readonly #maxBatch: number;
  #batch: CallFrame[] = [];
  #flushScheduled = false;
  #asyncFailure: ReplyFrame | undefined;

  constructor(options: GuestSessionOptions) {
    this.spec = options.spec;
    this.#channel = options.channel;
    this.id = options.id ?? randomUUID();
    this.#maxBatch = options.maxBatch ?? 512;
    this.#attach(options.channel);
  }

  /** The channel to the worker that serves the session now. */
  get channel(): Channel {
    return this.#channel;
  }

  #attach(channel: Channel): void {
    this.#unlisten = [
      channel.onAsyncFailure((reply) => {
        this.#asyncFailure ??= reply;
        this.interceptor.emitFailure(reply);
      }),
      channel.onEvent((event) => { for (const l of this.#eventListeners) l(event); }),
    ];
  }

  /**
   * Moves the session to another channel, whose worker session already holds the same objects under the same ids
   * (a replayed journal). Later calls go there; callbacks and failure reports come from there. Returns the old
   * channel, which the caller closes.
   */
  switchChannel(channel: Channel): Channel {
    const old = this.#channel;
    for (const off of this.#unlisten) off();
    this.#channel = channel;
    this.#attach(channel);
    return old;
  }

  /**
   * Runs `task` before the call with sequence number `seq` is sent; that call and every later one wait for it (an
   * asynchronous call returns at once, but its frame waits). The task gets the sequence number it runs before: a
   * later one than `seq` while work waited on the application (see {@link waitingOnApplication}). A failing task is
   * reported through `onTaskError` and the session goes on where it is.
   */
  schedule(seq: number, task: (seq: number) => Promise<void>): void {
    if (seq < this.#seq) throw new AvaError('ERR_AVA_CONFIG', `call ${seq} has already been made (the session is at call ${this.#seq})`);
    // Several tasks at one call run in the order they were scheduled.
    this.#tasks.set(seq, [...(this.#tasks.get(seq) ?? []), task]);
  }

  /**
   * Runs `task` now with the session paused: calls made meanwhile wait (asynchronous ones return, their frames wait),
   * and everything queued before is sent first. Resolves with the task's result.
   */
  runExclusive<T>(task: () => Promise<T>): Promise<T> {
    this.flush();
    const result = (this.#gate ?? Promise.resolve()).then(task);
    const gate: Promise<void> = result.then(() => undefined, () => undefined).then(() => {
      if (this.#gate === gate) this.#gate = null;
      this.flush();
    });
    this.#gate = gate;
    return result;
  }

  readonly #besideWork = new Set<Promise<unknown>>();
  #closing = false;

  /**
   * Work that runs beside the application (a pre-copy migration's live phase): {@link close} waits for it, so that a
   * program that ends meanwhile does not lose it.
   */
  runBeside(work: Promise<unknown>): void {
    this.#besideWork.add(work);
    void work.finally(() => this.#besideWork.delete(work));
  }

  /** Set once {@link close} has begun: no call will follow. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Called when a scheduled task fails (default: a line on stderr). */
  onTaskError: (error: unknown) => void = (error) => {
    process.stderr.write(`ava-migrate: ${AvaError.isAvaError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`);
  };

  /** Starts the task scheduled for `seq`, if any, after sending what is queued before it. */
  #startTask(seq: number): void {
    const tasks = this.#tasks.get(seq);
    if (!tasks) return;
    this.#tasks.delete(seq);
    if (this.waitingOnApplication) {
      // Another application thread is blocked in a wait (finish, wait for events) that a call of this one may be
      // what ends, or queued work waits for an object only the application completes (a user event): pausing the
      // session now could never finish. The task moves to the next call instead.
      this.#tasks.set(seq + 1, [...tasks, ...(this.#tasks.get(seq + 1) ?? [])]);
      return;
    }
    this.flush();
    const run = tasks.reduce<Promise<void>>((prev, task) => prev.then(() => task(seq)).catch((error: unknown) => this.onTaskError(error)), this.#gate ?? Promise.resolve());
    const gate: Promise<void> = run.then(() => {
      if (this.#gate === gate) this.#gate = null;
      this.flush();
    });
    this.#gate = gate;
  }

  /** A fresh handle id; ids are never reused within a session. */
  newHandleId(): number {
    return this.#nextHandleId++;
  }

  /** A fresh callback id. */
  newCallbackId(): number {
    return this.#nextCallbackId++;
  }

  /**
   * True while a task (a migration, a checkpoint) holds the session: calls made now go to the worker only after it,
   * and the task may be reading the journal up to the first of them.
   */
  get paused(): boolean {
    return this.#gate !== null;
  }

  /**
   * The sequence number of the first call not yet sent to the worker (queued asynchronous calls, or calls waiting
   * behind a task): inside a task, every call below it has been sent, none from it on.
   */
  get firstUnsent(): number {
    let first = this.#seq;
    if (this.#batch.length > 0) first = Math.min(first, this.#batch[0]!.seq);
    for (const seq of this.#atGate) first = Math.min(first, seq);
    return first;
  }

  readonly #atGate = new Set<number>();

  /** Calls made so far (the next call's sequence number). */
  get callCount(): number {
    return this.#seq;
  }

  /**
   * Sends one call and resolves with its reply, after every asynchronous call posted before it. If one of those
   * failed, rejects with {@link AsyncCallError} naming it. `deliver`: see `CallFrame.deliver` (the bytes come as an
   * event of this session).
   */
  async call(fn: string, args: readonly WireValue[], retId: number | null = null, beforeMarshal?: number, deliver?: number): Promise<ReplyFrame> {
    if (this.#closed) throw new ClosedError(`session ${this.id}`);
    this.flush();
    const frame: CallFrame = { seq: this.#seq++, fn, args, retId, ...(deliver === undefined ? {} : { deliver }) };
    let emitted = false;
    try {
      if (this.#tasks.size > 0) this.#startTask(frame.seq);
      if (this.#gate) {
        this.#atGate.add(frame.seq);
        while (this.#gate) await this.#gate;
        this.#atGate.delete(frame.seq);
      }
      if (this.#lost && this.onChannelLost) await this.#recover(frame.seq);
      const beforeSendCommand = wallClock();
      const reply = await this.#send(frame);
      this.#trackPending(fn, args, reply);
      emitted = true;
      this.#emitInOrder(frame.seq, this.interceptor.observed ? {
        session: this.id, seq: frame.seq, fn, record: this.#record(fn), args, async: false, retId, reply,
        stages: { beforeMarshal: beforeMarshal ?? beforeSendCommand, beforeSendCommand, ...reply.timings, afterReceiveResult: wallClock() },
      } : null);
      await this.#barriers();
      this.#throwAsyncFailure();
      return reply;
    } finally {
      // A call that never got its reply still takes its place in the order, so later events are not held back.
      if (!emitted) this.#emitInOrder(frame.seq, null);
    }
  }

  /** The sequence number of the next call event to emit: events go out in call order (see {@link #emitInOrder}). */
  #nextEmit = 0;
  /** Events of calls that finished before an earlier call did (null: nothing to emit), by sequence number. */
  readonly #early = new Map<number, CallEvent | null>();

  /**
   * Emits a call's event once every earlier call's has been: with several application threads (a native program
   * through ava-guestd) a later call may finish first, and the journal keeps calls in order.
   */
  #emitInOrder(seq: number, event: CallEvent | null): void {
    if (seq !== this.#nextEmit) {
      this.#early.set(seq, event);
      return;
    }
    if (event) this.interceptor.emit(event);
    this.#nextEmit++;
    while (this.#early.has(this.#nextEmit)) {
      const next = this.#early.get(this.#nextEmit)!;
      this.#early.delete(this.#nextEmit);
      if (next) this.interceptor.emit(next);
      this.#nextEmit++;
    }
  }

  /**
   * Rebuilds the session on a new worker when its worker is lost (failover): given the seq of the first call that
   * was not answered, resolves once the session runs on a new channel. Unset: a lost worker is an error.
   */
  onChannelLost: ((beforeSeq: number) => Promise<void>) | undefined;
  #lost = false;
  #recovering: Promise<void> | undefined;

  /** Blocking waits sent and not answered yet (several application threads share a session through a front). */
  #waitsInFlight = 0;

  /**
   * True while pausing the session could never finish: a blocking wait is in flight (another application thread
   * may be what ends it), or queued work waits on an object only the application completes (a user event).
   */
  get waitingOnApplication(): boolean {
    return this.#waitsInFlight > 0 || this.#pending.size > 0;
  }
  /** Objects made by a `pending: 'opens'` call and not yet completed by a `pending: 'closes'` one. */
  readonly #pending = new Set<number>();

  /** Tracks objects that may hold queued work back (see `FunctionSpec.pending`). */
  #trackPending(fn: string, args: readonly WireValue[], reply?: ReplyFrame, postedId?: number | null): void {
    const f = this.spec.fn.get(fn);
    if (!f?.pending) return;
    if (f.pending === 'opens') {
      // Answered: the id it returned; posted: the id the guest issued (a failure surfaces later).
      const id = reply ? (reply.error ? undefined : reply.ret) : postedId;
      if (typeof id === 'number') this.#pending.add(id);
      return;
    }
    const target = args[planOf(f).indexOf.get(f.target ?? '') ?? -1];
    if (typeof target === 'number') this.#pending.delete(target);
  }

  async #send(frame: CallFrame): Promise<ReplyFrame> {
    const f = this.spec.fn.get(frame.fn);
    if (f?.record !== 'sync' || !f.blocking) return this.#sendNow(frame);
    this.#waitsInFlight++;
    try {
      return await this.#sendNow(frame);
    } finally {
      this.#waitsInFlight--;
    }
  }

  async #sendNow(frame: CallFrame): Promise<ReplyFrame> {
    try {
      return await this.channel.call(frame);
    } catch (error) {
      if (!this.onChannelLost || (error as { code?: string }).code !== 'ERR_AVA_CHANNEL_CLOSED' || this.#closed) throw error;
      this.#lost = true;
      await this.#recover(frame.seq);
      return this.channel.call(frame);
    }
  }

  /** Runs the failover once for every caller that noticed the loss. */
  async #recover(beforeSeq: number): Promise<void> {
    this.#recovering ??= this.runExclusive(async () => {
      await this.onChannelLost!(beforeSeq);
      this.#lost = false;
    }).finally(() => { this.#recovering = undefined; });
    await this.#recovering;
  }

  readonly #barrierFns: (() => Promise<void>)[] = [];

  /**
   * Adds work that must finish before a waiting call returns to the application (the journal's `batch` durability:
   * records written before the application sees a result). Returns the function that removes it.
   */
  addBarrier(barrier: () => Promise<void>): () => void {
    this.#barrierFns.push(barrier);
    return () => {
      const i = this.#barrierFns.indexOf(barrier);
      if (i >= 0) this.#barrierFns.splice(i, 1);
    };
  }

  async #barriers(): Promise<void> {
    for (const b of this.#barrierFns) await b();
  }

  #record(fn: string): RecordClass {
    return this.spec.fn.get(fn)?.record ?? 'query';
  }

  /**
   * Queues a call whose result the application does not wait for; queued calls go out in one batch frame at the next
   * waiting call, when the batch is full, or once the current turn of the event loop ends.
   * @throws {AsyncCallError} when an earlier asynchronous call has been reported failed.
   */
  post(fn: string, args: readonly WireValue[], retId: number | null = null, beforeMarshal?: number): void {
    if (this.#closed) throw new ClosedError(`session ${this.id}`);
    this.#throwAsyncFailure();
    const frame: CallFrame = { seq: this.#seq++, fn, args, retId, async: true };
    this.#trackPending(fn, args, undefined, retId);
    if (this.#tasks.size > 0) this.#startTask(frame.seq);
    const bytes = payloadBytes(frame);
    // A frame must stay well under the wire's size limit: big writes go out in batches of their own.
    if (this.#batchBytes + bytes > GuestSession.MAX_BATCH_BYTES && this.#batch.length > 0) this.flush();
    this.#batchBytes += bytes;
    this.#batch.push(frame);
    const now = this.interceptor.observed ? wallClock() : 0;
    this.#emitInOrder(frame.seq, this.interceptor.observed
      ? { session: this.id, seq: frame.seq, fn, record: this.#record(fn), args, async: true, retId, stages: { beforeMarshal: beforeMarshal ?? now, beforeSendCommand: now } }
      : null);
    if (this.#batch.length >= this.#maxBatch) this.flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Bytes of payload above which queued asynchronous calls are sent before the next one joins them. */
  static readonly MAX_BATCH_BYTES = 64 * 1024 * 1024;
  #batchBytes = 0;

  /** Sends the queued asynchronous calls now (or, while a scheduled task runs, as soon as it ends). */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#batch.length === 0 || this.#closed || this.#gate) return;
    const queued = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    // Calls queued while a migration held them back can add up past one frame: they go out in batches of at most
    // MAX_BATCH_BYTES of payload (a larger call alone), in order.
    for (const batch of batchesOf(queued, GuestSession.MAX_BATCH_BYTES)) {
      try {
        this.channel.post(batch);
      } catch (error) {
        const failure = { seq: batch[0]!.seq, fn: batch[0]!.fn, error: toWireError(error) };
        if ((error as { code?: string }).code === 'ERR_AVA_FRAME_TOO_LARGE') {
          // Nothing was sent and the worker is fine: the batch's calls fail, reported at the next waiting call.
          this.#asyncFailure ??= failure;
          this.interceptor.emitFailure(failure);
          continue;
        }
        // The worker is gone. With failover the next call rebuilds the session (journaled calls of this batch
        // included); without it, that call reports the loss.
        if (!this.onChannelLost) this.#asyncFailure ??= failure;
        this.#lost = true;
        return;
      }
    }
  }

  #throwAsyncFailure(): void {
    const failure = this.#asyncFailure;
    if (!failure) return;
    this.#asyncFailure = undefined;
    throw new AsyncCallError(failure, this.spec);
  }

  /** Reads the explicit state of handle `id` on the worker (after every call sent before). */
  async extractState(id: number, held?: boolean): Promise<Uint8Array> {
    if (this.#closed) throw new ClosedError(`session ${this.id}`);
    while (this.#gate) await this.#gate;
    this.flush();
    return this.channel.extractState(id, held);
  }

  /**
   * Writes `bytes` at `offset` of handle `id`'s explicit state on the worker (after every call sent before): how the
   * application's writes into host memory it lent an object (a mirror) reach the device.
   */
  async restoreState(id: number, bytes: Uint8Array, offset: number): Promise<void> {
    // Inline, as in extractState: with no migration in progress the request goes out in the caller's turn, so a
    // call made right after it is sent after it.
    if (this.#closed) throw new ClosedError(`session ${this.id}`);
    while (this.#gate) await this.#gate;
    this.flush();
    return this.channel.restoreState(id, bytes, undefined, false, offset);
  }

  /** Subscribes to callback events of this session (whichever worker serves it). */
  onEvent(listener: (event: EventFrame) => void): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Ends the session and its channel. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    // Work beside the application (a pre-copy migration's live phase) ends before the session does, so that the
    // migration completes and is reported: a task it left for the next call runs now, as no call follows.
    while (this.#besideWork.size > 0) {
      const tasks = this.#tasks.get(this.#seq);
      this.#tasks.delete(this.#seq);
      if (tasks) await this.runExclusive(async () => { for (const task of tasks) await task(this.#seq).catch((error: unknown) => this.onTaskError(error)); });
      await Promise.allSettled([...this.#besideWork]);
    }
    while (this.#gate) await this.#gate;
    this.flush();
    this.#closed = true;
    await this.channel.close();
    this.interceptor.complete();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Bytes of the byte-string arguments of a call: what makes its frame large. */
function payloadBytes(frame: CallFrame): number {
  let bytes = 0;
  for (const a of frame.args) if (a instanceof Uint8Array) bytes += a.byteLength;
  return bytes;
}

/** `calls` in order, cut into runs of at most `maxBytes` of payload (a larger call in a run of its own). */
export function batchesOf(calls: readonly CallFrame[], maxBytes: number): CallFrame[][] {
  const batches: CallFrame[][] = [];
  let current: CallFrame[] = [];
  let bytes = 0;
  for (const call of calls) {
    const n = payloadBytes(call);
    if (current.length > 0 && bytes + n > maxBytes) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(call);
    bytes += n;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
