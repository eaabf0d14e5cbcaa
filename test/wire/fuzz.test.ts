/**
 * A worker process under attack. One healthy guest session runs the toyacc demo in a loop while an attacker, on raw
 * unix sockets of its own, sends what fast-check makes: random bytes, random bodies behind a good length prefix,
 * frames before the hello, bad hellos, well-formed but wrong frames after a good hello (unknown functions, wrong
 * argument counts, forged handles, huge counts, negative ids, frames only workers send), and mutations (flipped,
 * inserted, deleted bytes) of the encodeFrame output of a real recorded session.
 *
 * Every attack must end within a bound: with an error frame and the worker closing the connection, or, for calls of
 * a welcomed session, with a reply carrying an error for each wrong call (then the attacker hangs up). Every few
 * attacks the healthy session must still compute the native result and the worker process must still be alive; at
 * the end no native object may be left behind. Then a few targeted attacks on limits.
 *
 * node --import tsx test/wire/fuzz.test.ts
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { test as uvuTest } from 'uvu';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TQ } from '../../fixtures/toyacc/constants.js';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import type { ToyaccDemoResult } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Guestlib } from '../../src/guest/open.js';
import { connectSocketChannel } from '../../src/transport/connect.js';
import type { FrameLink } from '../../src/transport/link.js';
import { RemoteChannel } from '../../src/transport/remote.js';
import { FrameReader, decodeBody, encodeFrame } from '../../src/wire/codec.js';
import type { Frame, WireValue } from '../../src/wire/frames.js';
import { PROTOCOL_VERSION } from '../../src/wire/frames.js';
import { openNativeApi } from '../../src/worker/native-api.js';
import { serveLink } from '../../src/worker/serve.js';
import { spawnWorkerProcess } from '../../src/worker/spawn.js';
import { Worker } from '../../src/worker/worker.js';


const ATTACK_TIMEOUT_MS = 5_000;
const HEALTH_EVERY = 10;
const DEMO = { elements: 256, rounds: 2 } as const;
const FN_NAMES = [...toyaccSpec.fn.keys()];

const address = { kind: 'unix' as const, path: join(tmpdir(), `ava-fuzz-${process.pid}.sock`) };
const worker = await spawnWorkerProcess({ spec: 'toyacc', listen: address });
process.once('exit', () => { worker.child.kill('SIGKILL'); rmSync(address.path, { force: true }); }); // a safety net: never leave the worker behind

let nativeDemo: ToyaccDemoResult;
{
  await using native = await openNativeApi(toyaccSpec);
  nativeDemo = await runToyaccDemo(native.api, DEMO);
}

// ------------------------------------------------------------------------------------------------ a recorded session

/** A pair of in-memory links; the guest side keeps the encodeFrame output of everything it sends. */
class MemoryLink implements FrameLink {
  peer!: MemoryLink;
  readonly recorded: Buffer[] | undefined;
  readonly #frames: ((f: Frame) => void)[] = [];
  readonly #closes: ((e?: Error) => void)[] = [];
  #closed = false;
  constructor(record: boolean) {
    this.recorded = record ? [] : undefined;
  }
  send(frame: Frame): void {
    if (this.#closed) return;
    const bytes = encodeFrame(frame);
    this.recorded?.push(bytes);
    const copy = decodeBody(bytes.subarray(4));
    setImmediate(() => { if (!this.peer.#closed) for (const l of this.peer.#frames) l(copy); });
  }
  onFrame(listener: (f: Frame) => void): void { this.#frames.push(listener); }
  onClose(listener: (e?: Error) => void): void { this.#closes.push(listener); }
  close(): void {
    for (const side of [this, this.peer]) {
      if (side.#closed) continue;
      side.#closed = true;
      setImmediate(() => { for (const l of side.#closes.splice(0)) l(); });
    }
  }
}

/** The frames a guest sends for the demo, an explicit-state read and a few queries, as encodeFrame gave them. */
async function recordSession(): Promise<Buffer[]> {
  await using local = await Worker.open({ spec: toyaccSpec });
  const guestSide = new MemoryLink(true);
  const workerSide = new MemoryLink(false);
  guestSide.peer = workerSide;
  workerSide.peer = guestSide;
  serveLink(local, workerSide);
  const channel = await RemoteChannel.open({ kind: 'unix', link: guestSide, spec: toyaccSpec, sessionId: 'recorded' });
  const lib = await openGuestlib(toyaccSpec, { channel });
  await runToyaccDemo(lib.api, { elements: 64, rounds: 1 });
  const { api } = lib;
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as never[];
  const context = (await api.tq_create_context!(2, devices)).ret;
  const buffer = (await api.tq_create_buffer!(context, TQ.MEM_COPY_HOST, 32, new Uint8Array(32).fill(7))).ret as { id: number };
  await lib.session.extractState(buffer.id);
  await api.tq_get_buffer_info!(buffer, TQ.BUFFER_SIZE, 8, new Uint8Array(8));
  await lib.close();
  return guestSide.recorded!;
}
const recorded = await recordSession();
assert.ok(recorded.length > 8 && (decodeBody(recorded[0]!.subarray(4)) as Frame).t === 'hello', 'the recording starts with a hello');

// ------------------------------------------------------------------------------------------------ the healthy session

const healthy: Guestlib = await openGuestlib(toyaccSpec, {
  channel: await connectSocketChannel({ address: worker.address, spec: toyaccSpec, sessionId: 'healthy' }),
});
let demos = 0;
let healthyError: unknown;
let stopHealthy = false;
const healthyLoop = (async () => {
  while (!stopHealthy) {
    const result = await runToyaccDemo(healthy.api, DEMO);
    assert.equal(result, nativeDemo, `healthy demo #${demos}`);
    demos++;
  }
})().catch((error: unknown) => { healthyError = error; });

async function waitFor(condition: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) assert.unreachable(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function workerAlive(): boolean {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return false;
  try {
    process.kill(worker.pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The worker process is alive and the healthy session completes another correct demo. */
async function checkHealth(where: string): Promise<void> {
  assert.ok(workerAlive(), `the worker process is alive (${where})`);
  const before = demos;
  await waitFor(() => demos > before || healthyError !== undefined, 20_000, `the healthy session completes a demo (${where})`);
  if (healthyError !== undefined) {
    const e = healthyError as Error & { code?: string };
    assert.unreachable(`the healthy session failed (${where}): ${e.code ?? ''} ${e.message}`);
  }
}

// ------------------------------------------------------------------------------------------------ one attack

interface Outcome {
  readonly frames: Frame[];
  /** The connection closed (by the worker, or after the attacker hung up). */
  closed: boolean;
  /** The `until` condition of the attack was met. */
  met: boolean;
  /** The attacker's FrameReader refused what the worker sent. */
  readerError?: string;
}

/**
 * Connects, sends `bytes`, and waits (at most ATTACK_TIMEOUT_MS) for the worker to close, or until what it sent meets
 * `until`. `hangUp` half-closes right after sending, for bytes after which the worker may rightly wait for more (a
 * frame cut short).
 */
function attack(bytes: Buffer, options: { hangUp?: boolean; until?: (frames: readonly Frame[]) => boolean } = {}): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const socket: Socket = connect(address.path);
    const reader = new FrameReader();
    const outcome: Outcome = { frames: [], closed: false, met: false };
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      socket.destroy();
      reject(new Error(`attack not answered within ${ATTACK_TIMEOUT_MS} ms: received ${outcome.frames.map((f) => f.t).join(',') || 'nothing'}`));
    }, ATTACK_TIMEOUT_MS);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (outcome.readerError) return;
      try {
        outcome.frames.push(...reader.push(chunk));
        const failed = (reader as { failed?: unknown }).failed; // the reader's way to refuse a frame
        if (failed) throw failed;
        if (options.until?.(outcome.frames)) {
          outcome.met = true;
          finish();
        }
      } catch (error) {
        outcome.readerError = AvaError.isAvaError(error) ? error.code : String(error);
        finish(); // nothing after a refused frame can be read
      }
    });
    socket.on('close', () => {
      outcome.closed = true;
      finish();
    });
    socket.once('connect', () => {
      socket.write(bytes);
      if (options.hangUp) socket.end();
    });
  });
}

const errorCodes = (o: Outcome): string[] => o.frames.flatMap((f) => (f.t === 'error' ? [f.error.code] : []));
const welcomed = (o: Outcome): boolean => o.frames.some((f) => f.t === 'welcome');
const hello = (fields: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ t: 'hello', v: PROTOCOL_VERSION, spec: toyaccSpec.name, hash: toyaccSpec.hash, session: `attacker-${randomUUID()}`, ...fields });
const frameBytes = (f: unknown): Buffer => encodeFrame(f as Frame);

const stats: Record<string, number> = {};
let attacks = 0;
/** Counts an attack and checks health every HEALTH_EVERY attacks. */
async function counted(category: string): Promise<void> {
  stats[category] = (stats[category] ?? 0) + 1;
  attacks++;
  if (attacks % HEALTH_EVERY === 0) await checkHealth(`after attack #${attacks} (${category})`);
}

/** The worker answered junk before any hello: no welcome, an error frame or a close, and it closed. */
function assertRefusedBeforeHello(o: Outcome, what: string, codes?: readonly string[]): void {
  assert.not.ok(welcomed(o), `${what}: no session was opened`);
  assert.ok(o.closed, `${what}: the worker closed the connection`);
  assert.is(o.readerError, undefined, `${what}: the worker sent only frames a guest accepts`);
  if (codes) {
    const got = errorCodes(o);
    assert.ok(got.length === 1 && codes.includes(got[0]!), `${what}: one error frame with ${codes.join(' or ')}, got [${got.join(', ')}]`);
  }
}

// ------------------------------------------------------------------------------------------------ arbitraries

const anyValue: fc.Arbitrary<WireValue> = fc.letrec<{ v: WireValue }>((tie) => ({
  v: fc.oneof({ maxDepth: 3, depthIdentifier: 'v' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 16 }),
    fc.constantFrom<WireValue>(2 ** 31, 2 ** 32, 2 ** 53 - 1, -(2 ** 53), 2n ** 64n - 1n, -(2n ** 63n)),
    fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('handle', 'id', 'bytes', 'x'), tie('v'), { maxKeys: 2 })),
})).v;

/** Handle ids a fresh session never issued. */
const forgedId = fc.oneof(fc.integer({ min: 3, max: 2 ** 40 }), fc.integer({ min: -(2 ** 40), max: 0 }),
  fc.constantFrom<WireValue>(2 ** 53 - 1, -(2 ** 53) + 1, 1.5, 'device', null, [1], { handle: 1 }));
const huge = fc.constantFrom<WireValue>(2 ** 31 + 1, 2 ** 32, 2 ** 53 - 1, 2n ** 64n - 1n, -1, 1.5, -(2 ** 31));

/** A wrong call of a welcomed session and the error code its reply must carry ('*': any error or failing status). */
interface WrongCall { readonly call: Record<string, unknown>; readonly expect: string }

const fresh = (fn: string, args: WireValue[], retId: WireValue = null, async = false): Record<string, unknown> => ({ t: 'call', fn, args, retId, async });
const wrongCall: fc.Arbitrary<WrongCall> = fc.oneof(
  // Unknown functions.
  fc.tuple(fc.string({ minLength: 1, maxLength: 40 }).filter((n) => !toyaccSpec.fn.has(n)), fc.array(anyValue, { maxLength: 4 }), fc.boolean())
    .map(([fn, args, async]) => ({ call: fresh(fn, args, null, async), expect: 'ERR_AVA_BAD_CALL' })),
  // Wrong argument counts.
  fc.tuple(fc.constantFrom(...FN_NAMES), fc.array(anyValue, { maxLength: 9 }), fc.boolean())
    .filter(([fn, args]) => toyaccSpec.fn.get(fn)!.args.length !== args.length)
    .map(([fn, args, async]) => ({ call: fresh(fn, args, null, async), expect: 'ERR_AVA_BAD_CALL' })),
  // Forged handles, in the first argument (so nothing else is looked at first).
  fc.tuple(forgedId, fc.nat({ max: 12 }), fc.boolean(), fc.integer({ min: 100, max: 2 ** 30 })).map(([id, which, async, retId]) => {
    const calls: [string, WireValue[], WireValue][] = [
      ['tq_get_device_info', [id, TQ.DEVICE_UNITS, 4, true, true], null],
      ['tq_get_context_info', [id, TQ.CONTEXT_REFCOUNT, 4, true, true], null],
      ['tq_get_buffer_info', [id, TQ.BUFFER_SIZE, 8, true, true], null],
      ['tq_get_program_info', [id, TQ.PROGRAM_REFCOUNT, 4, true, true], null],
      ['tq_finish', [id], null],
      ['tq_release_context', [id], null],
      ['tq_retain_buffer', [id], null],
      ['tq_create_queue', [id, id, true], retId],
      ['tq_create_kernel', [id, 'fill', true], retId],
      ['tq_enqueue_kernel', [id, id, 16], null],
      ['tq_set_kernel_arg', [id, 0, 8, { handle: 3 }], null],
      ['tq_enqueue_read', [id, id, 0, 4, true], null],
      ['tq_enqueue_write', [id, id, 0, 4, new Uint8Array(4)], null],
    ];
    const [fn, args, ret] = calls[which]!;
    return { call: fresh(fn, args, ret, async), expect: 'ERR_AVA_UNKNOWN_HANDLE' };
  }),
  // Huge counts and sizes (after a good tq_get_devices, so the device ids are real).
  fc.tuple(huge, fc.nat({ max: 3 })).map(([n, which]) => {
    const calls: [string, WireValue[]][] = [
      ['tq_get_devices', [n, [1, 2], true]],
      ['tq_create_context', [n, [1, 2], true]],
      ['tq_get_device_info', [1, TQ.DEVICE_NAME, n, true, true]],
      ['tq_get_devices', [2, Array(3).fill(n), true]],
    ];
    const [fn, args] = calls[which]!;
    return { call: fresh(fn, args, fn === 'tq_create_context' ? 7_000 : null), expect: '*' };
  }),
  // Negative or reused ids for new handles.
  fc.tuple(fc.integer({ min: -(2 ** 40), max: 0 }), fc.boolean()).map(([id, async]) => ({
    call: fresh('tq_create_context', [1, [1], true], id, async), expect: 'ERR_AVA_BAD_CALL',
  })),
  fc.integer({ min: -(2 ** 40), max: 0 }).map((id) => ({ call: fresh('tq_get_devices', [2, [id, id - 1], true]), expect: 'ERR_AVA_BAD_CALL' })),
  // Ids 1 and 2 are taken by a context-free kind: a proposed id already bound to another kind is refused. (Devices
  // may be asked for again with their own ids: interned objects keep their id, as replay relies on.)
  fc.constant({ call: fresh('tq_create_context', [1, [1], true], 1), expect: 'ERR_AVA_BAD_CALL' }),
  // Explicit state of handles that do not exist.
  fc.tuple(fc.constantFrom('extract' as const, 'restore' as const), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.uint8Array({ maxLength: 16 }))
    .map(([op, handle, bytes]) => ({ call: { t: 'control', op, handle, bytes }, expect: 'control-error' })),
);

/** A frame that ends a welcomed session with an error frame of the given code. */
const fatalFrame: fc.Arbitrary<[unknown, string]> = fc.oneof(
  fc.integer({ min: -(2 ** 40), max: -1 }).map((seq) => [{ t: 'call', seq, fn: 'tq_finish', args: [1] }, 'ERR_AVA_BAD_FRAME'] as [unknown, string]),
  fc.constant([hello(), 'ERR_AVA_BAD_FRAME'] as [unknown, string]),
  fc.constantFrom<unknown>(
    { t: 'reply', seq: 0, ret: 0 }, { t: 'welcome', v: 1, worker: 'w', session: 's' }, { t: 'event', callback: 1, args: [] },
    { t: 'controlReply', id: 1 }, { t: 'error', error: { name: 'E', code: 'C', message: 'm' } }, { t: 'assigned', address: 'a', worker: 'w' },
    { t: 'assign', v: 1, spec: 'toyacc', hash: 'h', session: 's' },
  ).map((f) => [f, 'ERR_AVA_BAD_FRAME'] as [unknown, string]),
  fc.array(anyValue, { maxLength: 3 }).map((args) => [{ t: 'batch', calls: [{ seq: 1, fn: 'tq_finish', args }, { seq: -1, fn: 'x', args }] }, 'ERR_AVA_BAD_FRAME'] as [unknown, string]),
  fc.integer({ min: 2 ** 30 + 1, max: 2 ** 32 - 1 }).map((n) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(n, 0);
    return [head, 'ERR_AVA_FRAME_TOO_LARGE'] as [unknown, string];
  }),
);

/** Well-formed frames that are not a hello, for a connection that has not said hello. */
const notHello: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(fc.constantFrom(...FN_NAMES), fc.array(anyValue, { maxLength: 5 })).map(([fn, args]) => ({ t: 'call', seq: 0, fn, args })),
  fc.constant({ t: 'batch', calls: [{ seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], async: true }] }),
  fc.constantFrom('extract', 'restore', 'ping', 'close').map((op) => ({ t: 'control', id: 1, op, handle: 1 })),
  fc.constantFrom<unknown>({ t: 'reply', seq: 0 }, { t: 'welcome', v: 1, worker: 'w', session: 's' }, { t: 'event', callback: 0, args: [] },
    { t: 'error', error: { name: 'E', code: 'C', message: 'm' } }, { t: 'assign', v: 1, spec: 'toyacc', hash: toyaccSpec.hash, session: 's' }),
);

/** Bad hellos and the code each must be refused with. */
const badHello: fc.Arbitrary<[unknown, string]> = fc.oneof(
  fc.integer().filter((v) => v !== PROTOCOL_VERSION).map((v) => [hello({ v }), 'ERR_AVA_PROTOCOL_VERSION'] as [unknown, string]),
  fc.string({ maxLength: 64 }).filter((h) => h !== toyaccSpec.hash).map((hash) => [hello({ hash }), 'ERR_AVA_SPEC_MISMATCH'] as [unknown, string]),
  fc.string({ maxLength: 16 }).filter((s) => s !== toyaccSpec.name).map((spec) => [hello({ spec }), 'ERR_AVA_SPEC_MISMATCH'] as [unknown, string]),
  fc.constantFrom<Record<string, unknown>>({ session: '' }, { session: 'x'.repeat(201) }, { spec: 5 }, { hash: null }, { token: 12345678 }, { v: '1' }, { v: 1.5 })
    .map((over) => [hello(over), 'ERR_AVA_BAD_FRAME'] as [unknown, string]),
  // The healthy session's id: an attacker cannot join it.
  fc.constant([hello({ session: 'healthy' }), 'ERR_AVA_BAD_CALL'] as [unknown, string]),
);

interface Mutation { readonly op: 'flip' | 'insert' | 'delete'; readonly at: number; readonly byte: number; readonly len: number }
const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('flip' as const, 'insert' as const, 'delete' as const), at: fc.nat(), byte: fc.integer({ min: 1, max: 255 }), len: fc.integer({ min: 1, max: 6 }),
});

