/**
 * Helpers of the replay tests: an in-memory (or LevelDB) journal around a guest session, a channel the guest keeps
 * while its worker changes underneath (what a migration does), the migration itself (flush, plan, extract, replay
 * onto a fresh worker with the same session id, switch), and snapshots that prove a journal was left untouched.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import type { JournalDb, SessionJournal } from '../../journal/journal.js';
import { Journal } from '../../journal/journal.js';
import type { Recording } from '../../journal/recorder.js';
import { record } from '../../journal/recorder.js';
import { replayOnto } from '../../replay/executor.js';
import type { ReplayResult } from '../../replay/executor.js';
import { planReplay } from '../../replay/plan.js';
import type { ReplayPlan } from '../../replay/plan.js';
import { AvaError } from '../../src/errors.js';
import type { ApiObject } from '../../src/guest/call-shape.js';
import { createProxy } from '../../src/guest/proxy.js';
import { GuestSession } from '../../src/guest/session.js';
import type { ApiSpec } from '../../src/spec/types.js';
import type { Channel, ChannelSupports } from '../../src/transport/channel.js';
import { LocalChannel } from '../../src/transport/local.js';
import { Worker } from '../../src/worker/worker.js';
import type { CallFrame, EventFrame, ReplyFrame } from '../../src/wire/frames.js';

/** A journal store in memory, with the key and value encodings the journal needs. */
export function memoryDb(): JournalDb {
  return new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb;
}

/**
 * A channel that forwards to an inner one, which can be replaced (listeners follow it): a base for channels that
 * misbehave on purpose in tests.
 */
export class ForwardingChannel implements Channel {
  readonly kind = 'local';
  readonly supports: ChannelSupports = { zeroCopy: true, crossProcess: false };
  #inner: Channel;
  get spec(): Channel['spec'] {
    return this.#inner.spec;
  }
  readonly #failures = new Set<(reply: ReplyFrame) => void>();
  readonly #events = new Set<(event: EventFrame) => void>();
  #unsubscribe: (() => void)[] = [];

  constructor(inner: Channel) {
    this.#inner = inner;
    this.#attach();
  }

  get inner(): Channel {
    return this.#inner;
  }

