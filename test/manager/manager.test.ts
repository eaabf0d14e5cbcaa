/**
 * The manager (src/manager/manager.ts) and its CLI (src/cli/run-manager.ts): placement on a pool of worker
 * processes, replacement of a pool worker killed with -9, on-demand workers on a unix-socket manager, refusals of
 * bad requests (coded errors, the manager goes on), and clean shutdown (every worker process gone).
 *
 * node --import tsx test/manager/manager.test.ts
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom, timeout, toArray } from 'rxjs';
import { test as uvuTest } from 'uvu';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoOptions, ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { openclSpec } from '../../src/apis/opencl/spec.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import type { Address } from '../../src/config.js';
import { formatAddress, parseAddress } from '../../src/config.js';
import { AvaError } from '../../src/errors.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { requestWorker } from '../../src/manager/client.js';
import { Manager } from '../../src/manager/manager.js';
import type { ManagerEvent } from '../../src/manager/manager.js';
import type { ApiSpec } from '../../src/spec/types.js';
import { openChannel } from '../../src/transport/open-channel.js';
import { RemoteChannel } from '../../src/transport/remote.js';
import { encodeFrame, FrameReader } from '../../src/wire/codec.js';
import type { Frame } from '../../src/wire/frames.js';
import { PROTOCOL_VERSION } from '../../src/wire/frames.js';


// ------------------------------------------------------------------------------------------------ helpers

/** Rejects when `promise` takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Marks a promise handled (it is awaited later, maybe not at all when an earlier assertion fails). */
function later<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** The first event matching `match`, within `ms`; subscribe before causing it. */
function nextEvent<T extends ManagerEvent>(manager: Manager, match: (e: ManagerEvent) => e is T, ms: number): Promise<T> {
  return later(firstValueFrom(manager.events.pipe(filter(match), timeout(ms))));
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
};

/** Asserts that `pid` is gone (process.kill(pid, 0) throws ESRCH), waiting up to `ms` for the kernel to reap it. */
async function assertGone(pid: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.throws(() => process.kill(pid, 0), (e: NodeJS.ErrnoException) => e.code === 'ESRCH', `process ${pid} is still running`);
}

async function rejectionOf(promise: Promise<unknown>): Promise<AvaError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `not an AvaError: ${String(error)}`);
    return error;
  }
  throw new Error('expected a rejection');
}

/**
 * A guest placed by the manager at `manager` the way applications are: `openChannel` with `AVA_MANAGER_ADDR` (and
 * `AVA_TOKEN`) in its environment, then `openGuestlib` over that channel.
 */
async function remoteGuest(manager: Address, token: string | undefined, sessionId = randomUUID()): Promise<{ guest: Guestlib; channel: RemoteChannel; sessionId: string }> {
  const env = { AVA_MANAGER_ADDR: formatAddress(manager), ...(token ? { AVA_TOKEN: token } : {}) };
  const kind = manager.kind === 'unix' ? 'unix' : 'tcp';
  const channel = await within(openChannel({ spec: toyaccSpec, sessionId, kind, env }), 20_000, 'openChannel through the manager');
  assert.ok(channel instanceof RemoteChannel, `a remote channel, not ${channel.kind}`);
  const guest = await openGuestlib(toyaccSpec, { channel, sessionId });
  guests.push(guest);
  return { guest, channel: channel as RemoteChannel, sessionId };
}

/** The id of the worker the manager assigned to `sessionId`, from its events; subscribe before the request. */
function assignedTo(manager: Manager, ms = 20_000): { of(sessionId: string): Promise<string> } {
  const seen = new Map<string, string>();
  const waiting = new Map<string, (id: string) => void>();
  const sub = manager.events.subscribe((e) => {
    if (e.type !== 'assigned') return;
    seen.set(e.session, e.worker.id);
    waiting.get(e.session)?.(e.worker.id);
  });
  setTimeout(() => sub.unsubscribe(), ms).unref();
  return {
    of: (sessionId) => seen.has(sessionId) ? Promise.resolve(seen.get(sessionId)!) : within(new Promise<string>((r) => waiting.set(sessionId, r)), ms, `assignment of ${sessionId}`),
  };
}

