/**
 * Pre-copy migration: the state is copied while the application runs; what it changes meanwhile (whole objects, or
 * only the written regions) is copied again in the stop phase, and results equal a run without migration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { armMigration } from '../../migrate/arm.js';
import type { MigrationReport } from '../../migrate/migrate.js';
import type { PrecopyStats } from '../../migrate/precopy.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { Handle } from '../../src/guest/handle.js';
import { openGuestlib } from '../../src/guest/open.js';
import { test } from '../helpers/uvu.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'ava-precopy-'));
  dirs.push(dir);
  return dir;
};
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

test('the demo gives the same result with a pre-copy migration at any of several calls', async () => {
  const plain = await openGuestlib(toyaccSpec, { transport: 'local' });
  const reference = await runToyaccDemo(plain.api, { elements: 256 });
  await plain.close();
  for (const call of [0, 9, 20, 27, 33]) {
    const lib = await openGuestlib(toyaccSpec, { transport: 'local', journal: { path: tempDir() } });
    const errors: unknown[] = [];
    lib.session.onTaskError = (e) => errors.push(e);
    const armed = armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call }, mode: 'precopy', log: () => {} });
    const result = await runToyaccDemo(lib.api, { elements: 256 });
    await lib.close();
    assert.equal(result, reference, `pre-copy armed at call ${call}`);
    assert.equal(errors, [], `no migration error at call ${call}`);
    assert.is(armed.reports.length, 1, `one migration at call ${call}`);
  }
});

test('a region written after the cut is all the stop phase copies again, and it arrives', async () => {
  const lib = await openGuestlib(toyaccSpec, { transport: 'local', journal: { path: tempDir() } });
  try {
    const api = lib.api;
    const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
    const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
    const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
    const size = 1 << 20;
    const buf = (await api.tq_create_buffer!(ctx, TQ.MEM_COPY_HOST, size, new Uint8Array(size).fill(7))).ret as Handle;
    const done = new Promise<MigrationReport & { precopy: PrecopyStats }>((resolve) => {
      armMigration(lib.session, lib.journal!, {
        trigger: { kind: 'at', call: lib.session.callCount }, mode: 'precopy', log: () => {},
        onMigrated: (r) => resolve(r as MigrationReport & { precopy: PrecopyStats }),
      });
    });
    // The trigger call, then a write of 16 bytes at offset 1000 while the live phase runs.
    await api.tq_finish!(queue);
    await api.tq_enqueue_write!(queue, buf, 1000, 16, new Uint8Array(16).fill(9));
    let report: (MigrationReport & { precopy: PrecopyStats }) | undefined;
    void done.then((r) => { report = r; });
    // The live phase copies on the worker beside the program: keep the program calling (a few ms apart, so a loaded
    // machine still gives the copy time) until it ends; bounded by time, not by a count of calls.
    const deadline = Date.now() + 30_000;
    while (!report && Date.now() < deadline) {
      await api.tq_finish!(queue);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(report, 'the migration finished while the application ran');
    assert.is(report!.precopy.liveBytes, size, 'the whole buffer was copied live');
    assert.is(report!.precopy.dirtyBytes, 16, 'only the written region was copied again');
    const out = new Uint8Array(size);
    await api.tq_enqueue_read!(queue, buf, 0, size, out);
    assert.equal(Array.from(out.subarray(996, 1020)), [7, 7, 7, 7, ...new Array(16).fill(9), 7, 7, 7, 7]);
    assert.ok(out.subarray(0, 1000).every((b) => b === 7) && out.subarray(1016).every((b) => b === 7));
  } finally {
    await lib.close();
  }
});

test('a program that ends during the live phase: closing waits, the migration completes and is reported', async () => {
  for (const live of [1, 4]) {
    const lib = await openGuestlib(toyaccSpec, { transport: 'local', journal: { path: tempDir() } });
    const api = lib.api;
    const devices = (await api.tq_get_devices!(1, true)).outs.devices as Handle[];
    const ctx = (await api.tq_create_context!(1, devices)).ret as Handle;
    const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
    const size = 8 << 20;
    for (let i = 0; i < live; i++) await api.tq_create_buffer!(ctx, TQ.MEM_COPY_HOST, size, new Uint8Array(size).fill(i + 1));
    const errors: unknown[] = [];
    lib.session.onTaskError = (e) => errors.push(e);
    const armed = armMigration(lib.session, lib.journal!, { trigger: { kind: 'at', call: lib.session.callCount }, mode: 'precopy', log: () => {} });
    await api.tq_finish!(queue); // the trigger: the live phase starts beside the program
    assert.is(armed.reports.length, 0, 'the live phase is still running when the program ends');
    await lib.close();
    assert.equal(errors, [], `no migration error (${live} buffers)`);
    assert.is(armed.reports.length, 1, `the migration completed before the session closed (${live} buffers)`);
    assert.is((armed.reports[0] as MigrationReport & { precopy: PrecopyStats }).precopy.liveBytes, live * size);
  }
});

test.run();