function mutate(bytes: Buffer, mutations: readonly Mutation[], from: number): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const span = out.byteLength - from;
    if (span <= 0) break;
    const at = from + (m.at % span);
    if (m.op === 'flip') out[at] = out[at]! ^ m.byte;
    else if (m.op === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.alloc(m.len, m.byte), out.subarray(at)]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.byteLength, at + m.len))]);
  }
  return out;
}

const runs = (numRuns: number, seed?: number): fc.Parameters<unknown> => ({ numRuns, endOnFailure: true, includeErrorInReport: true, ...(seed === undefined ? {} : { seed }) });

// ------------------------------------------------------------------------------------------------ the fuzz

const started = performance.now();

test('random bytes: the worker closes the connection (after the attacker hangs up) and opens no session', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (bytes) => {
    const o = await attack(Buffer.from(bytes), { hangUp: true });
    assertRefusedBeforeHello(o, 'random bytes');
    await counted('random bytes');
  }), runs(40));
});

test('random bodies behind a good length prefix: one error frame, then the worker closes', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 400 }), async (body) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.byteLength, 0);
    const o = await attack(Buffer.concat([head, body]));
    assertRefusedBeforeHello(o, 'a random body', ['ERR_AVA_BAD_FRAME', 'ERR_AVA_PROTOCOL_VERSION', 'ERR_AVA_HANDSHAKE']);
    await counted('random bodies');
  }), runs(30));
});

