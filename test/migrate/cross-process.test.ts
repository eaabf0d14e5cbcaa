/**
 * Migration between managers (issue 7): two managers on loopback tcp, each with a pool of one toyacc worker
 * process. A guest gets its worker from manager A; a migration armed with `AVA_MIGRATION_TARGET=<B>` moves the
 * session to B's worker (the session's channel then speaks to a pid of B's pool), the results equal a run without
 * migration, and A's worker gives back every object of the session. A second migration moves it back (A -> B -> A),
 * and migrations to the manager the session is already on (B -> B) work too.
 *
 * node --import tsx test/migrate/cross-process.test.ts
 */
import { randomUUID } from 'node:crypto';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { armMigration } from '../../migrate/arm.js';
import type { ArmedMigration } from '../../migrate/arm.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { formatAddress } from '../../src/config.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { Manager } from '../../src/manager/manager.js';
import { openChannel } from '../../src/transport/open-channel.js';
import type { RemoteChannel } from '../../src/transport/remote.js';
import { eventually, pidOfWorker, removeTemp, tempDir, test, within } from './helpers.js';

const DEMO = { elements: 256, rounds: 2 } as const;
/** The demo makes 42 calls with these options; a migration before call 20 moves buffers, kernels and all. */
const MIDDLE = 20;

let a: Manager;
let b: Manager;
let dir: string;
let reference: ToyaccDemoResult;

uvuTest.before(async () => {
  dir = tempDir();
  const quiet = { log: () => undefined };
  [a, b] = await within(Promise.all([
    Manager.start({ address: { kind: 'tcp', host: '127.0.0.1', port: 0 }, pool: { size: 1, specs: ['toyacc'] }, ...quiet }),
    Manager.start({ address: { kind: 'tcp', host: '127.0.0.1', port: 0 }, pool: { size: 1, specs: ['toyacc'] }, ...quiet }),
  ]), 60_000, 'starting two managers');
  // The run without migration, on the model-checked local worker.
  const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
  reference = await runToyaccDemo(lib.api, DEMO);
  await lib.close();
});

uvuTest.after(async () => {
  await Promise.all([a?.close(), b?.close()]);
  removeTemp(dir);
});

const managerEnv = (m: Manager): Record<string, string> => ({ AVA_MANAGER_ADDR: formatAddress(m.address) });
const pidsOf = (m: Manager): number[] => m.workers.map((w) => w.pid);
const workerPid = (lib: Guestlib): number => pidOfWorker((lib.session.channel as RemoteChannel).workerId);

/** A journaled guest session on a worker of manager `m`. */
async function guestOn(m: Manager): Promise<Guestlib> {
  const sessionId = randomUUID();
  const channel = await openChannel({ spec: toyaccSpec, sessionId, kind: 'tcp', env: managerEnv(m) });
  return openGuestlib(toyaccSpec, { channel, sessionId, journal: { path: dir } });
}

/** Arms a migration of `lib` before `call` to a worker of manager `to`; failures are collected into `failures`. */
function armTo(lib: Guestlib, call: number, to: Manager, failures: unknown[]): ArmedMigration {
  lib.session.onTaskError = (error) => { failures.push(error); };
  return armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call }, env: { AVA_MIGRATION_TARGET: formatAddress(to.address) }, log: () => undefined });
}

/** Objects alive in the toyacc library of the worker process of manager `m` (counted through a session of its own). */
async function liveObjectsOn(m: Manager): Promise<number> {
  const lib = await openGuestlib(toyaccSpec, { channel: await openChannel({ spec: toyaccSpec, sessionId: randomUUID(), kind: 'tcp', env: managerEnv(m) }) });
  try {
    return (await lib.api.tq_debug_live_objects!()).ret as number;
  } finally {
    await lib.close();
  }
}

const failureText = (failures: unknown[]): string => failures.map((e) => `${(e as { code?: string }).code}: ${(e as Error).message}`).join('; ');

