/**
 * The migration trigger: `AVA_MIGRATION_CALL_ID=<n>` migrates before call n, `r<limit>` before a random call below
 * limit (seeded with `AVA_MIGRATION_SEED`, printed so the run can be reproduced). Arming schedules the migration as
 * a task of the guest session; the target is a new worker of the same kind as the source (or one of the peer
 * manager at `AVA_MIGRATION_TARGET`).
 */
import { appendFileSync } from 'node:fs';
import type { SessionJournal } from '../journal/journal.js';
import type { MigrationTrigger } from '../src/config.js';
import type { Env } from '../src/config.js';
import type { GuestSession } from '../src/guest/session.js';
import type { Channel } from '../src/transport/channel.js';
import { openChannel } from '../src/transport/open-channel.js';
import type { MigrationReport } from './migrate.js';
import { migrateSession } from './migrate.js';
import { precopyMigrate } from './precopy.js';

/** A small seeded PRNG (splitmix32): the same seed picks the same call on every machine. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

/** The call a trigger picks, and the seed used. */
export function chooseCall(trigger: MigrationTrigger, seed = Math.floor(Math.random() * 2 ** 31)): { call: number; seed: number } {
  if (trigger.kind === 'at') return { call: trigger.call, seed };
  return { call: Math.floor(random(seed)() * trigger.limit), seed };
}

/** Options of {@link armMigration}. */
export interface ArmOptions {
  readonly trigger: MigrationTrigger;
  readonly seed?: number;
  /** Opens the target; default: a new worker like the source's (see the module comment). */
  readonly openTarget?: () => Promise<Channel>;
  /** Append each report as a JSON line to this file. */
  readonly reportPath?: string;
  /** Environment for the default target. */
  readonly env?: Env;
  /** Lines for the user (default: stderr). */
  readonly log?: (line: string) => void;
  /** Called with each finished migration. */
  readonly onMigrated?: (report: MigrationReport) => void;
  /** `stop` (stop-and-copy, default) or `precopy` (copy state while the application runs; see precopy.ts). */
  readonly mode?: 'stop' | 'precopy';
}

/** An armed migration. */
export interface ArmedMigration {
  readonly call: number;
  readonly seed: number;
  /** Reports of the migrations done so far. */
  readonly reports: MigrationReport[];
}

/** Hops per session: the worker-side session name of each target must be new, even on a worker visited before. */
const hops = new WeakMap<GuestSession, number>();

/** Opens a new worker session of the same kind as `source` for `session`. */
export function defaultTarget(session: GuestSession, env: Env = process.env): () => Promise<Channel> {
  return () => {
    const peer = env.AVA_MIGRATION_TARGET?.trim();
    const targetEnv: Env = peer ? { ...env, AVA_MANAGER_ADDR: peer, AVA_WORKER_ADDR: '' } : { ...env, AVA_WORKER_ADDR: '' };
    // The worker-side session name differs per hop, so a pool worker that already served the source can take it.
    const hop = (hops.get(session) ?? 0) + 1;
    hops.set(session, hop);
    return openChannel({ spec: session.spec, sessionId: `${session.id}~m${hop}`, kind: session.channel.kind as never, env: targetEnv });
  };
}

/** Arms a migration of `session` (journaled into `journal`) at the trigger's call. */
export function armMigration(session: GuestSession, journal: SessionJournal, options: ArmOptions): ArmedMigration {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { call, seed } = chooseCall(options.trigger, options.seed);
  const armed: ArmedMigration = { call, seed, reports: [] };
  const openTarget = options.openTarget ?? defaultTarget(session, options.env);
  log(`ava-migrate: migration armed at call ${call}${options.trigger.kind === 'random' ? ` (r${options.trigger.limit}, seed ${seed})` : ''}`);
  const done = (report: MigrationReport): void => {
    armed.reports.push(report);
    if (options.reportPath) appendFileSync(options.reportPath, `${JSON.stringify(report)}\n`);
    log(`ava-migrate: session ${session.id.slice(0, 8)} moved before call ${report.call} from ${report.from} to ${report.to} in ${report.total.toFixed(1)} ms of downtime (${report.replayed} records replayed, ${report.bytes} state bytes)`);
    options.onMigrated?.(report);
  };
  session.schedule(call, async (at) => {
    if (at !== call) log(`ava-migrate: at call ${call} work was waiting on the application (a thread blocked in a wait, or an incomplete user event); migrating before call ${at} instead`);
    if (options.mode === 'precopy') {
      // The live phase runs beside the application; only its stop phase pauses the session, which waits for it
      // when the program ends first.
      session.runBeside(precopyMigrate(session, journal, { openTarget }).then(done, (error: unknown) => session.onTaskError(error)));
      return;
    }
    done(await migrateSession(session, journal, { openTarget, beforeCall: at }));
  });
  return armed;
}

