/**
 * Worker processes started by spawnWorkerProcess: a worker that cannot clean up after itself (killed with SIGKILL)
 * leaves no unix socket file behind, and a stopped one neither.
 *
 * node --import tsx test/worker/spawn.test.ts
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnWorkerProcess } from '../../src/worker/spawn.js';

test('a worker killed with SIGKILL leaves no socket file; a stopped one neither', async () => {
  for (const how of ['kill', 'stop'] as const) {
    const path = join(tmpdir(), `ava-spawn-test-${process.pid}-${how}.sock`);
    const worker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'unix', path } });
    assert.ok(existsSync(path), 'the worker listens on its socket file');
    if (how === 'kill') worker.child.kill('SIGKILL');
    else await worker.stop();
    const exit = await worker.exited;
    // A stop right after the listening line finds the worker's SIGTERM handler in place: it exits cleanly.
    assert.is(exit, how === 'kill' ? 'SIGKILL' : 0);
    assert.not.ok(existsSync(path), `no socket file left after ${how}`);
  }
});

test.run();