test('A -> B: the session moves to the worker of manager B, results equal a run without migration, A lets go of it', async () => {
  const [aPid] = pidsOf(a);
  const [bPid] = pidsOf(b);
  assert.ok(aPid !== undefined && bPid !== undefined && aPid !== bPid, 'one pool worker each, different processes');
  const idleA = await liveObjectsOn(a);
  const lib = await guestOn(a);
  const failures: unknown[] = [];
  try {
    assert.is(workerPid(lib), aPid, 'the guest starts on A\'s worker');
    const armed = armTo(lib, MIDDLE, b, failures);
    // Objects of the session on A just before the migration: the demo's first calls made a context, queue, program,
    // kernels and buffers there.
    let onABefore = -1;
    lib.session.schedule(MIDDLE - 1, async () => { onABefore = await liveObjectsOn(a); });
    const result = await within(runToyaccDemo(lib.api, DEMO), 60_000, 'the demo');
    assert.equal(failures, [], failureText(failures));
    assert.equal(result, reference, 'the same results as without migration');
    assert.is(armed.reports.length, 1, 'one migration');
    const report = armed.reports[0]!;
    assert.is(report.call, MIDDLE);
    assert.ok(report.bytes > 0 && report.replayed > 0, 'state and records moved');
    assert.is(report.stateRoute, 'direct', 'the state went straight from A\'s worker to B\'s (tcp, with B\'s token)');
    assert.is(workerPid(lib), bPid, 'the session\'s channel speaks to B\'s worker');
    assert.ok(pidsOf(b).includes(workerPid(lib)), 'that worker is in B\'s manager.workers');
    assert.ok(report.from.startsWith('tcp:') && report.to.startsWith('tcp:'), `${report.from} -> ${report.to}`);
    assert.is(lib.session.callCount, 42, 'the demo made the calls this file counts on');
    assert.is(pidOfWorker(report.from.slice(4)), aPid, 'the report names A\'s worker as the source');
    assert.is(pidOfWorker(report.to.slice(4)), bPid, 'the report names B\'s worker as the target');
    assert.ok(onABefore > idleA, `A's worker held the session's objects before the migration (${onABefore} > ${idleA})`);
    assert.ok(await eventually(async () => (await liveObjectsOn(a)) === idleA, 5000), 'A\'s worker released every object of the session');
  } finally {
    await lib.close();
  }
});

test('A -> B -> A: a second migration takes the session back to A; results equal a run without migration', async () => {
  const [aPid] = pidsOf(a);
  const [bPid] = pidsOf(b);
  const idleB = await liveObjectsOn(b);
  const lib = await guestOn(a);
  const failures: unknown[] = [];
  try {
    const there = armTo(lib, 12, b, failures);
    const back = armTo(lib, 30, a, failures);
    const result = await within(runToyaccDemo(lib.api, DEMO), 60_000, 'the demo');
    assert.equal(failures, [], failureText(failures));
    assert.equal(result, reference);
    assert.is(there.reports.length, 1, 'A -> B happened');
    assert.is(back.reports.length, 1, 'B -> A happened');
    assert.is(pidOfWorker(there.reports[0]!.to.slice(4)), bPid);
    assert.is(back.reports[0]!.from, there.reports[0]!.to, 'the second hop leaves B');
    assert.is(pidOfWorker(back.reports[0]!.to.slice(4)), aPid, 'and reaches A');
    assert.is(workerPid(lib), aPid, 'the session is back on A\'s worker');
    assert.ok(await eventually(async () => (await liveObjectsOn(b)) === idleB, 5000), 'B\'s worker released every object of the session');
  } finally {
    await lib.close();
  }
});

test('A -> B -> B: a second migration to the manager the session is on works (a fresh worker session on the same worker)', async () => {
  const [bPid] = pidsOf(b);
  const lib = await guestOn(a);
  const failures: unknown[] = [];
  try {
    const first = armTo(lib, 12, b, failures);
    const second = armTo(lib, 30, b, failures);
    const result = await within(runToyaccDemo(lib.api, DEMO), 60_000, 'the demo');
    assert.equal(result, reference, 'results unchanged whatever the migrations did');
    assert.equal(failures, [], `no migration failed: ${failureText(failures)}`);
    assert.is(first.reports.length + second.reports.length, 2, 'both migrations happened');
    assert.is(workerPid(lib), bPid);
  } finally {
    await lib.close();
  }
});

test('after the migrations each manager still runs exactly its one pool worker (none died, none leaked)', () => {
  assert.is(a.workers.length, 1);
  assert.is(b.workers.length, 1);
  assert.is(a.replacements + b.replacements, 0, 'no pool worker died during the migrations');
});

uvuTest.run();