/** The demo's results on the local channel (an in-process worker): what every remote run must give. */
const expected = new Map<string, ToyaccDemoResult>();
async function localDemo(options: ToyaccDemoOptions): Promise<ToyaccDemoResult> {
  const key = JSON.stringify(options);
  const known = expected.get(key);
  if (known) return known;
  const lib = await openGuestlib(toyaccSpec, { transport: 'local' });
  try {
    assert.is(lib.session.channel.kind, 'local');
    const result = await runToyaccDemo(lib.api, options);
    expected.set(key, result);
    return result;
  } finally {
    await lib.close();
  }
}

/** Sends raw bytes to the manager; collects every frame it answers until it closes the connection. */
function exchange(address: Address, bytes: Buffer | undefined, ms = 5000): Promise<{ frames: Frame[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host);
    const reader = new FrameReader();
    const frames: Frame[] = [];
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`the manager neither answered nor closed within ${ms} ms`)); }, ms);
    socket.on('data', (chunk: Buffer) => { frames.push(...reader.push(chunk)); });
    socket.on('error', () => undefined); // a reset after the answer counts as closed
    socket.on('close', () => { clearTimeout(timer); resolve({ frames, closed: true }); });
    socket.on('connect', () => { if (bytes) socket.write(bytes); });
  });
}

/** Sends `bytes` and expects exactly one error frame with `code`, then a closed connection. */
async function expectRefusal(address: Address, bytes: Buffer | undefined, code: string, ms?: number): Promise<void> {
  const { frames, closed } = await exchange(address, bytes, ms);
  assert.ok(closed, 'the manager closed the connection');
  assert.is(frames.length, 1, `one answer frame for ${code}: ${JSON.stringify(frames)}`);
  const frame = frames[0]!;
  assert.is(frame.t, 'error');
  assert.is(frame.t === 'error' ? frame.error.code : '', code);
}

const assignFrame = (over: Record<string, unknown>): Buffer =>
  encodeFrame({ t: 'assign', v: PROTOCOL_VERSION, spec: toyaccSpec.name, hash: toyaccSpec.hash, session: randomUUID(), token: TOKEN, ...over } as unknown as Frame);

// ------------------------------------------------------------------------------------------------ the pool manager

const TOKEN = 'manager-test-secret';
const log: string[] = [];
const manager = await Manager.start({
  address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
  token: TOKEN,
  pool: { size: 2, specs: ['toyacc'] },
  requestTimeoutMs: 1000,
  stopGraceMs: 2000,
  log: (line) => log.push(line),
});
/** Every worker pid the pool manager ever ran, for the shutdown check. */
const everyPid = new Set(manager.workers.map((w) => w.pid));
manager.events.subscribe((e) => { if (e.type === 'worker-started') everyPid.add(e.worker.pid); });
const guests: Guestlib[] = [];
const others: Manager[] = [];
const children: ChildProcess[] = [];
const strayPids = new Set<number>();

/** Last resort when this process ends abnormally (an uncaught error skips the after hook): no worker outlives it. */
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of [...strayPids, ...everyPid]) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