test('frames before the hello: ERR_AVA_HANDSHAKE, then the worker closes', async () => {
  await fc.assert(fc.asyncProperty(notHello, fc.array(notHello, { maxLength: 2 }), async (first, more) => {
    const o = await attack(Buffer.concat([first, ...more].map(frameBytes)));
    assertRefusedBeforeHello(o, 'a frame before the hello', ['ERR_AVA_HANDSHAKE']);
    await counted('before hello');
  }), runs(25));
});

test('bad hellos (versions, specs, fields, a session id in use): refused with their code, then closed', async () => {
  await fc.assert(fc.asyncProperty(badHello, async ([frame, code]) => {
    const o = await attack(frameBytes(frame));
    assertRefusedBeforeHello(o, `a bad hello (${code})`, [code]);
    await counted('bad hello');
  }), runs(30));
});

/** A hello, a good tq_get_devices (ids 1 and 2), then the wrong calls; their seqs are 1.. and control ids 1.. */
function welcomedSession(wrong: readonly WrongCall[]): { frames: Buffer[]; calls: Map<number, WrongCall>; controls: Map<number, WrongCall> } {
  const frames: Buffer[] = [frameBytes(hello()), frameBytes({ t: 'call', seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null })];
  const calls = new Map<number, WrongCall>();
  const controls = new Map<number, WrongCall>();
  wrong.forEach((w, i) => {
    if (w.call.t === 'control') controls.set(i + 1, w);
    else calls.set(i + 1, w);
    frames.push(frameBytes({ ...w.call, [w.call.t === 'control' ? 'id' : 'seq']: i + 1 }));
  });
  return { frames, calls, controls };
}

