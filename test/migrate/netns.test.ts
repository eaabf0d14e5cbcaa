/**
 * Cross-host migration between two network namespaces (issue 7). The test makes namespaces `ava-a-<pid>` and
 * `ava-b-<pid>` joined by a veth pair (10.200.<x>.1/24 in A, 10.200.<x>.2/24 in B, `lo` up in both), starts a
 * manager with a pool of one toyacc worker inside B (`ip netns exec`, listening on 10.200.<x>.2 with a token), and
 * runs a guest inside A (test/migrate/netns-guest.ts) whose session starts on a private worker process in A and
 * migrates to B's worker (`AVA_MIGRATION_TARGET`). The guest's results equal a run without migration, and the
 * source and target workers are in the namespaces of A and B.
 *
 * Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and `ip`. Where `ip netns add` is refused or `ip` is missing, the file
 * prints `SKIPPED: <reason>` and registers no test. Namespaces are deleted after the tests and on exit.
 *
 * node --import tsx test/migrate/netns.test.ts
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { MigrationReport } from '../../migrate/migrate.js';
import type { Daemon } from './helpers.js';
import { ROOT, pidOfWorker, removeTemp, runCommand, startDaemon, tempDir, test } from './helpers.js';

const NS_A = `ava-a-${process.pid}`;
const NS_B = `ava-b-${process.pid}`;
const VETH_A = `avva${process.pid}`;
const VETH_B = `avvb${process.pid}`;
const SUBNET = `10.200.${(process.pid % 250) + 1}`;
const TOKEN = `netns-${process.pid}-secret`;
const MIDDLE = 20;

/** Runs `ip` (or another command) synchronously, bounded; the result's error text, or undefined on success. */
function sh(command: string, ...args: string[]): string | undefined {
  const res = spawnSync(command, args, { encoding: 'utf8', timeout: 15_000 });
  if (res.error) return `${command}: ${res.error.message}`;
  if (res.status !== 0) return `${command} ${args.join(' ')}: ${(res.stderr || res.stdout).trim() || `exit ${res.status}`}`;
  return undefined;
}

let created = false;
function cleanup(): void {
  if (!created) return;
  created = false;
  sh('ip', 'netns', 'del', NS_A);
  sh('ip', 'netns', 'del', NS_B);
}
process.once('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { cleanup(); process.exit(130); });

/** Why this machine cannot run the file, or undefined. */
function unavailable(): string | undefined {
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8', timeout: 5000 });
  if (ip.error) return `the ip command is missing (${ip.error.message})`;
  const refused = sh('ip', 'netns', 'add', NS_A);
  if (refused) return `network namespaces are not allowed here: ${refused}`;
  created = true;
  return undefined;
}

const reason = unavailable();
if (reason) {
  process.stdout.write(`SKIPPED: ${reason}\n`);
} else {
  let manager: Daemon<{ address: string; pid: number }> | undefined;
  let reference: ToyaccDemoResult;
  let dir: string;

  uvuTest.before(async () => {
    dir = tempDir();
    // The rest of the set-up must work once `ip netns add` did: a failure here fails the file.
    const steps: string[][] = [
      ['netns', 'add', NS_B],
      ['link', 'add', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B],
      ['link', 'set', VETH_A, 'netns', NS_A],
      ['link', 'set', VETH_B, 'netns', NS_B],
      ['-n', NS_A, 'addr', 'add', `${SUBNET}.1/24`, 'dev', VETH_A],
      ['-n', NS_B, 'addr', 'add', `${SUBNET}.2/24`, 'dev', VETH_B],
      ['-n', NS_A, 'link', 'set', VETH_A, 'up'],
      ['-n', NS_B, 'link', 'set', VETH_B, 'up'],
      ['-n', NS_A, 'link', 'set', 'lo', 'up'],
      ['-n', NS_B, 'link', 'set', 'lo', 'up'],
    ];
    for (const step of steps) {
      const error = sh('ip', ...step);
      if (error) throw new Error(`namespace set-up failed: ${error}`);
    }
    manager = await startDaemon('ip', ['netns', 'exec', NS_B, process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/run-manager.ts'),
      '--addr', `${SUBNET}.2:0`, '--pool', '1', '--spec', 'toyacc', '--token', TOKEN], { timeoutMs: 60_000 });
    const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
    reference = await runToyaccDemo(lib.api, { elements: 256, rounds: 2 });
    await lib.close();
  });

  uvuTest.after(async () => {
    await manager?.stop();
    cleanup();
    if (dir) removeTemp(dir);
  });

  const inode = (ns: string): string => `net:[${statSync(`/run/netns/${ns}`).ino}]`;
  const pidsIn = (ns: string): number[] => {
    const res = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
    return res.stdout.split('\n').filter(Boolean).map(Number);
  };

  test('a guest in namespace A migrates from a worker in A to the worker of a manager in namespace B, results unchanged', async () => {
    assert.ok(manager, 'the manager in B is up');
    const address = manager!.ready.address;
    assert.ok(address.includes(`${SUBNET}.2:`), `the manager listens on B's veth address (${address})`);
    const run = await runCommand('ip', ['netns', 'exec', NS_A, process.execPath, '--import', 'tsx', join(ROOT, 'test/migrate/netns-guest.ts'), join(dir, 'journal'), String(MIDDLE)], {
      env: { ...process.env, AVA_CHANNEL: 'TCP', AVA_TOKEN: TOKEN, AVA_MIGRATION_TARGET: address, AVA_MIGRATION_CALL_ID: '', AVA_MANAGER_ADDR: '', AVA_WORKER_ADDR: '' },
      timeoutMs: 90_000,
    });
    assert.is(run.code, 0, `the guest exited 0: ${run.stderr}`);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      result: ToyaccDemoResult; report: MigrationReport | null; reports: number; calls: number; source: string; target: string;
      sourcePid: number; targetPid: number; selfNetns: string; sourceNetns: string; targetNetns: string; failures: string[];
    };
    assert.equal(out.failures, [], 'no migration failure');
    assert.equal(out.result, reference, 'the same results as a run without migration');
    assert.is(out.reports, 1, 'one migration');
    assert.is(out.report!.call, MIDDLE);
    assert.ok(out.report!.bytes > 0 && out.report!.replayed > 0, 'records and buffer contents crossed the veth');
    assert.is(out.report!.stateRoute, 'direct', 'the state went from the worker in A straight to the worker in B');
    assert.is(out.report!.from, `tcp:${out.source}`);
    assert.is(out.report!.to, `tcp:${out.target}`);
    assert.is(pidOfWorker(out.target), out.targetPid);
    assert.is(out.selfNetns, inode(NS_A), 'the guest ran in namespace A');
    assert.is(out.sourceNetns, inode(NS_A), 'the source worker ran in namespace A');
    assert.is(out.targetNetns, inode(NS_B), 'the target worker runs in namespace B');
    assert.ok(pidsIn(NS_B).includes(out.targetPid), 'the target is a process of namespace B (B\'s pool worker)');
    assert.not.ok(pidsIn(NS_A).includes(out.sourcePid), 'the source worker is gone with its guest');
  });

  test('clean-up: the test\'s namespaces exist while it runs (and are deleted after it)', () => {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 }).stdout;
    assert.ok(list.includes(NS_A) && list.includes(NS_B), list);
  });
}

uvuTest.run();
