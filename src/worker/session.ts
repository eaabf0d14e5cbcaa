/**
 * One guest session inside a worker: its own handle table (sessions never see each other's handles), its calls
 * executed one at a time in arrival order, its callbacks turned into event frames, and explicit state.
 */
import koffi from 'koffi';
import { crc32 } from 'node:zlib';
import { ApiStatusError, AvaError, ClosedError, toWireError, UnsupportedError } from '../errors.js';
import type { ApiSpec, ExplicitState, FunctionSpec, StateContext } from '../spec/types.js';
import type { CallFrame, EventFrame, ReplyFrame, WireValue } from '../wire/frames.js';
import type { CallbackSink, DeferredDelivery, ExecutionContext } from './executor.js';
import { wallClock } from '../wire/clock.js';
import { burstable, executeBurst, executeCall } from './executor.js';
import { HandleTable } from './handle-table.js';
import type { NativeLibrary } from './native-library.js';
import { callbackType } from './native-library.js';


/** A session of a worker. Create through `Worker.openSession`. */
export class WorkerSession implements AsyncDisposable {
  /** The session's id, unique within its worker. */
  readonly id: string;
  readonly spec: ApiSpec;
  /** Ids -> native pointers of this session. */
  readonly handles: HandleTable;
  readonly #ctx: ExecutionContext;
  readonly #library: NativeLibrary;
  readonly #listeners = new Set<(event: EventFrame) => void>();
  #tail: Promise<unknown> = Promise.resolve();
  /** Record AvA's worker-side stage timestamps in every reply (remote connections do; the local channel on request). */
  timed = false;
  #pending = 0;
  /** Info answers remembered by restored state, by handle id (see `StateContext.remember`). */
  readonly #remembered = new Map<number, Map<string, Uint8Array>>();
  /** Blocking waits running beside the call order (see execute). */
  readonly #beside = new Set<Promise<ReplyFrame>>();
  #closed = false;
  readonly #onClose: () => void;
  /** Reads enqueued without blocking whose bytes are not sent yet, in the order they were made (see `FunctionSpec.deferred`). */
  readonly #deliveries = new Set<DeferredDelivery>();
  #deliveryPoll: NodeJS.Timeout | undefined;
  readonly #onDeferred = (d: DeferredDelivery): void => {
    // The application may release its event at once: the worker holds it until the bytes are sent.
    if (!d.ownEvent) {
      try {
        d.completion.retain(this.#stateContext(), d.event);
      } catch {
        return; // an event the library will not keep: nothing to follow (the call itself succeeded and is answered)
      }
    }
    this.#deliveries.add(d);
    this.#pollDeliveries();
  };

