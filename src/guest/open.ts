/**
 * Opening a guestlib: a session over a channel, with its proxy. The one entry point applications use.
 */
import type { ApiSpec } from '../spec/types.js';
import type { Channel } from '../transport/channel.js';
import { randomUUID } from 'node:crypto';
import type { ChannelKind } from '../config.js';
import { checkpointEvery, failoverEnabled, journalData, journalDurability, journalPath, migrationMode, migrationReportPath, migrationSeed, migrationTrigger, printTimestamps, recordReplay } from '../config.js';
import type { MigrationTrigger } from '../config.js';
import { armMigration, defaultTarget } from '../../migrate/arm.js';
import { enableFailover } from '../../migrate/failover.js';
import type { Failover } from '../../migrate/failover.js';
import type { ArmedMigration } from '../../migrate/arm.js';
import type { Durability, SessionJournal } from '../../journal/journal.js';
import { record } from '../../journal/recorder.js';
import { acquireJournal } from '../../journal/shared.js';
import type { SharedJournal } from '../../journal/shared.js';
import { formatStages } from '../intercept/interceptor.js';
import { openChannel } from '../transport/open-channel.js';
import type { Worker } from '../worker/worker.js';
import type { ApiObject } from './call-shape.js';
import type { Handle } from './handle.js';
import { createProxy, overlay } from './proxy.js';
import type { ProxyOptions } from './proxy.js';
import { GuestSession } from './session.js';

/** Options of {@link openGuestlib} and {@link wrap}. */
export interface GuestlibOptions extends ProxyOptions {
  /** A channel already open to a worker session; by default the one `AVA_CHANNEL` names (see `openChannel`). */
  readonly channel?: Channel;
  /** Overrides `AVA_CHANNEL` when no channel is given. */
  readonly transport?: ChannelKind;
  /** For the default local channel: a worker to share (e.g. to put several sessions on one worker). */
  readonly worker?: Worker;
  /** Session id. */
  readonly sessionId?: string;
  /**
   * Journal the session (default: `AVA_RECORD_REPLAY`): `true` for the folder `AVA_JOURNAL` with durability
   * `AVA_JOURNAL_DURABILITY`, or a path and durability.
   */
  readonly journal?: boolean | { readonly path?: string; readonly durability?: Durability };
  /** Migrate the session at this call (default: `AVA_MIGRATION_CALL_ID`); turns journaling on. */
  readonly migrateAt?: MigrationTrigger;
  /**
   * Rebuild the session on a new worker if its worker dies (default: `AVA_FAILOVER`); turns journaling on.
   * `checkpointEvery` (default `AVA_CHECKPOINT_EVERY`) writes the explicit state every so many calls; `data`
   * (default `AVA_JOURNAL_DATA`) journals transfers and launches so that no completed work is lost.
   */
  readonly failover?: boolean | { readonly checkpointEvery?: number; readonly data?: boolean };
}

/** An open guestlib. Close it (or `await using` it) to end the session. */
export interface Guestlib<T = ApiObject> extends AsyncDisposable {
  /** The API: one async function per spec function. */
  readonly api: T;
  readonly session: GuestSession;
  /** The session's journal, when journaling. */
  readonly journal: SessionJournal | undefined;
  /** The armed migration (`AVA_MIGRATION_CALL_ID` or `migrateAt`), with its reports once done. */
  readonly migration: ArmedMigration | undefined;
  /** Failover, when on, with the report of each recovery. */
  readonly failover: Failover | undefined;
  /** The handle for an id found in an info value (e.g. `CL_CONTEXT_DEVICES`). */
  handleAt(kind: string, bytes: ArrayBufferView, index?: number): Handle | null;
  close(): Promise<void>;
}

/**
 * A guest session with what the AVA_* variables ask for around it (journal, migration trigger, failover): what a
 * front feeds call records into. The proxy is one front; ava-guestd, serving the C front, is another.
 */
export interface OpenedSession {
  readonly session: GuestSession;
  readonly journal: SessionJournal | undefined;
  readonly migration?: ArmedMigration | undefined;
  readonly failover?: Failover | undefined;
  close(): Promise<void>;
}