uvuTest.after(async () => {
  for (const g of guests) await within(g.close(), 5000, 'guest close').catch(() => undefined);
  for (const m of [manager, ...others]) await within(m.close(), 15_000, 'manager close').catch((e: Error) => console.error(e.message));
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const exited = new Promise((r) => child.once('exit', r));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
  // Whatever a failed test left running (nothing, when they pass).
  for (const pid of [...strayPids, ...everyPid]) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

test('pool: start() runs two toyacc workers, each its own process', () => {
  assert.is(manager.address.kind, 'tcp');
  assert.ok(manager.address.kind === 'tcp' && manager.address.port > 0, 'a real port');
  const workers = manager.workers;
  assert.is(workers.length, 2);
  assert.equal(workers.map((w) => [w.spec, w.pool, w.sessions]), [['toyacc', true, 0], ['toyacc', true, 0]]);
  assert.is(new Set(workers.map((w) => w.pid)).size, 2, 'distinct pids');
  for (const w of workers) {
    assert.is.not(w.pid, process.pid);
    assert.ok(alive(w.pid), `worker ${w.pid} runs`);
    assert.ok(w.address.startsWith('tcp:127.0.0.1:'), w.address);
  }
  assert.is(log.filter((l) => / started: pid \d+ .*\(pool\)$/.test(l)).length, 2, log.join('\n'));
});

test('pool: two guests get different workers and the demo gives the local results', async () => {
  const options = { elements: 4096, rounds: 3 };
  const want = await localDemo(options);
  const assigned = assignedTo(manager);
  const [a, b] = await Promise.all([remoteGuest(manager.address, TOKEN), remoteGuest(manager.address, TOKEN)]);
  const [wa, wb] = [await assigned.of(a.sessionId), await assigned.of(b.sessionId)];
  assert.is.not(wa, wb, 'the least-used worker serves each guest');
  const byId = new Map(manager.workers.map((w) => [w.id, w]));
  for (const [id, { channel }] of [[wa, a], [wb, b]] as const) {
    const w = byId.get(id);
    assert.ok(w, `assigned worker ${id} is listed`);
    assert.is(channel.kind, 'tcp');
    assert.is(w!.sessions, 1);
    // The worker's welcome names its process: the guest really talks to that pool process.
    assert.ok(channel.workerId.startsWith(`${w!.pid}-`), `${channel.workerId} is worker pid ${w!.pid}`);
  }
  const [ra, rb] = await within(Promise.all([runToyaccDemo(a.guest.api, options), runToyaccDemo(b.guest.api, options)]), 30_000, 'demo');
  assert.equal(ra, want);
  assert.equal(rb, want);
  assert.is(ra.devices.length, 2);
  await a.guest.close();
  await b.guest.close();
});

test('pool: a worker killed with -9 is noticed and replaced; a new guest then works', async () => {
  const before = manager.workers;
  const victim = before[0]!;
  const survivor = before[1]!;
  const replaced = nextEvent(manager, (e): e is Extract<ManagerEvent, { type: 'worker-replaced' }> => e.type === 'worker-replaced', 20_000);
  const exited = nextEvent(manager, (e): e is Extract<ManagerEvent, { type: 'worker-exited' }> => e.type === 'worker-exited', 20_000);
  process.kill(victim.pid, 'SIGKILL');
  const death = await exited;
  assert.is(death.worker.pid, victim.pid);
  assert.is(death.exit, 'SIGKILL');
  assert.is(death.expected, false);
  const { old, worker } = await replaced;
  assert.is(old.pid, victim.pid);
  assert.is.not(worker.pid, victim.pid);
  assert.is.not(worker.pid, process.pid);
  assert.ok(alive(worker.pid), 'the replacement runs');
  await assertGone(victim.pid);
  const pids = manager.workers.map((w) => w.pid).sort();
  assert.equal(pids, [survivor.pid, worker.pid].sort());
  assert.is(manager.replacements, 1);
  assert.ok(log.some((l) => l.includes(`(pid ${victim.pid}) replaced by ${worker.id} (pid ${worker.pid})`)), log.join('\n'));
  // The fresh worker has no sessions: the next guest lands there, and the demo still gives the local results.
  const options = { elements: 17, rounds: 2 };
  const want = await localDemo(options);
  const assigned = assignedTo(manager);
  const g = await remoteGuest(manager.address, TOKEN);
  assert.is(await assigned.of(g.sessionId), worker.id);
  assert.ok(g.channel.workerId.startsWith(`${worker.pid}-`));
  assert.equal(await within(runToyaccDemo(g.guest.api, options), 30_000, 'demo'), want);
  await g.guest.close();
});

test('refusals: bad tokens, spec mismatches, protocol errors and garbage get coded errors; the manager goes on', async () => {
  const pids = manager.workers.map((w) => w.pid).sort();
  const refusals: ManagerEvent[] = [];
  const sub = manager.events.pipe(filter((e) => e.type === 'refused')).subscribe((e) => refusals.push(e));
  try {
    assert.is((await rejectionOf(requestWorker(manager.address, toyaccSpec, 's-wrong-token', 'not-the-token', 5000))).code, 'ERR_AVA_AUTH');
    assert.is((await rejectionOf(requestWorker(manager.address, toyaccSpec, 's-no-token', undefined, 5000))).code, 'ERR_AVA_AUTH');
    const otherHash = { ...toyaccSpec, hash: '0'.repeat(64) } as ApiSpec;
    assert.is((await rejectionOf(requestWorker(manager.address, otherHash, 's-hash', TOKEN, 5000))).code, 'ERR_AVA_SPEC_MISMATCH');
    // opencl is a shipped spec, but not in this manager's pool; 'nope' is no spec at all.
    assert.is((await rejectionOf(requestWorker(manager.address, openclSpec, 's-opencl', TOKEN, 5000))).code, 'ERR_AVA_CONFIG');
    await expectRefusal(manager.address, assignFrame({ spec: 'nope' }), 'ERR_AVA_CONFIG');
    await expectRefusal(manager.address, assignFrame({ spec: 'constructor' }), 'ERR_AVA_CONFIG');
    await expectRefusal(manager.address, assignFrame({ v: PROTOCOL_VERSION + 1 }), 'ERR_AVA_PROTOCOL_VERSION');
    await expectRefusal(manager.address, assignFrame({ token: 'x'.repeat(5000) }), 'ERR_AVA_AUTH');
    await expectRefusal(manager.address, assignFrame({ spec: 42 }), 'ERR_AVA_BAD_FRAME');
    await expectRefusal(manager.address, encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, spec: 'toyacc', hash: toyaccSpec.hash, session: 's' }), 'ERR_AVA_HANDSHAKE');
    // Garbage: undecodable CBOR in a frame, a frame length over the manager's limit, an HTTP request, silence.
    await expectRefusal(manager.address, Buffer.from([0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]), 'ERR_AVA_BAD_FRAME');
    await expectRefusal(manager.address, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), 'ERR_AVA_FRAME_TOO_LARGE');
    await expectRefusal(manager.address, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'ERR_AVA_FRAME_TOO_LARGE');
    await expectRefusal(manager.address, undefined, 'ERR_AVA_HANDSHAKE', 5000);
    // Half a frame, then nothing: closed after the request timeout like silence.
    await expectRefusal(manager.address, Buffer.from([0, 0, 1, 0, 0xa1]), 'ERR_AVA_HANDSHAKE', 5000);
  } finally {
    sub.unsubscribe();
  }
  assert.ok(refusals.length >= 13, `refusals seen as events: ${refusals.length}`);
  // Nothing above hurt the workers, and the manager still serves.
  assert.equal(manager.workers.map((w) => w.pid).sort(), pids);
  const placed = await requestWorker(manager.address, toyaccSpec, 's-after', TOKEN, 5000);
  assert.ok(manager.workers.some((w) => w.id === placed.worker));
});

