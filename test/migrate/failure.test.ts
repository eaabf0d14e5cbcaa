/**
 * A failing migration keeps the session working (issue 7): whatever goes wrong (the target cannot be opened, the
 * target serves another spec, the target process dies during replay, a restore writes wrong bytes), every call of
 * the application succeeds on the source with the results of a run without migration, the failure is reported
 * through `session.onTaskError` as ERR_AVA_MIGRATION_FAILED naming the phase, the target is closed, and a migration
 * armed again later succeeds.
 *
 * node --import tsx test/migrate/failure.test.ts
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { armMigration } from '../../migrate/arm.js';
import type { ArmedMigration } from '../../migrate/arm.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { ChannelKind } from '../../src/config.js';
import { AvaError } from '../../src/errors.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import type { Channel } from '../../src/transport/channel.js';
import { connectSocketChannel } from '../../src/transport/connect.js';
import { LocalChannel } from '../../src/transport/local.js';
import type { RemoteChannel } from '../../src/transport/remote.js';
import type { CallFrame, ReplyFrame } from '../../src/wire/frames.js';
import { spawnWorkerProcess } from '../../src/worker/spawn.js';
import type { WorkerProcess } from '../../src/worker/spawn.js';
import { ForwardingChannel } from '../replay/helpers.js';
import { eventually, removeTemp, tempDir, test, within } from './helpers.js';

const DEMO = { elements: 256, rounds: 2 } as const;
const FIRST = 20;
const AGAIN = 30;

let dir: string;
let reference: ToyaccDemoResult;

uvuTest.before(async () => {
  dir = tempDir();
  const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
  reference = await runToyaccDemo(lib.api, DEMO);
  await lib.close();
});
uvuTest.after(() => { removeTemp(dir); });

/** A target channel that records whether it was closed (the migration must close a target it gives up). */
class TrackedChannel extends ForwardingChannel {
  closed = false;
  override async close(): Promise<void> {
    this.closed = true;
    await super.close();
  }
}

/** Objects alive in this process's toyacc library (every local worker shares it). */
async function liveObjects(): Promise<number> {
  const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
  try {
    return (await lib.api.tq_debug_live_objects!()).ret as number;
  } finally {
    await lib.close();
  }
}

/** The codes along an error's cause chain. */
function causeCodes(error: unknown): string[] {
  const out: string[] = [];
  for (let e = error, depth = 0; e && depth < 10; e = (e as Error).cause, depth++) out.push((e as { code?: string }).code ?? (e as Error).name);
  return out;
}

interface Outcome {
  readonly result: ToyaccDemoResult;
  readonly failures: unknown[];
  readonly failed: ArmedMigration;
  readonly retried: ArmedMigration;
  /** Whether the session's channel was still the source when the failure was reported. */
  readonly stayed: boolean[];
  readonly lib: Guestlib;
}

/**
 * Runs the demo with a migration before call FIRST through `openTarget` (meant to fail), and a second migration
 * before call AGAIN to a default target. Returns with the guestlib still open.
 */
async function runWithFailingMigration(transport: ChannelKind, openTarget: () => Promise<Channel>): Promise<Outcome> {
  const lib = await openGuestlib(toyaccSpec, { transport, journal: { path: dir } });
  const failures: unknown[] = [];
  const stayed: boolean[] = [];
  const source = lib.session.channel;
  lib.session.onTaskError = (error) => {
    failures.push(error);
    stayed.push(lib.session.channel === source);
  };
  const failed = armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call: FIRST }, openTarget, log: () => undefined });
  const retried = armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call: AGAIN }, log: () => undefined });
  const result = await within(runToyaccDemo(lib.api, DEMO), 60_000, 'the demo');
  return { result, failures, failed, retried, stayed, lib };
}

/** The checks every failure case shares. */
function checkOutcome(o: Outcome, phases: readonly string[]): void {
  assert.equal(o.result, reference, 'every call succeeded with the results of a run without migration');
  assert.is(o.failures.length, 1, `one failure reported: ${o.failures.map(String).join('; ')}`);
  const error = o.failures[0];
  assert.ok(AvaError.isAvaError(error), `an AvaError: ${String(error)}`);
  assert.is((error as AvaError).code, 'ERR_AVA_MIGRATION_FAILED');
  const phase = ((error as AvaError).details as { phase?: string } | undefined)?.phase;
  assert.ok(phase !== undefined && phases.includes(phase), `the phase is named (${phase}; expected ${phases.join(' or ')})`);
  assert.ok((error as Error).cause !== undefined, 'with its cause');
  assert.equal(o.stayed, [true], 'the session was still on its source when the failure was reported');
  assert.is(o.failed.reports.length, 0, 'the failed migration has no report');
  assert.is(o.retried.reports.length, 1, 'the migration armed again succeeded');
  assert.is(o.retried.reports[0]!.call, AGAIN);
}