/** Opens a session over a channel, with its journal, migration trigger and failover as `options` and the AVA_* variables say. */
export async function openSession(spec: ApiSpec, options: GuestlibOptions = {}): Promise<OpenedSession> {
  const id = options.sessionId ?? randomUUID();
  const failover = options.failover ?? failoverEnabled();
  const open = (): Promise<Channel> => openChannel({
    spec, sessionId: id, ...(options.transport ? { kind: options.transport } : {}), ...(options.worker ? { worker: options.worker } : {}),
  });
  const channel = options.channel ?? (failover ? await openReplacingDeadWorkers(open) : await open());
  const session = new GuestSession({ spec, channel, id });
  if (printTimestamps()) session.interceptor.calls$.subscribe((event) => process.stderr.write(`${formatStages(event)}\n`));
  const trigger = options.migrateAt ?? migrationTrigger();
  // A migration or a failover replays the journal, so either turns journaling on.
  const wanted = options.journal ?? (recordReplay() || trigger !== undefined || Boolean(failover));
  if (!wanted) return { session, journal: undefined, close: () => session.close() };
  const where = typeof wanted === 'object' ? wanted : {};
  let shared: SharedJournal;
  try {
    shared = await acquireJournal(where.path ?? journalPath(), spec, where.durability ?? journalDurability());
  } catch (error) {
    await session.close();
    throw error;
  }
  const failoverOptions = typeof failover === 'object' ? failover : {};
  const recording = await record(session, shared.journal, {
    ...(failover ? { data: failoverOptions.data ?? journalData() } : {}),
  });
  const recovery = failover ? enableFailover(session, recording.journal, {
    openTarget: defaultTarget(session), checkpointEvery: failoverOptions.checkpointEvery ?? checkpointEvery(),
  }) : undefined;
  const migration = trigger ? armMigration(session, recording.journal, {
    trigger, mode: migrationMode(), ...(migrationSeed() === undefined ? {} : { seed: migrationSeed()! }),
    ...(migrationReportPath() ? { reportPath: migrationReportPath()! } : {}),
  }) : undefined;
  return {
    migration,
    failover: recovery,
    session,
    journal: recording.journal,
    async close() {
      await session.close().finally(async () => {
        await recording.stop();
        await shared.release();
      });
    },
  };
}

/** Codes of a worker that died while its session was being opened (started, connected, greeted). */
const WORKER_LOST = new Set(['ERR_AVA_WORKER_START', 'ERR_AVA_CONNECT', 'ERR_AVA_CHANNEL_CLOSED']);
/** Attempts at opening a session's first channel when failover is on. */
const OPEN_ATTEMPTS = 3;

/**
 * With failover on, a worker that dies before the session is open is replaced as one that dies later would be:
 * the channel is opened again on a new worker (at most {@link OPEN_ATTEMPTS} times in all).
 */
async function openReplacingDeadWorkers(open: () => Promise<Channel>): Promise<Channel> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= OPEN_ATTEMPTS || !WORKER_LOST.has((error as { code?: string }).code ?? '')) throw error;
      process.stderr.write(`ava-migrate: worker lost while the session opened (${(error as Error).message}); opening it on a new worker\n`);
    }
  }
}

function guestlib<T>(api: T, opened: OpenedSession, handleAt: Guestlib['handleAt']): Guestlib<T> {
  return {
    api,
    session: opened.session,
    journal: opened.journal,
    migration: opened.migration,
    failover: opened.failover,
    handleAt,
    close: () => opened.close(),
    [Symbol.asyncDispose]: () => opened.close(),
  };
}

/**
 * Opens a guestlib for `spec`.
 * @example
 * await using lib = await openGuestlib(toyaccSpec);
 * const { outs } = await lib.api.tq_get_devices(2, true);
 */
export async function openGuestlib(spec: ApiSpec, options: GuestlibOptions = {}): Promise<Guestlib> {
  const opened = await openSession(spec, options);
  const proxy = createProxy(spec, opened.session, options);
  return guestlib(proxy.api, opened, proxy.handleAt);
}

/**
 * Wraps an API object the application already has (a binding, an older guestlib): the functions `spec` names are
 * remoted through a new session, every other member of `existing` is reached as before.
 * @example
 * await using lib = await wrap(existingBinding, openclSpec);
 * await lib.api.clGetPlatformIDs(0, null); // remoted
 */
export async function wrap<T extends object>(existing: T, spec: ApiSpec, options: GuestlibOptions = {}): Promise<Guestlib<T & ApiObject>> {
  const opened = await openSession(spec, options);
  const proxy = createProxy(spec, opened.session, options);
  return guestlib(overlay(existing, proxy.api), opened, proxy.handleAt);
}