  /** @internal */
  constructor(id: string, spec: ApiSpec, library: NativeLibrary, onClose: () => void) {
    this.id = id;
    this.spec = spec;
    this.#library = library;
    // Interned objects are stable for the process's life: each kind is listed once, when first needed.
    const lists = new Map<string, readonly number[]>();
    this.handles = new HandleTable(spec.kind, (kind) => {
      const enumerate = spec.kind.get(kind)?.enumerate;
      if (!enumerate) return undefined;
      let list = lists.get(kind);
      if (!list) lists.set(kind, list = enumerate(this.#stateContext()));
      return list;
    });
    this.#onClose = onClose;
    const callbacks: CallbackSink = { register: (callbackId, proto) => this.#registerCallback(callbackId, proto) };
    this.#ctx = { spec, library, handles: this.handles, callbacks, remembered: this.#remembered };
  }

  /**
   * Executes a call and answers with a reply; errors (bad handles, malformed frames, unsupported functions) come back
   * in `reply.error`, never as a rejection. Calls run one at a time in the order they arrive.
   */
  execute(frame: CallFrame): Promise<ReplyFrame> {
    const reply = this.#execute(frame);
    // Bytes of a deferred read that has completed go out before any later reply: a wait, a status query or a blocking
    // call that saw the read complete is answered after its bytes, so the caller has them in place first.
    return this.#deliveries.size === 0 ? reply : reply.then((r) => { this.#deliver(); return r; });
  }

  /**
   * Executes posted calls in order, as {@link execute} would one by one, and hands their replies to `onReply` (a
   * caller sends only failures; the successes of calls that give back only their status may not come at all), in
   * call order. Consecutive calls that may run in a burst (`burstable`) run as one: prepared together, then called
   * back to back (see `executeBurst` for why). A call that waits on a promise (one run off the event loop) queues
   * the rest behind it.
   */
  post(frames: readonly CallFrame[], onReply: (frame: CallFrame, reply: ReplyFrame) => void): void {
    // As after every reply: the bytes of deferred reads that completed go out first.
    const answer = (frame: CallFrame, reply: ReplyFrame): void => {
      if (this.#deliveries.size > 0) this.#deliver();
      onReply(frame, reply);
    };
    let i = 0;
    while (i < frames.length && this.#pending === 0 && !this.#closed) {
      if (!burstable(this.#ctx, frames[i]!)) {
        // Answered in order with the bursts around it (a failure reported first is the first that happened).
        const frame = frames[i++]!;
        const reply = this.#run(frame);
        if (reply instanceof Promise) void this.#track(reply).then((r) => answer(frame, r)); // the rest queue behind it
        else answer(frame, reply);
        continue;
      }
      const replies = executeBurst(this.#ctx, frames, i);
      // As after every reply: the bytes of deferred reads that completed go out first.
      this.#deliver();
      for (let k = 0; k < replies.length; k++) if (replies[k]) onReply(frames[i + k]!, replies[k]!);
      i += replies.length;
    }
    for (; i < frames.length; i++) {
      const frame = frames[i]!;
      void this.execute(frame).then((reply) => onReply(frame, reply));
    }
  }

  #execute(frame: CallFrame): Promise<ReplyFrame> {
    if (this.#closed) return Promise.resolve({ seq: frame.seq, error: toWireError(new ClosedError(`session ${this.id}`)) });
    const f = typeof frame?.fn === 'string' ? this.spec.fn.get(frame.fn) : undefined;
    if (f?.record === 'sync' && f.blocking && !frame.async) {
      // A blocking wait (finish, wait for events) starts after the calls before it but does not hold back the calls
      // behind it: those come from other application threads (this one is waiting), and one of them may be what
      // ends the wait (completing a user event), as natively. A wait changes no state, so order stays what it was.
      const wait = this.#tail.then(() => this.#run(frame));
      this.#beside.add(wait);
      void wait.finally(() => this.#beside.delete(wait));
      return wait;
    }
    if (this.#pending === 0) {
      // Fast path: nothing queued, so run now instead of hopping through the promise chain.
      const reply = this.#run(frame);
      if (!(reply instanceof Promise)) return Promise.resolve(reply);
      return this.#track(reply);
    }
    return this.#track(this.#tail.then(() => this.#run(frame)));
  }

  #track(p: Promise<ReplyFrame>): Promise<ReplyFrame> {
    this.#pending++;
    const done = p.finally(() => { this.#pending--; });
    this.#tail = done.catch(() => undefined);
    return done;
  }

  #run(frame: CallFrame): ReplyFrame | Promise<ReplyFrame> {
    const seq = typeof frame?.seq === 'number' ? frame.seq : -1;
    try {
      const reply = executeCall(this.#ctx, frame, this.timed && !frame.async ? wallClock() : undefined, this.#onDeferred);
      return reply instanceof Promise ? reply.catch((error: unknown) => ({ seq, error: toWireError(error) })) : reply;
    } catch (error) {
      return { seq, error: toWireError(error) };
    }
  }

  /**
   * Sends the bytes of every deferred read that has completed (or failed: then `null` and the status), as events with
   * the caller's callback id, and releases their events (and the bytes of completed deferred writes).
   */
  #deliver(): void {
    if (this.#deliveries.size === 0) return;
    const ctx = this.#stateContext();
    for (const d of this.#deliveries) {
      let done: boolean | number;
      try {
        done = d.completion.completed(ctx, d.event);
      } catch (error) {
        done = error instanceof ApiStatusError ? error.status : -1;
      }
      if (done === false) continue;
      this.#deliveries.delete(d);
      try { d.completion.release(ctx, d.event); } catch { /* the event's last holder is gone either way */ }
      if (d.deliver === undefined) continue;
      const event: EventFrame = { callback: d.deliver, args: done === true ? [typeof d.bytes === 'function' ? d.bytes() : d.bytes] : [null, done] };
      for (const listener of this.#listeners) listener(event);
    }
  }

  /** Looks at deferred reads every millisecond while there are any, so their bytes go out without a later call. */
  #pollDeliveries(): void {
    if (this.#deliveryPoll || this.#closed) return;
    this.#deliveryPoll = setTimeout(() => {
      this.#deliveryPoll = undefined;
      this.#deliver();
      if (this.#deliveries.size > 0) this.#pollDeliveries();
    }, 1);
  }

  /** Resolves once every call received so far has run (and its failure, if any, was reported) and deferred reads are sent. */
  async drained(): Promise<void> {
    await this.#serialized(() => undefined);
    await Promise.all(this.#beside);
    while (this.#deliveries.size > 0 && !this.#closed) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      this.#deliver();
    }
  }

  /** Subscribes to the session's callback events; returns the unsubscribe function. */
  onEvent(listener: (event: EventFrame) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #registerCallback(callbackId: number, proto: string): unknown {
    let registered: unknown = null;
    const deliver = (...args: unknown[]): void => {
      // A read this callback's event waited for has its bytes in place before the callback runs.
      this.#deliver();
      // The last parameter is the C user_data: the guest keeps its own, so it is not sent.
      const values: WireValue[] = args.slice(0, -1).map((v) => this.#callbackValue(v));
      const event: EventFrame = { callback: callbackId, args: values };
      for (const listener of this.#listeners) listener(event);
      // A callback of these APIs fires once per registration; free its trampoline after it returns.
      setImmediate(() => koffi.unregister(registered as never));
    };
    registered = koffi.register(deliver, callbackType(proto) as never);
    return registered;
  }

  #callbackValue(v: unknown): WireValue {
    if (typeof v === 'bigint') {
      const found = this.handles.findLive(Number(v));
      return found ? { handle: found.id, kind: found.kind } : null;
    }
    return typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? v : null;
  }

  #stateContext(id?: number): StateContext {
    return {
      callNative: (fn, ...args) => this.#library.get(fn)(...args),
      callNativeOffThread: (fn, ...args) => new Promise((resolve, reject) => {
        this.#library.get(fn).async(...args, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result)));
      }),
      liveHandles: (kind) => this.handles.livePointers(kind),
      status: this.spec.status,
      ...(id === undefined ? {} : {
        remember: (fn: string, param: number, value: Uint8Array) => {
          let answers = this.#remembered.get(id);
          if (!answers) this.#remembered.set(id, answers = new Map());
          answers.set(`${fn}:${param}`, Uint8Array.from(value));
        },
        remembered: (fn: string, param: number) => this.#remembered.get(id)?.get(`${fn}:${param}`),
      }),
    };
  }

  /**
   * Reads the explicit state (e.g. a buffer's bytes) of handle `id`, after every call received before. `held`: the
   * application released it but a live object still holds it (a kernel's argument), as the journal's graph says.
   * `into`: a buffer a ranged read may fill (and return part of) instead of allocating.
   * @throws {UnsupportedError} when its kind declares no explicit state; a coded HandleError for a bad id.
   */
  extractState(id: number, held = false, range?: { readonly offset: number; readonly length: number }, into?: Uint8Array): Promise<Uint8Array> {
    return this.#serialized(() => {
      const { state, ptr } = this.#stateOf(id, 'extractState', held);
      if (!range) return state.extract(this.#stateContext(id), ptr);
      if (state.extractRange) return state.extractRange(this.#stateContext(id), ptr, range.offset, range.length, into);
      // A kind without ranges hands over its whole state as the first chunk.
      return range.offset === 0 ? state.extract(this.#stateContext(id), ptr) : new Uint8Array();
    });
  }

  /**
   * Writes explicit state read by {@link extractState} into handle `id` of the same shape, after every call received
   * before. With `crc`, reads the object back and compares (restores that silently wrote wrong bytes are a known
   * failure of peers); `readBack` is a buffer that read may use.
   * @throws {AvaError} `ERR_AVA_STATE_CHECKSUM` when the object does not hold the bytes afterwards.
   */
  restoreState(id: number, bytes: Uint8Array, crc?: number, held = false, offset?: number, readBack?: Uint8Array): Promise<void> {
    return this.#serialized(async () => {
      const { state, ptr, kind } = this.#stateOf(id, 'restoreState', held);
      const ranged = offset !== undefined && state.restoreRange !== undefined && state.extractRange !== undefined;
      // A kind without ranges takes its whole state at offset 0 only: bytes meant for another place must not land there.
      if (!ranged && offset !== undefined && offset !== 0) {
        throw new AvaError('ERR_AVA_STATE_RANGE', `${kind} ${id}: its kind restores whole state only, not ${bytes.byteLength} bytes at ${offset}`, { details: { id } });
      }
      if (ranged) await state.restoreRange!(this.#stateContext(id), ptr, offset, bytes);
      else await state.restore(this.#stateContext(id), ptr, bytes);
      if (crc === undefined) return;
      const back = ranged ? await state.extractRange!(this.#stateContext(id), ptr, offset, bytes.byteLength, readBack) : await state.extract(this.#stateContext(id), ptr);
      if ((crc32(back) >>> 0) !== crc) throw new AvaError('ERR_AVA_STATE_CHECKSUM', `${kind} ${id}: the restored bytes differ from the extracted ones`, { details: { id } });
    });
  }

  /**
   * Binds `id` to a new completed object of a transient kind (an event), made by the kind's `recreate` hook from the
   * objects the original's creating call named: what replay does instead of running that call again.
   */
  recreateTransient(id: number, kind: string, related: readonly number[]): Promise<void> {
    return this.#serialized(async () => {
      const recreate = this.spec.kind.get(kind)?.recreate;
      if (!recreate) throw new UnsupportedError('recreateTransient', `handle kind ${kind} cannot be recreated`);
      this.handles.checkNewId(id, kind);
      const ptrs = related.flatMap((r) => {
        const k = this.handles.kindOf(r);
        try {
          return k === undefined ? [] : [this.handles.resolveHeld(r, k, 'recreateTransient')];
        } catch {
          return [];
        }
      });
      this.handles.bind(id, kind, await recreate(this.#stateContext(id), ptrs), true);
    });
  }

  /** The explicit state hooks and native pointer of `id`; an id never bound is `ERR_AVA_UNKNOWN_HANDLE`, as for calls. */
  #stateOf(id: number, where: string, held: boolean): { state: ExplicitState; ptr: number; kind: string } {
    const kind = this.handles.kindOf(id);
    if (kind === undefined) this.handles.resolve(id, '', where); // throws the coded HandleError
    const state = this.spec.kind.get(kind!)?.state;
    if (!state) throw new UnsupportedError(where, `handle ${id} (${kind}) has no explicit state`);
    // `held`: the caller knows (from the journal's graph) that a live object still holds this released one.
    return { state, ptr: held ? this.handles.resolveHeld(id, kind!, where) : this.handles.resolve(id, kind!, where), kind: kind! };
  }

  /** Runs state work in the session's call order, so it sees every call sent before it. */
  #serialized<T>(work: () => T | Promise<T>): Promise<T> {
    // Counted as pending so that a call sent after it never takes execute()'s fast path ahead of it.
    this.#pending++;
    const p = this.#tail.then(work).finally(() => { this.#pending--; });
    this.#tail = p.catch(() => undefined);
    return p;
  }

  /**
   * Ends the session: waits for queued calls, then releases what the guest left alive (children before parents,
   * each as often as it was retained), so a guest that never cleans up does not leak device objects.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    // A wait still running (on an event nobody will complete now) is given a while, not forever.
    if (this.#beside.size > 0) await Promise.race([Promise.all(this.#beside), new Promise((r) => setTimeout(r, 10_000).unref())]);
    clearTimeout(this.#deliveryPoll);
    for (const d of this.#deliveries) {
      try { d.completion.release(this.#stateContext(), d.event); } catch { /* closing anyway */ }
    }
    this.#deliveries.clear();
    const live = [...this.handles.live()].reverse();
    // The release function of each kind, found once.
    const releases = new Map<string, FunctionSpec>();
    for (const f of this.spec.functions) {
      if (f.record !== 'release' || f.unsupported !== undefined) continue;
      const target = f.args.find((a) => a.name === f.target);
      if (target?.role === 'handle' && !releases.has(target.kind)) releases.set(target.kind, f);
    }
    for (const h of live) {
      const release = releases.get(h.kind);
      let refs = this.handles.refs(h.id);
      if (!release || refs === null || refs === undefined) continue;
      for (; refs > 0; refs--) {
        try { this.#library.get(release.name)(h.ptr); } catch { break; }
      }
    }
    this.#listeners.clear();
    this.#onClose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