const show = (v: unknown): string => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.byteLength} bytes>` : x));

test('wrong frames of a welcomed session: each answered with its error, the session goes on', async () => {
  await fc.assert(fc.asyncProperty(fc.array(wrongCall, { minLength: 1, maxLength: 6 }), async (wrong) => {
    const { frames, calls, controls } = welcomedSession(wrong);
    const answered = (got: readonly Frame[]): boolean =>
      [0, ...calls.keys()].every((seq) => got.some((f) => f.t === 'reply' && f.seq === seq)) &&
      [...controls.keys()].every((id) => got.some((f) => f.t === 'controlReply' && f.id === id));
    const o = await attack(Buffer.concat(frames), { until: answered });
    assert.ok(welcomed(o), 'a good hello is welcomed');
    assert.is(o.readerError, undefined, 'the worker sent only frames a guest accepts');
    assert.ok(o.met, `every call and control request was answered (got ${o.frames.map((f) => f.t).join(',')}; ${o.closed ? 'closed' : 'open'})`);
    assert.equal(errorCodes(o), [], 'no error frame: wrong calls do not end the session');
    const replies = new Map(o.frames.flatMap((f) => (f.t === 'reply' ? [[f.seq, f] as const] : [])));
    const controlReplies = new Map(o.frames.flatMap((f) => (f.t === 'controlReply' ? [[f.id, f] as const] : [])));
    assert.is(replies.get(0)?.ret, TQ.SUCCESS, 'the good tq_get_devices succeeded');
    for (const [seq, w] of calls) {
      if (w.expect !== '*') assert.is(replies.get(seq)!.error?.code, w.expect, `call #${seq} ${show(w.call)}: ${w.expect}`);
    }
    for (const [id, w] of controls) {
      assert.ok(controlReplies.get(id)!.error !== undefined, `control #${id} ${show(w.call)} on a handle that does not exist: an error`);
    }
    await counted('welcomed, wrong frames');
  }), runs(45));
});