// ------------------------------------------------------------------------------------------------ on demand, unix

test('no pool, unix socket: one worker per spec, started on first request and reused; a dead one is started anew', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ava-mgr-test-'));
  try {
    const path = join(dir, 'manager.sock');
    const lines: string[] = [];
    const m = await Manager.start({ address: { kind: 'unix', path }, specs: ['toyacc'], log: (l) => lines.push(l) });
    others.push(m);
    assert.is(m.workers.length, 0, 'no worker before the first request');
    const [p1, p2] = await Promise.all([
      requestWorker(m.address, toyaccSpec, 'u1', undefined, 15_000),
      requestWorker(m.address, toyaccSpec, 'u2', undefined, 15_000),
    ]);
    assert.is(p1.worker, p2.worker, 'concurrent first requests share one start');
    assert.is(m.workers.length, 1);
    const first = m.workers[0]!;
    strayPids.add(first.pid);
    assert.is(first.pool, false);
    assert.is(first.sessions, 2);
    assert.is(p1.address.kind, 'unix');
    const options = { elements: 17, rounds: 1 };
    const assigned = assignedTo(m);
    const g = await remoteGuest(m.address, undefined);
    assert.is(g.channel.kind, 'unix');
    assert.is(await assigned.of(g.sessionId), first.id, 'reused');
    assert.ok(g.channel.workerId.startsWith(`${first.pid}-`));
    assert.equal(await within(runToyaccDemo(g.guest.api, options), 30_000, 'demo'), await localDemo(options));
    await g.guest.close();
    // kill -9: noticed, not replaced at once (no pool), the next request starts a new worker.
    const exited = nextEvent(m, (e): e is Extract<ManagerEvent, { type: 'worker-exited' }> => e.type === 'worker-exited', 20_000);
    process.kill(first.pid, 'SIGKILL');
    assert.is((await exited).worker.pid, first.pid);
    assert.is(m.workers.length, 0);
    assert.is(m.replacements, 0);
    const p3 = await requestWorker(m.address, toyaccSpec, 'u3', undefined, 15_000);
    assert.is.not(p3.worker, first.id);
    const second = m.workers[0]!;
    strayPids.add(second.pid);
    assert.is.not(second.pid, first.pid);
    const ended = later(firstValueFrom(m.events.pipe(toArray(), timeout(20_000))));
    await within(m.close(), 15_000, 'close');
    assert.ok((await ended).some((e) => e.type === 'worker-exited' && e.worker.pid === second.pid && e.expected));
    await assertGone(second.pid);
    assert.not.ok(existsSync(path), 'the socket file is removed');
    assert.is((await rejectionOf(requestWorker(m.address, toyaccSpec, 'u4', undefined, 2000))).code, 'ERR_AVA_CONNECT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------ shutdown

test('close(): every worker process the pool manager ran is gone, and nothing listens', async () => {
  const running = manager.workers.map((w) => w.pid);
  assert.is(running.length, 2);
  assert.ok(everyPid.size >= 3, `the pool ran ${everyPid.size} workers (two, then a replacement)`);
  await within(manager.close(), 15_000, 'close');
  assert.is(manager.workers.length, 0);
  for (const pid of everyPid) await assertGone(pid, 1000);
  assert.is((await rejectionOf(requestWorker(manager.address, toyaccSpec, 'late', TOKEN, 2000))).code, 'ERR_AVA_CONNECT');
  await manager.close(); // idempotent
});

// ------------------------------------------------------------------------------------------------ the CLI

const ENTRY = fileURLToPath(new URL('../../src/cli/run-manager.ts', import.meta.url));

function runCliProcess(args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; stderr: () => string; exited: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => stderr, exited };
}

test('CLI: listens, hands out a pool worker, stops it on SIGTERM and exits 0', async () => {
  const env = { ...process.env };
  delete env.AVA_TOKEN;
  const cli = runCliProcess(['--addr', '127.0.0.1:0', '--pool', '1', '--spec', 'toyacc'], env);
  const line = await within(new Promise<string>((resolve, reject) => {
    createInterface({ input: cli.child.stdout! }).once('line', resolve);
    void cli.exited.then((e) => reject(new Error(`ava-manager exited (${e.code ?? e.signal}): ${cli.stderr()}`)));
  }), 30_000, 'listening line');
  const ready = JSON.parse(line) as { event: string; address: string; pid: number; pool: number };
  assert.is(ready.event, 'listening');
  assert.is(ready.pid, cli.child.pid);
  assert.is(ready.pool, 1);
  const address = parseAddress(ready.address);
  assert.ok(address.kind === 'tcp' && address.port > 0, ready.address);
  const started = /worker (\S+) started: pid (\d+)/.exec(cli.stderr());
  assert.ok(started, `a worker start is logged: ${cli.stderr()}`);
  const workerPid = Number(started![2]);
  strayPids.add(workerPid);
  assert.ok(alive(workerPid));
  const options = { elements: 17, rounds: 1 };
  const g = await remoteGuest(address, undefined);
  assert.is((await requestWorker(address, toyaccSpec, 'probe', undefined, 5000)).worker, started![1], 'the logged worker is the one handed out');
  assert.ok(g.channel.workerId.startsWith(`${workerPid}-`), 'the guest talks to the logged worker process');
  assert.equal(await within(runToyaccDemo(g.guest.api, options), 30_000, 'demo'), await localDemo(options));
  await g.guest.close();
  cli.child.kill('SIGTERM');
  const exit = await within(cli.exited, 15_000, 'exit after SIGTERM');
  assert.equal(exit, { code: 0, signal: null }, cli.stderr());
  assert.match(cli.stderr(), /SIGTERM: stopping/);
  assert.match(cli.stderr(), /stopped/);
  await assertGone(workerPid);
});

test('CLI: --help exits 0; a bad --pool or --spec exits 2 with ERR_AVA_CONFIG', async () => {
  const help = runCliProcess(['--help']);
  let out = '';
  help.child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  assert.equal(await within(help.exited, 20_000, 'help'), { code: 0, signal: null });
  assert.match(out, /^Usage: ava-manager/);
  for (const args of [['--pool', 'many'], ['--spec', 'toyacc,cuda9'], ['--addr', 'nowhere:port'], ['--bogus']]) {
    const bad = runCliProcess(args);
    assert.equal(await within(bad.exited, 20_000, args.join(' ')), { code: 2, signal: null }, args.join(' '));
    assert.match(bad.stderr(), /ava-manager: ERR_AVA_CONFIG: /);
  }
});

uvuTest.run();