test('openTarget throws: the connect phase fails, the session stays and works, a later migration succeeds', async () => {
  const before = await liveObjects();
  const o = await runWithFailingMigration('local', async () => { throw new AvaError('ERR_AVA_CONNECT', 'no target here (test)'); });
  try {
    checkOutcome(o, ['connect']);
    assert.is(((o.failures[0] as Error).cause as AvaError).code, 'ERR_AVA_CONNECT', 'the cause is the target\'s error');
  } finally {
    await o.lib.close();
  }
  assert.is(await liveObjects(), before, 'every native object made by the session, its source and its targets was given back');
});

test('the target serves another spec (opencl): refused before anything runs there, the target closed', async () => {
  let target: TrackedChannel | undefined;
  const o = await runWithFailingMigration('local', async () => {
    target = new TrackedChannel(await LocalChannel.open({ spec: openclSpec }));
    return target;
  });
  try {
    checkOutcome(o, ['connect', 'replay']);
    assert.is(((o.failures[0] as Error).cause as AvaError).code, 'ERR_AVA_REPLAY_TARGET', 'the cause says the target cannot replay this journal');
    assert.ok(target?.closed, 'the other-spec target was closed');
  } finally {
    await o.lib.close();
  }
});

test('the target serves another spec at call 0 (nothing to replay yet): still refused, the session stays on toyacc', async () => {
  const lib = await openGuestlib(toyaccSpec, { transport: 'local', journal: { path: dir } });
  const failures: unknown[] = [];
  lib.session.onTaskError = (error) => { failures.push(error); };
  const armed = armMigration(lib.session, lib.journal!, {
    trigger: { kind: 'at', call: 0 }, openTarget: () => LocalChannel.open({ spec: openclSpec }), log: () => undefined,
  });
  try {
    const result = await within(runToyaccDemo(lib.api, DEMO), 60_000, 'the demo');
    assert.equal(result, reference);
    assert.is(armed.reports.length, 0, 'no migration to a worker of another spec');
    assert.is(failures.length, 1);
    assert.is((failures[0] as AvaError).code, 'ERR_AVA_MIGRATION_FAILED');
    assert.is(lib.session.channel.spec.name, 'toyacc');
  } finally {
    await lib.close();
  }
});

test('the target process dies during replay (unix, SIGKILL): the replay phase fails, the session stays on its worker', async () => {
  let worker: WorkerProcess | undefined;
  let target: TrackedChannel | undefined;
  let replayed = 0;
  // A worker killed with -9 leaves its socket file behind: removed below.
  const socket = join(tmpdir(), `ava-failure-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const o = await runWithFailingMigration('unix', async () => {
    worker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'unix', path: socket } });
    const inner = await connectSocketChannel({ address: worker.address, spec: toyaccSpec, sessionId: `failure-${randomBytes(4).toString('hex')}`, ...(worker.token ? { token: worker.token } : {}), dispose: () => worker!.stop(500) });
    target = new (class extends TrackedChannel {
      override async call(frame: CallFrame): Promise<ReplyFrame> {
        // The target dies after its first replayed call.
        if (++replayed === 2) {
          worker!.child.kill('SIGKILL');
          await worker!.exited;
        }
        return super.call(frame);
      }
    })(inner);
    return target;
  });
  try {
    const sourceWorker = (o.lib.session.channel as RemoteChannel).workerId;
    checkOutcome(o, ['replay']);
    assert.ok(replayed >= 2, 'the replay reached the target');
    assert.ok(causeCodes(o.failures[0]).includes('ERR_AVA_CHANNEL_CLOSED'), `the cause is the dead target: ${causeCodes(o.failures[0]).join(' <- ')}`);
    assert.ok(target?.closed, 'the dead target\'s channel was closed');
    assert.ok(await eventually(() => worker!.child.exitCode !== null || worker!.child.signalCode !== null, 2000), 'the target process is gone');
    assert.ok(sourceWorker !== '' && o.retried.reports[0]!.to === `unix:${sourceWorker}`, 'the later migration moved the session on to a new worker');
  } finally {
    await o.lib.close();
    await worker?.stop(500);
    rmSync(socket, { force: true });
  }
});

test('a restore that writes wrong bytes: the checksum check fails the restore phase, the session stays and works', async () => {
  const before = await liveObjects();
  let target: TrackedChannel | undefined;
  const o = await runWithFailingMigration('local', async () => {
    target = new (class extends TrackedChannel {
      override restoreState(id: number, bytes: Uint8Array, crc?: number, held?: boolean): Promise<void> {
        const wrong = Uint8Array.from(bytes);
        if (wrong.length > 0) wrong[0] = wrong[0]! ^ 0xff;
        return super.restoreState(id, wrong, crc, held);
      }
    })(await LocalChannel.open({ spec: toyaccSpec }));
    return target;
  });
  try {
    checkOutcome(o, ['restore']);
    assert.is(((o.failures[0] as Error).cause as AvaError).code, 'ERR_AVA_STATE_CHECKSUM');
    assert.ok(target?.closed, 'the target was closed');
  } finally {
    await o.lib.close();
  }
  assert.is(await liveObjects(), before, 'the failed target gave back its objects');
});

uvuTest.run();