test('a fatal frame after good ones: one error frame with its code, then the worker closes', async () => {
  await fc.assert(fc.asyncProperty(fc.array(wrongCall, { maxLength: 3 }), fatalFrame, async (wrong, [fatal, code]) => {
    const { frames } = welcomedSession(wrong);
    const o = await attack(Buffer.concat([...frames, Buffer.isBuffer(fatal) ? fatal : frameBytes(fatal)]));
    assert.ok(o.closed, 'the worker closed the connection');
    assert.is(o.readerError, undefined, 'the worker sent only frames a guest accepts');
    assert.equal(errorCodes(o), [code], `one error frame with ${code} for ${show(fatal).slice(0, 100)}`);
    await counted('welcomed, fatal frame');
  }), runs(20));
});

test('mutations of a recorded session: the worker stays up and every connection ends', async () => {
  const stream = Buffer.concat(recorded.slice(1));
  const boundaries: number[] = [];
  recorded.slice(1).reduce((at, f) => { boundaries.push(at + f.byteLength); return at + f.byteLength; }, 0);
  await fc.assert(fc.asyncProperty(fc.nat({ max: boundaries.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean(),
    async (upTo, mutations, mutateHello, onlyLast) => {
      // A fresh hello (its own session id), the recorded frames up to a frame boundary, then mutations: anywhere,
      // or only in the last frame (so the session before it is real), or in the hello.
      const helloBytes = frameBytes(hello());
      const body = stream.subarray(0, boundaries[upTo]);
      const lastStart = upTo === 0 ? 0 : boundaries[upTo - 1]!;
      const bytes = mutateHello
        ? Buffer.concat([mutate(helloBytes, mutations, 0), body])
        : Buffer.concat([helloBytes, mutate(body, mutations, onlyLast ? lastStart : 0)]);
      const o = await attack(bytes, { hangUp: true });
      assert.ok(o.closed, 'the connection ended');
      assert.is(o.readerError, undefined, 'the worker sent only frames a guest accepts');
      await counted('mutated recording');
    }), runs(90));
});

test('after the fuzz: the healthy session is correct, the worker is alive, within the time budget', async () => {
  await checkHealth('after the fuzz');
  console.log(`  ${attacks} attacks in ${((performance.now() - started) / 1000).toFixed(1)} s beside ${demos} healthy demos: ${JSON.stringify(stats)}`);
  assert.ok(attacks >= 150, `${attacks} attacks`);
});

test('attacks leave no native objects behind once their connections closed', async () => {
  stopHealthy = true;
  await healthyLoop;
  const live = async (): Promise<number> => Number((await healthy.api.tq_debug_live_objects!()).ret);
  let count = await live();
  const until = Date.now() + 5_000;
  while (count !== 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    count = await live();
  }
  assert.is(count, 0, 'native objects alive on the worker with only the (idle) healthy session left');
});

// ------------------------------------------------------------------------------------------------ targeted limits

test('a frame over maxFrameBytes is refused from its length prefix, before any of its body arrives', async () => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(2 ** 31, 0);
  const t0 = performance.now();
  const o = await attack(head);
  assertRefusedBeforeHello(o, 'a 2 GiB frame header', ['ERR_AVA_FRAME_TOO_LARGE']);
  // Not a speed target: a worker waiting for the 2 GiB body would never answer; this bound only ends the wait.
  assert.ok(performance.now() - t0 < 10_000, 'refused without waiting for the body');
});

test('a ping is answered only after every call and control request sent before it', async () => {
  // RemoteChannel.ping: "proves the worker is alive and has run every call sent before".
  const o = await attack(Buffer.concat([
    frameBytes(hello()),
    frameBytes({ t: 'call', seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null }),
    frameBytes({ t: 'call', seq: 1, fn: 'tq_create_context', args: [1, [1], true], retId: 10 }),
    frameBytes({ t: 'call', seq: 2, fn: 'tq_create_program', args: [10, 'fill axpy scale checksum', true], retId: 11 }),
    frameBytes({ t: 'call', seq: 3, fn: 'tq_build_program', args: [11, null], retId: null }), // blocking: runs off the event loop
    frameBytes({ t: 'control', id: 7, op: 'restore', handle: 12_345, bytes: new Uint8Array(4) }),
    frameBytes({ t: 'control', id: 8, op: 'ping' }),
  ]), { until: (got) => got.some((f) => f.t === 'controlReply' && f.id === 8) });
  assert.ok(o.met, 'the ping was answered');
  const at = (p: (f: Frame) => boolean): number => o.frames.findIndex(p);
  const pingAt = at((f) => f.t === 'controlReply' && f.id === 8);
  const buildAt = at((f) => f.t === 'reply' && f.seq === 3);
  const restoreAt = at((f) => f.t === 'controlReply' && f.id === 7);
  assert.ok(buildAt >= 0 && buildAt < pingAt, `the blocking tq_build_program sent before the ping was answered before it (order: ${o.frames.map((f) => (f.t === 'reply' ? `reply#${f.seq}` : f.t === 'controlReply' ? `control#${f.id}` : f.t)).join(', ')})`);
  assert.ok(restoreAt >= 0 && restoreAt < pingAt, 'the restore sent before the ping was answered before it');
});

test('before its hello, a peer cannot make the worker wait for (and buffer) a frame larger than any hello (64 KiB)', async () => {
  // An unauthenticated tcp peer may do this from anywhere, many times over: each such frame may be buffered up to
  // maxFrameBytes (1 GiB by default) before the hello that carries the token is even looked at.
  const head = Buffer.alloc(4);
  head.writeUInt32BE(64 * 1024 * 1024, 0);
  let o: Outcome | undefined;
  try {
    o = await attack(Buffer.concat([head, Buffer.alloc(1024, 0xa5)]));
  } catch (error) {
    assert.unreachable(`a 64 MiB frame announced before the hello is not refused: ${(error as Error).message}`);
  }
  assertRefusedBeforeHello(o!, 'a 64 MiB frame before the hello', ['ERR_AVA_FRAME_TOO_LARGE']);
});

test('a call whose reply could not fit in a frame is answered with an error, not with an oversized frame', async () => {
  // tq_get_device_info with value_size just over 1 GiB and no size_ret: the worker allocates the out-buffer and
  // sends it back whole, a frame over every guest's maxFrameBytes (1 GiB by default).
  const size = 2 ** 30 + 64;
  const o = await attack(Buffer.concat([
    frameBytes(hello()),
    frameBytes({ t: 'call', seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null }),
    frameBytes({ t: 'call', seq: 1, fn: 'tq_get_device_info', args: [1, TQ.DEVICE_UNITS, size, true, null], retId: null }),
  ]), { until: (got) => got.some((f) => f.t === 'reply' && f.seq === 1) });
  assert.is(o.readerError, undefined, 'the worker sent no frame over the guest limit');
  const reply = o.frames.find((f) => f.t === 'reply' && f.seq === 1) as { error?: { code: string } } | undefined;
  assert.ok(reply?.error?.code?.startsWith('ERR_AVA_'), 'the call is refused with a coded error');
  assert.ok(workerAlive(), 'the worker is alive');
});

test('the worker is still alive and serves a new session; then it stops cleanly', async () => {
  assert.ok(workerAlive(), 'the worker process is alive');
  await using fresh = await openGuestlib(toyaccSpec, {
    channel: await connectSocketChannel({ address: worker.address, spec: toyaccSpec, sessionId: `after-${randomUUID()}` }),
  });
  assert.equal(await runToyaccDemo(fresh.api, DEMO), nativeDemo);
});

uvuTest.after(async () => {
  stopHealthy = true;
  await Promise.race([healthyLoop, new Promise((r) => setTimeout(r, 10_000))]);
  await Promise.race([healthy.close().catch(() => {}), new Promise((r) => setTimeout(r, 5_000))]);
  await worker.stop();
});

uvuTest.run();