  #attach(): void {
    this.#unsubscribe = [
      this.#inner.onAsyncFailure((reply) => { for (const l of this.#failures) l(reply); }),
      this.#inner.onEvent((event) => { for (const l of this.#events) l(event); }),
    ];
  }

  /** Puts `next` in place of the current inner channel and returns the previous one (not closed). */
  switchTo(next: Channel): Channel {
    for (const u of this.#unsubscribe) u();
    const previous = this.#inner;
    this.#inner = next;
    this.#attach();
    return previous;
  }

  call(frame: CallFrame): Promise<ReplyFrame> { return this.#inner.call(frame); }
  post(frames: readonly CallFrame[]): void { this.#inner.post(frames); }
  onAsyncFailure(listener: (reply: ReplyFrame) => void): () => void {
    this.#failures.add(listener);
    return () => this.#failures.delete(listener);
  }
  extractState(id: number, held?: boolean, range?: { readonly offset: number; readonly length: number }): Promise<Uint8Array> {
    return this.#inner.extractState(id, held, range);
  }
  restoreState(id: number, bytes: Uint8Array, crc?: number, held?: boolean, offset?: number): Promise<void> {
    return this.#inner.restoreState(id, bytes, crc, held, offset);
  }
  barrier(): Promise<void> { return this.#inner.barrier(); }
  recreateTransient(id: number, kind: string, related: readonly number[]): Promise<void> { return this.#inner.recreateTransient(id, kind, related); }
  onEvent(listener: (event: EventFrame) => void): () => void {
    this.#events.add(listener);
    return () => this.#events.delete(listener);
  }
  async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    await this.#inner.close();
  }
  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}

/** A journaled guest session over a local channel. */
export interface RecordedGuest {
  readonly spec: ApiSpec;
  readonly journal: Journal;
  readonly recording: Recording;
  readonly session: GuestSession;
  readonly api: ApiObject;
  /** Workers this guest opened (targets of migrations), closed with it. */
  readonly workers: Worker[];
  close(): Promise<void>;
}

/**
 * Opens a guest session on `worker` (a session of its own), journaled into `db` (default: a new in-memory store),
 * with a proxy in `statusErrors` mode (default `return`, so failures compare as values) and no asynchronous calls.
 */
export async function openRecordedGuest(spec: ApiSpec, worker: Worker, options: { db?: JournalDb; sessionId?: string; statusErrors?: 'return' | 'throw' } = {}): Promise<RecordedGuest> {
  const journal = await Journal.open({ spec, db: options.db ?? memoryDb() });
  const channel = await LocalChannel.open({ spec, worker, ...(options.sessionId ? { sessionId: options.sessionId } : {}) });
  const session = new GuestSession({ spec, channel, id: channel.session.id });
  const recording = await record(session, journal);
  const { api } = createProxy(spec, session, { statusErrors: options.statusErrors ?? 'return', asyncCalls: false });
  const workers: Worker[] = [];
  return {
    spec, journal, recording, session, api, workers,
    async close() {
      await session.close();
      await recording.stop();
      await journal.close();
      for (const w of workers) await w.close();
    },
  };
}

/** What one migration did. */
export interface Migration {
  readonly plan: ReplayPlan;
  readonly states: Map<number, Uint8Array>;
  readonly result: ReplayResult;
}

/** Kind of an object the session journal knows. */
export function kindOf(sj: SessionJournal, id: number): string | undefined {
  return sj.graph.nodes.get(id)?.kind;
}

/**
 * Migrates `guest` to a fresh worker, step by step with the replay API (migrate/migrate.ts does the same in
 * production; here each step's error surfaces as it is): drains, plans the journal, extracts the explicit state of
 * every live object of a kind with state (also those the application released but a live object holds:
 * `plan.held`), replays onto a new worker with the same session id, restores (through `replayOnto`'s `states`, except
 * held objects, which that option cannot address), switches the guest session's channel and closes the source.
 */
export async function migrate(guest: RecordedGuest): Promise<Migration> {
  guest.session.flush();
  await guest.session.channel.barrier();
  const plan = await planReplay(guest.recording.journal);
  const states = new Map<number, Uint8Array>();
  for (const id of [...plan.liveObjects].sort((a, b) => a - b)) {
    const kind = plan.kinds.get(id);
    if (kind !== undefined && guest.spec.kind.get(kind)?.state) states.set(id, await guest.session.extractState(id, plan.held.has(id)));
  }
  const worker = await Worker.open({ spec: guest.spec });
  guest.workers.push(worker);
  const target = await LocalChannel.open({ spec: guest.spec, worker, sessionId: guest.session.id });
  let result: ReplayResult;
  try {
    result = await replayOnto(target, plan, { states: new Map([...states].filter(([id]) => !plan.held.has(id))) });
    for (const [id, bytes] of states) if (plan.held.has(id)) await target.restoreState(id, bytes, undefined, true);
  } catch (error) {
    await target.close();
    throw error;
  }
  const previous = guest.session.switchChannel(target);
  await previous.close();
  return { plan, states, result };
}

/** Every key and value of a store, in hex, for before/after comparisons. */
export async function snapshotStore(db: JournalDb): Promise<string[]> {
  const out: string[] = [];
  for await (const [key, value] of db.iterator()) out.push(`${Buffer.from(key).toString('hex')}=${Buffer.from(value).toString('hex')}`);
  return out;
}

/** Every file of a folder with its bytes (hex sha-free: the bytes themselves, base64), for before/after comparisons. */
export function snapshotFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) out[name] = readFileSync(join(dir, name)).toString('base64');
  return out;
}

/** The code of an error (or a description of a non-error), for assertions on rejections. */
export async function rejection(p: Promise<unknown>): Promise<AvaError | Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, the promise resolved');
}

/** Makes unexpected AvaErrors printable by uvu (it cannot print an error whose `details` is an object). */
export function printable(error: unknown): unknown {
  if (AvaError.isAvaError(error)) {
    const e = new Error(`unexpected ${error.code}: ${error.message} ${JSON.stringify(error.details)}`);
    e.stack = `${e.message}\n${error.stack ?? ''}`;
    return e;
  }
  return error;
}
