/**
 * The wire codec (src/wire/codec.ts): every frame type round-trips; the FrameReader reassembles frames from any
 * chunking; frames over the limit are refused from their length prefix alone; wrong protocol versions, malformed
 * fields and values outside the protocol (CBOR tags, undefined, nesting past maxDepth) are refused with a
 * WireFormatError and nothing else.
 *
 * node --import tsx test/wire/codec.test.ts
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AvaError } from '../../src/errors.js';
import { DEFAULT_LIMITS, FrameReader, WireFormatError, decodeBody, encodeBody, encodeBodyPieces, encodeFrame } from '../../src/wire/codec.js';
import type { WireLimits } from '../../src/wire/codec.js';
import type { Frame, WireValue } from '../../src/wire/frames.js';
import { PROTOCOL_VERSION } from '../../src/wire/frames.js';

// ------------------------------------------------------------------------------------------------ helpers

/** Byte strings compare by content whatever their class (the decoder gives Buffers); everything else as is. */
function plain(v: unknown): unknown {
  // The wire's rule: an integer a number holds exactly arrives as a number, whoever wrote it (a BigInt 5n included).
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** The frames of `bytes` pushed as the given chunks. */
function readAll(bytes: Buffer, cuts: readonly number[], limits: Partial<WireLimits> = {}): Frame[] {
  const reader = new FrameReader(limits);
  const frames: Frame[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.byteLength]) {
    frames.push(...reader.push(bytes.subarray(at, cut)));
    at = cut;
  }
  return frames;
}

/** The stable code of a refusal, or a description of something that is not a coded error. */
const codeOf = (error: unknown): string => (AvaError.isAvaError(error) ? error.code : `not a coded error: ${String(error)}`);

/**
 * Pushes `chunks` into `reader`, then an empty chunk; returns the frames that came out and the code of the refusal
 * ('none' without one). A reader refuses a bad frame by setting `failed` (or, in an earlier design, by throwing);
 * either way nothing after the bad frame comes out.
 */
function feed(reader: FrameReader, chunks: readonly Buffer[]): { frames: Frame[]; code: string } {
  const frames: Frame[] = [];
  try {
    for (const chunk of [...chunks, Buffer.alloc(0)]) {
      frames.push(...reader.push(chunk));
      const failed = (reader as { failed?: unknown }).failed;
      if (failed) return { frames, code: codeOf(failed) };
    }
  } catch (error) {
    return { frames, code: codeOf(error) };
  }
  return { frames, code: 'none' };
}

/** What decoding `body` throws: its code, or a description of a throw that is not a WireFormatError. */
function refusal(body: Uint8Array, limits: WireLimits = DEFAULT_LIMITS): string {
  try {
    decodeBody(body, limits);
  } catch (error) {
    if (error instanceof WireFormatError && AvaError.isAvaError(error)) return error.code;
    return `not a WireFormatError: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`;
  }
  return 'accepted';
}

const enc = (value: unknown): Uint8Array => encodeBody(value as Frame);

/** Encodes `frame` with the CBOR of the text `@@RAW@@` replaced by `raw` (hand-made CBOR the encoder never makes). */
function withRaw(frame: unknown, raw: Buffer): Buffer {
  const body = Buffer.from(enc(frame));
  const marker = Buffer.from([0x67, ...Buffer.from('@@RAW@@')]);
  const at = body.indexOf(marker);
  if (at < 0) throw new Error('marker not found');
  return Buffer.concat([body.subarray(0, at), raw, body.subarray(at + marker.byteLength)]);
}
const RAW = '@@RAW@@';

// ------------------------------------------------------------------------------------------------ arbitraries

const key = fc.stringMatching(/^[a-z][a-z0-9_]{0,7}$/);
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 10 }));
const leaf: fc.Arbitrary<WireValue> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(), fc.double(), text,
  fc.uint8Array({ maxLength: 40 }), fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
);
const { value } = fc.letrec<{ value: WireValue }>((tie) => ({
  value: fc.oneof({ maxDepth: 4, depthIdentifier: 'value' }, leaf,
    fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(key, tie('value'), { maxKeys: 4 })),
}));
const wireError = fc.record({ name: text, code: text, message: text, details: fc.dictionary(key, value, { maxKeys: 3 }) }, { requiredKeys: ['name', 'code', 'message'] });
const callFields = {
  seq: fc.nat(), fn: fc.string({ minLength: 1, maxLength: 40 }), args: fc.array(value, { maxLength: 8 }),
  retId: fc.option(fc.nat(), { nil: null }), async: fc.boolean(),
};
const call = fc.record({ t: fc.constant('call' as const), ...callFields }, { requiredKeys: ['t', 'seq', 'fn', 'args'] });
const session = fc.string({ minLength: 1, maxLength: 60 });

/** Every frame type, with random contents. */
const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ t: fc.constant('hello' as const), v: fc.constant(PROTOCOL_VERSION), spec: text, hash: text, session, token: text }, { requiredKeys: ['t', 'v', 'spec', 'hash', 'session'] }),
  fc.record({ t: fc.constant('welcome' as const), v: fc.constant(PROTOCOL_VERSION), worker: text, session: text }),
  call,
  fc.record({ t: fc.constant('batch' as const), calls: fc.array(fc.record(callFields, { requiredKeys: ['seq', 'fn', 'args'] }), { minLength: 1, maxLength: 5 }) }),
  fc.record({
    t: fc.constant('reply' as const), seq: fc.nat(), ret: value, outs: fc.dictionary(key, value, { maxKeys: 4 }), error: wireError, fn: text,
    timings: fc.record({ afterReceiveCommand: fc.double(), afterUnmarshal: fc.double(), afterExecution: fc.double(), afterMarshal: fc.double() }),
  }, { requiredKeys: ['t', 'seq'] }),
  fc.record({ t: fc.constant('event' as const), callback: fc.nat(), args: fc.array(value, { maxLength: 4 }) }),
  fc.record({ t: fc.constant('control' as const), id: fc.nat(), op: fc.constantFrom('extract' as const, 'restore' as const, 'ping' as const, 'close' as const), handle: fc.integer(), bytes: fc.uint8Array({ maxLength: 64 }) }, { requiredKeys: ['t', 'id', 'op'] }),
  fc.record({ t: fc.constant('controlReply' as const), id: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }), error: wireError }, { requiredKeys: ['t', 'id'] }),
  fc.record({ t: fc.constant('error' as const), error: wireError }),
  fc.record({ t: fc.constant('assign' as const), v: fc.constant(PROTOCOL_VERSION), spec: text, hash: text, session, token: text }, { requiredKeys: ['t', 'v', 'spec', 'hash', 'session'] }),
  fc.record({ t: fc.constant('assigned' as const), address: text, worker: text, token: text }, { requiredKeys: ['t', 'address', 'worker'] }),
) as fc.Arbitrary<Frame>;

// ------------------------------------------------------------------------------------------------ round trips

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const EXAMPLES: Record<Frame['t'], Frame> = {
  hello: { t: 'hello', v: PROTOCOL_VERSION, spec: 'toyacc', hash: 'ab'.repeat(32), session: 's-1', token: 'secret-token' },
  welcome: { t: 'welcome', v: PROTOCOL_VERSION, worker: '123-abcd', session: 's-1' },
  call: {
    t: 'call', seq: 7, fn: 'tq_enqueue_write', retId: 12, async: true,
    args: [0, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 2n ** 64n - 1n, -(2n ** 63n), 1.5, -0.25, 'text', 'ünï', bytes(1, 2, 3), bytes(), null, true, false,
      [1, [2, [3]]], { handle: 4 }, { id: 5, bytes: bytes(9) }],
  },
  batch: { t: 'batch', calls: [{ seq: 1, fn: 'tq_set_kernel_arg', args: [6, 0, 8, { handle: 7 }], retId: null, async: true }, { seq: 2, fn: 'tq_finish', args: [3], async: true, repeat: 2 }] },
  reply: {
    t: 'reply', seq: 7, ret: 0, outs: { count: 2, devices: [1, 2], value: bytes(4, 0, 0, 0), size_ret: 4 }, fn: 'tq_finish',
    timings: { afterReceiveCommand: 1700000000000.125, afterUnmarshal: 1700000000000.25, afterExecution: 1700000000000.5, afterMarshal: 1700000000001 },
  },
  event: { t: 'event', callback: 3, args: [{ handle: 5, kind: 'program' }, 0] },
  control: { t: 'control', id: 9, op: 'restore', handle: 5, bytes: bytes(1, 2, 3, 4) },
  controlReply: { t: 'controlReply', id: 9, bytes: bytes(5, 6) },
  error: { t: 'error', error: { name: 'HandleError', code: 'ERR_AVA_UNKNOWN_HANDLE', message: 'no such handle', details: { id: 5, status: -5 } } },
  assign: { t: 'assign', v: PROTOCOL_VERSION, spec: 'toyacc', hash: 'cd'.repeat(32), session: 's-2', token: 't0k3n-abc' },
  assigned: { t: 'assigned', address: 'unix:/tmp/w.sock', worker: '77-beef', token: 'x'.repeat(24) },
  stateHello: { t: 'stateHello', v: PROTOCOL_VERSION, intake: 'i'.repeat(24), token: 'secret-token' },
  stateChunk: { t: 'stateChunk', id: 12, offset: 8 * 2 ** 20, n: 4096, crc: 0xdeadbeef, held: true },
  stateDone: { t: 'stateDone', objects: 3, bytes: 2 ** 30, ms: 12.5 },
};

test('every frame type round-trips through encodeFrame and FrameReader', () => {
  for (const [type, example] of Object.entries(EXAMPLES)) {
    const [back, ...rest] = new FrameReader().push(encodeFrame(example));
    assert.is(rest.length, 0, `${type}: one frame`);
    assert.equal(plain(back), plain(example), `${type} round-trips`);
  }
  // A reply with an error, a control reply with an error, every control op.
  const more: Frame[] = [
    { t: 'reply', seq: 3, error: { name: 'BadCallError', code: 'ERR_AVA_BAD_CALL', message: 'bad', details: {} } },
    { t: 'controlReply', id: 4, error: { name: 'UnsupportedError', code: 'ERR_AVA_UNSUPPORTED', message: 'no state', details: { fn: 'extractState' } } },
    ...(['extract', 'restore', 'ping', 'close', 'intake'] as const).map((op, id) => ({ t: 'control' as const, id, op })),
    { t: 'control', id: 8, op: 'send', address: 'tcp:10.0.0.2:7000', token: 'tok', intake: 'in', chunk: 2 ** 20, objects: [{ id: 3 }, { id: 4, held: true, ranges: [[0, 10], [4096, 8]] }] },
  ];
  for (const f of more) assert.equal(plain(decodeBody(encodeBody(f))), plain(f), `${f.t} round-trips`);
});

test('random frames of every type round-trip (fast-check)', () => {
  fc.assert(fc.property(frame, (f) => {
    assert.equal(plain(decodeBody(encodeBody(f))), plain(f));
  }), { numRuns: 500 });
});

test('FrameReader gives the same frames whatever the chunk splits (fast-check)', () => {
  fc.assert(fc.property(fc.array(frame, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, rawCuts) => {
    const all = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const cuts = [...new Set(rawCuts.map((c) => c % (all.byteLength + 1)))].sort((a, b) => a - b);
    assert.equal(plain(readAll(all, cuts)), plain(frames));
  }), { numRuns: 300 });
});

/** A reply frame with a large byte string (over the 64 KiB at which pieces and in-place reads start) and small values. */
function largeReply(seq: number, bytes: number): Frame {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seq) & 0xff;
  return { t: 'reply', seq, ret: 0, outs: { dst: data, size: bytes, list: [1, 2, { x: 'y' }] } };
}

test('encodeBodyPieces: the pieces joined decode to the frame; large byte strings are pieces of their own, not copies', () => {
  for (const f of [...Object.values(EXAMPLES), largeReply(1, 300_000), largeReply(2, 65_536), { t: 'event', callback: 3, args: [new Uint8Array(70_000).fill(9), null] } as Frame]) {
    const pieces = encodeBodyPieces(f);
    assert.equal(plain(decodeBody(Buffer.concat(pieces))), plain(f), `a ${f.t} frame`);
  }
  const f = largeReply(3, 300_000);
  const data = (f as unknown as { outs: { dst: Uint8Array } }).outs.dst;
  assert.ok(encodeBodyPieces(f).includes(data), 'the byte string itself is a piece');
});

test('FrameReader direct reads (nextReadBuffer/received): the same frames whatever the read sizes; a large body is read in place', () => {
  fc.assert(fc.property(fc.array(fc.oneof(frame, fc.integer({ min: 256 * 1024, max: 600_000 }).map((n) => largeReply(n, n))), { minLength: 1, maxLength: 4 }),
    fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 20 }), (frames, sizes) => {
      const all = Buffer.concat(frames.map((x) => encodeFrame(x)));
      const reader = new FrameReader();
      const got: Frame[] = [];
      let at = 0;
      let k = 0;
      let inPlace = 0;
      while (at < all.byteLength) {
        // As a socket does: read at most what the buffer holds and what the next read size allows.
        const target = reader.nextReadBuffer();
        const n = Math.min(target.byteLength, sizes[k++ % sizes.length]!, all.byteLength - at);
        all.copy(target, 0, at, at + n);
        if (target.byteLength > 64 * 1024) inPlace++;
        got.push(...reader.received(n));
        at += n;
      }
      assert.is(reader.failed, undefined);
      assert.equal(plain(got), plain(frames));
      if (frames.some((x) => x.t === 'reply' && (x.outs?.size as number) >= 256 * 1024)) assert.ok(inPlace > 0, 'a large frame was read in place');
    }), { numRuns: 60 });
});

test('FrameReader: one byte at a time, and empty chunks, give the same frames', () => {
  const frames = Object.values(EXAMPLES);
  const all = Buffer.concat(frames.map((f) => encodeFrame(f)));
  const reader = new FrameReader();
  const got: Frame[] = [];
  for (let i = 0; i < all.byteLength; i++) {
    got.push(...reader.push(all.subarray(i, i + 1)));
    got.push(...reader.push(Buffer.alloc(0)));
  }
  assert.equal(plain(got), plain(frames));
});

test('FrameReader: the frames before a bad one come out the same whatever the chunking', () => {
  // A peer's bytes arrive in chunks the network chooses: whether the calls before a bad frame are served must not
  // depend on that.
  const good = [EXAMPLES.hello, EXAMPLES.call].map((f) => encodeFrame(f));
  const bad = Buffer.from([0, 0, 0, 1, 0xff]); // a body that is a lone CBOR break byte
  const read = (chunks: readonly Buffer[]): { frames: unknown; code: string } => {
    const { frames, code } = feed(new FrameReader(), chunks);
    return { frames: plain(frames), code };
  };
  const perFrame = read([...good, bad]);
  assert.equal(perFrame, { frames: plain([EXAMPLES.hello, EXAMPLES.call]), code: 'ERR_AVA_BAD_FRAME' });
  assert.equal(read([Buffer.concat([...good, bad])]), perFrame, 'all in one chunk');
  assert.equal(read([good[0]!, Buffer.concat([good[1]!, bad])]), perFrame, 'the last good frame and the bad one in one chunk');
});

// ------------------------------------------------------------------------------------------------ limits

test('a frame over maxFrameBytes is refused from its length prefix, before its body is buffered', () => {
  const limit = 1000;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(limit + 1, 0);
  // The length prefix alone, no body.
  assert.is(feed(new FrameReader({ maxFrameBytes: limit }), [head]).code, 'ERR_AVA_FRAME_TOO_LARGE');
  // Also when the prefix arrives in pieces, behind a good frame: the good frame comes out first.
  const good = encodeFrame(EXAMPLES.welcome);
  const { frames, code } = feed(new FrameReader({ maxFrameBytes: limit }), [Buffer.concat([good, head.subarray(0, 2)]), head.subarray(2)]);
  assert.is(code, 'ERR_AVA_FRAME_TOO_LARGE');
  assert.equal(plain(frames), plain([EXAMPLES.welcome]), 'the good frame before it comes out');
  // The default limit applies to a 4 GiB - 1 length at once.
  assert.is(feed(new FrameReader(), [Buffer.from([0xff, 0xff, 0xff, 0xff])]).code, 'ERR_AVA_FRAME_TOO_LARGE');
  // Nothing after a refused frame comes out, even a good frame.
  const after = feed(new FrameReader({ maxFrameBytes: limit }), [head, good]);
  assert.equal(after, { frames: [], code: 'ERR_AVA_FRAME_TOO_LARGE' });
});

test('a frame of exactly maxFrameBytes is accepted; a partial frame waits for the rest', () => {
  const whole = encodeFrame(EXAMPLES.call);
  const size = whole.byteLength - 4;
  const reader = new FrameReader({ maxFrameBytes: size });
  assert.equal(reader.push(whole.subarray(0, whole.byteLength - 1)), [], 'not complete yet');
  const [back] = reader.push(whole.subarray(whole.byteLength - 1));
  assert.equal(plain(back), plain(EXAMPLES.call));
});

test('batches over maxBatchCalls and calls over maxArgs are refused', () => {
  const limits: WireLimits = { ...DEFAULT_LIMITS, maxBatchCalls: 3, maxArgs: 4 };
  const c = { seq: 0, fn: 'f', args: [1, 2, 3, 4] };
  assert.is(refusal(enc({ t: 'batch', calls: [c, c, c] }), limits), 'accepted');
  assert.is(refusal(enc({ t: 'batch', calls: [c, c, c, c] }), limits), 'ERR_AVA_BAD_FRAME');
  assert.is(refusal(enc({ t: 'call', ...c, args: [1, 2, 3, 4, 5] }), limits), 'ERR_AVA_BAD_FRAME');
  assert.is(refusal(enc({ t: 'call', ...c, args: Array(DEFAULT_LIMITS.maxArgs + 1).fill(0) })), 'ERR_AVA_BAD_FRAME');
});

test('arrays and maps over maxElements are refused', () => {
  const limits: WireLimits = { ...DEFAULT_LIMITS, maxElements: 10 };
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [Array(10).fill(0)] }), limits), 'accepted');
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [Array(11).fill(0)] }), limits), 'ERR_AVA_BAD_FRAME');
  const map = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]));
  assert.is(refusal(enc({ t: 'reply', seq: 0, outs: map }), limits), 'ERR_AVA_BAD_FRAME');
});

// ------------------------------------------------------------------------------------------------ versions

test('a wrong protocol version is ERR_AVA_PROTOCOL_VERSION', () => {
  for (const v of [0, PROTOCOL_VERSION + 1, 2 ** 31, -1]) {
    assert.is(refusal(enc({ ...EXAMPLES.hello, v })), 'ERR_AVA_PROTOCOL_VERSION', `hello v ${v}`);
    assert.is(refusal(enc({ ...EXAMPLES.assign, v })), 'ERR_AVA_PROTOCOL_VERSION', `assign v ${v}`);
    assert.is(refusal(enc({ ...EXAMPLES.welcome, v })), 'ERR_AVA_PROTOCOL_VERSION', `welcome v ${v}`);
  }
  // A version that is not an integer at all is a malformed field.
  for (const v of ['1', 1.5, null, [1]]) assert.is(refusal(enc({ ...EXAMPLES.hello, v })), 'ERR_AVA_BAD_FRAME', `hello v ${JSON.stringify(v)}`);
  const [hello] = new FrameReader().push(encodeFrame(EXAMPLES.hello));
  assert.is((hello as { v: number }).v, PROTOCOL_VERSION);
});

// ------------------------------------------------------------------------------------------------ malformed fields

const MALFORMED: readonly [string, unknown][] = [
  ['a frame that is an array', [1, 2]],
  ['a frame that is a number', 5],
  ['a frame that is a text', 'call'],
  ['a frame that is null', null],
  ['a frame that is a byte string', bytes(1, 2)],
  ['no type', { seq: 0, fn: 'f', args: [] }],
  ['an unknown type', { t: 'bogus' }],
  ['a type that is a number', { t: 7 }],
  ['a type that is a 64-bit integer', { t: 2n ** 64n - 1n }],
  ['a type that is a map', { t: { t: 'call' } }],
  ['hello: no session', { t: 'hello', v: 1, spec: 's', hash: 'h' }],
  ['hello: empty session', { t: 'hello', v: 1, spec: 's', hash: 'h', session: '' }],
  ['hello: session of 201 characters', { t: 'hello', v: 1, spec: 's', hash: 'h', session: 'x'.repeat(201) }],
  ['hello: spec a number', { t: 'hello', v: 1, spec: 1, hash: 'h', session: 's' }],
  ['hello: token a number', { t: 'hello', v: 1, spec: 's', hash: 'h', session: 's', token: 12345678 }],
  ['welcome: no worker', { t: 'welcome', v: 1, session: 's' }],
  ['call: seq -1', { t: 'call', seq: -1, fn: 'f', args: [] }],
  ['call: seq 1.5', { t: 'call', seq: 1.5, fn: 'f', args: [] }],
  ['call: seq a text', { t: 'call', seq: '1', fn: 'f', args: [] }],
  ['call: seq past 2^53', { t: 'call', seq: 2n ** 60n, fn: 'f', args: [] }],
  ['call: fn empty', { t: 'call', seq: 0, fn: '', args: [] }],
  ['call: fn of 257 characters', { t: 'call', seq: 0, fn: 'f'.repeat(257), args: [] }],
  ['call: fn a number', { t: 'call', seq: 0, fn: 3, args: [] }],
  ['call: args a map', { t: 'call', seq: 0, fn: 'f', args: { 0: 1 } }],
  ['call: deliver -1', { t: 'call', seq: 0, fn: 'f', args: [], deliver: -1 }],
  ['call: deliver a text', { t: 'call', seq: 0, fn: 'f', args: [], deliver: '3' }],
  ['call: no args', { t: 'call', seq: 0, fn: 'f' }],
  ['call: retId a text', { t: 'call', seq: 0, fn: 'f', args: [], retId: '3' }],
  ['call: retId 1.5', { t: 'call', seq: 0, fn: 'f', args: [], retId: 1.5 }],
  ['call: async a number', { t: 'call', seq: 0, fn: 'f', args: [], async: 1 }],
  ['call: repeat on a waiting call', { t: 'call', seq: 0, fn: 'f', args: [], repeat: 3 }],
  ['call: repeat 0', { t: 'call', seq: 0, fn: 'f', args: [], async: true, repeat: 0 }],
  ['call: repeat 1.5', { t: 'call', seq: 0, fn: 'f', args: [], async: true, repeat: 1.5 }],
  ['call: repeat past maxBatchCalls', { t: 'call', seq: 0, fn: 'f', args: [], async: true, repeat: 65537 }],
  ['batch: a call repeated a text number of times', { t: 'batch', calls: [{ seq: 0, fn: 'f', args: [], async: true, repeat: '2' }] }],
  ['batch: no calls', { t: 'batch', calls: [] }],
  ['batch: calls a map', { t: 'batch', calls: { a: 1 } }],
  ['batch: a call with seq -1', { t: 'batch', calls: [{ seq: 0, fn: 'f', args: [] }, { seq: -1, fn: 'f', args: [] }] }],
  ['batch: a call that is a number', { t: 'batch', calls: [4] }],
  ['reply: seq a text', { t: 'reply', seq: 'x' }],
  ['reply: outs an array', { t: 'reply', seq: 0, outs: [1] }],
  ['reply: error without code', { t: 'reply', seq: 0, error: { name: 'E', message: 'm' } }],
  ['reply: error details an array', { t: 'reply', seq: 0, error: { name: 'E', code: 'C', message: 'm', details: [1] } }],
  ['event: callback a text', { t: 'event', callback: 'c', args: [] }],
  ['event: args a map', { t: 'event', callback: 1, args: {} }],
  ['control: an unknown op', { t: 'control', id: 1, op: 'explode' }],
  ['control: id a text', { t: 'control', id: '1', op: 'ping' }],
  ['control: handle a text', { t: 'control', id: 1, op: 'extract', handle: '5' }],
  ['control: bytes a text', { t: 'control', id: 1, op: 'restore', handle: 5, bytes: 'abc' }],
  ['controlReply: id a text', { t: 'controlReply', id: 'x' }],
  ['controlReply: bytes a text', { t: 'controlReply', id: 1, bytes: 'abc' }],
  ['controlReply: bytes an array', { t: 'controlReply', id: 1, bytes: [1, 2] }],
  ['error: no error', { t: 'error' }],
  ['error: error a text', { t: 'error', error: 'boom' }],
  ['assign: no hash', { t: 'assign', v: 1, spec: 's', session: 's' }],
  ['assigned: address a number', { t: 'assigned', address: 5, worker: 'w' }],
  ['control send: objects a map', { t: 'control', id: 1, op: 'send', objects: { id: 1 } }],
  ['control send: an object without id', { t: 'control', id: 1, op: 'send', objects: [{ held: true }] }],
  ['control send: a range of three numbers', { t: 'control', id: 1, op: 'send', objects: [{ id: 1, ranges: [[0, 1, 2]] }] }],
  ['control send: a negative range', { t: 'control', id: 1, op: 'send', objects: [{ id: 1, ranges: [[-1, 4]] }] }],
  ['control send: address a number', { t: 'control', id: 1, op: 'send', address: 7 }],
  ['control send: chunk of 1 byte', { t: 'control', id: 1, op: 'send', chunk: 1 }],
  ['stateHello: no intake', { t: 'stateHello', v: 1 }],
  ['stateHello: empty intake', { t: 'stateHello', v: 1, intake: '' }],
  ['stateChunk: n negative', { t: 'stateChunk', id: 1, offset: 0, n: -1, crc: 0 }],
  ['stateChunk: n past 2^31', { t: 'stateChunk', id: 1, offset: 0, n: 2 ** 31 + 1, crc: 0 }],
  ['stateChunk: crc a text', { t: 'stateChunk', id: 1, offset: 0, n: 1, crc: 'x' }],
  ['stateDone: bytes negative', { t: 'stateDone', objects: 1, bytes: -1 }],
];

test('malformed fields are ERR_AVA_BAD_FRAME (and never another kind of throw)', () => {
  const wrong = MALFORMED.map(([what, v]) => [what, refusal(enc(v))] as const).filter(([, code]) => code !== 'ERR_AVA_BAD_FRAME');
  assert.equal(wrong, [], `frames not refused as ERR_AVA_BAD_FRAME: ${wrong.map(([w, c]) => `${w} -> ${c}`).join('; ')}`);
});

test('bytes that are not CBOR, or not one whole CBOR item, are ERR_AVA_BAD_FRAME', () => {
  const cases: [string, Uint8Array][] = [
    ['empty body', bytes()],
    ['a reserved initial byte', bytes(0x1c)],
    ['a break byte alone', bytes(0xff)],
    ['a truncated map', bytes(0xa2, 0x61, 0x74)],
    ['a text of 2^32 bytes with no bytes', bytes(0x7a, 0xff, 0xff, 0xff, 0xff)],
    ['an array of 2^63 elements with none', bytes(0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
    ['a map of 2^32-1 entries with one', bytes(0xba, 0xff, 0xff, 0xff, 0xff, 0x61, 0x74, 0x00)],
    ['invalid UTF-8 in a key', bytes(0xa1, 0x62, 0xc3, 0x28, 0x00)],
    ['a good frame followed by a second item', Buffer.concat([enc(EXAMPLES.welcome), bytes(0x00)])],
  ];
  const wrong = cases.map(([what, b]) => [what, refusal(b)] as const).filter(([, code]) => code !== 'ERR_AVA_BAD_FRAME');
  assert.equal(wrong, [], `not refused as ERR_AVA_BAD_FRAME: ${wrong.map(([w, c]) => `${w} -> ${c}`).join('; ')}`);
});

// ------------------------------------------------------------------------------------------------ values outside the protocol

/** CBOR a C guest never sends: tags (RFC 8949 §3.4 and the IANA registry), undefined and unassigned simple values. */
const FOREIGN: readonly [string, Buffer][] = [
  ['tag 0 (date/time text)', Buffer.concat([Buffer.from([0xc0, 0x74]), Buffer.from('2013-03-21T20:04:00Z')])],
  ['tag 1 (epoch date)', Buffer.from([0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0])],
  ['tag 2 (bignum 2^70)', Buffer.from([0xc2, 0x49, 0x40, 0, 0, 0, 0, 0, 0, 0, 0])],
  ['tag 3 (negative bignum)', Buffer.from([0xc3, 0x49, 0x40, 0, 0, 0, 0, 0, 0, 0, 0])],
  ['tag 4 (decimal fraction 273.15)', Buffer.from([0xc4, 0x82, 0x21, 0x19, 0x6a, 0xb3])],
  ['tag 24 (embedded CBOR)', Buffer.from([0xd8, 0x18, 0x42, 0x01, 0x02])],
  ['tag 28 (shareable value)', Buffer.from([0xd8, 0x1c, 0x01])],
  ['tag 32 (URI)', Buffer.from([0xd8, 0x20, 0x61, 0x61])],
  ['tag 64 (uint8 typed array)', Buffer.from([0xd8, 0x40, 0x43, 0x01, 0x02, 0x03])],
  ['tag 85 (float32 typed array)', Buffer.from([0xd8, 0x55, 0x44, 0x00, 0x00, 0x80, 0x3f])],
  ['tag 258 (set)', Buffer.from([0xd9, 0x01, 0x02, 0x82, 0x01, 0x02])],
  ['tag 259 (map with non-text keys)', Buffer.from([0xd9, 0x01, 0x03, 0xa1, 0x01, 0x02])],
  ['undefined', Buffer.from([0xf7])],
  ['simple value 16', Buffer.from([0xf0])],
  ['simple value 255', Buffer.from([0xf8, 0xff])],
];

/** Frames with a slot for a value, by where the value sits: first those whose values the protocol calls values. */
const VALUE_SLOTS: readonly [string, unknown][] = [
  ['call.args', { t: 'call', seq: 0, fn: 'f', args: [1, RAW] }],
  ['call.args, nested', { t: 'call', seq: 0, fn: 'f', args: [[{ handle: RAW }]] }],
  ['batch.calls[].args', { t: 'batch', calls: [{ seq: 0, fn: 'f', args: [RAW] }] }],
  ['reply.ret', { t: 'reply', seq: 0, ret: RAW }],
  ['reply.outs', { t: 'reply', seq: 0, outs: { value: RAW } }],
  ['event.args', { t: 'event', callback: 1, args: [RAW] }],
];
/** Then the other fields, where only one type fits. */
const FIELD_SLOTS: readonly [string, unknown][] = [
  ['reply.timings', { t: 'reply', seq: 0, timings: { afterReceiveCommand: RAW, afterUnmarshal: 0, afterExecution: 0, afterMarshal: 0 } }],
  ['reply.error.details', { t: 'reply', seq: 0, error: { name: 'E', code: 'C', message: 'm', details: { x: RAW } } }],
  ['controlReply.bytes', { t: 'controlReply', id: 1, bytes: RAW }],
  ['control.bytes', { t: 'control', id: 1, op: 'restore', handle: 1, bytes: RAW }],
  ['call.retId', { t: 'call', seq: 0, fn: 'f', args: [], retId: RAW }],
  ['an extra field of a call', { t: 'call', seq: 0, fn: 'f', args: [], extra: RAW }],
];

/** `slot: what, what` for every foreign value a slot accepts. */
function acceptedForeign(slots: readonly [string, unknown][]): string[] {
  return slots.flatMap(([where, template]) => {
    const accepted = FOREIGN.filter(([, raw]) => refusal(withRaw(template, raw)) !== 'ERR_AVA_BAD_FRAME').map(([what]) => what);
    return accepted.length === 0 ? [] : [`${where}: ${accepted.join(', ')}`];
  });
}

test('CBOR tags, undefined and unassigned simple values are refused as call arguments, results and event arguments', () => {
  // The protocol's examples first: a date and undefined among call arguments.
  assert.is(refusal(withRaw(VALUE_SLOTS[0]![1], FOREIGN[1]![1])), 'ERR_AVA_BAD_FRAME', 'a date in call.args');
  assert.is(refusal(withRaw(VALUE_SLOTS[0]![1], Buffer.from([0xf7]))), 'ERR_AVA_BAD_FRAME', 'undefined in call.args');
  const accepted = acceptedForeign(VALUE_SLOTS);
  assert.equal(accepted, [], `accepted:\n  ${accepted.join('\n  ')}`);
});

test('CBOR tags, undefined and unassigned simple values are refused in every other field too', () => {
  const accepted = acceptedForeign(FIELD_SLOTS);
  assert.equal(accepted, [], `accepted:\n  ${accepted.join('\n  ')}`);
});

test('nesting past maxDepth is refused; nesting within it is accepted', () => {
  const nest = (depth: number): unknown => (depth === 0 ? 1 : [nest(depth - 1)]);
  const nestMap = (depth: number): unknown => (depth === 0 ? 1 : { a: nestMap(depth - 1) });
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [nest(3)] })), 'accepted');
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [nest(DEFAULT_LIMITS.maxDepth + 1)] })), 'ERR_AVA_BAD_FRAME');
  assert.is(refusal(enc({ t: 'reply', seq: 0, outs: { x: nestMap(DEFAULT_LIMITS.maxDepth + 1) } })), 'ERR_AVA_BAD_FRAME');
  assert.is(refusal(enc({ t: 'event', callback: 0, args: [nest(DEFAULT_LIMITS.maxDepth + 1)] })), 'ERR_AVA_BAD_FRAME');
  const shallow: WireLimits = { ...DEFAULT_LIMITS, maxDepth: 2 };
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [nest(1)] }), shallow), 'accepted');
  assert.is(refusal(enc({ t: 'call', seq: 0, fn: 'f', args: [nest(3)] }), shallow), 'ERR_AVA_BAD_FRAME');
});

test('hostile nesting (200,000 levels of arrays or maps) is ERR_AVA_BAD_FRAME, quickly', () => {
  const depth = 200_000;
  const deepArrays = withRaw({ t: 'call', seq: 0, fn: 'f', args: [RAW] }, Buffer.concat([Buffer.alloc(depth, 0x81), Buffer.from([0x01])]));
  const deepMaps = withRaw({ t: 'call', seq: 0, fn: 'f', args: [RAW] }, Buffer.concat([Buffer.from(Array.from({ length: depth }, () => [0xa1, 0x61, 0x61]).flat()), Buffer.from([0x01])]));
  for (const [what, body] of [['arrays', deepArrays], ['maps', deepMaps]] as const) {
    const t0 = performance.now();
    assert.is(refusal(body), 'ERR_AVA_BAD_FRAME', `${depth} nested ${what}`);
    // Not a speed target: a walk that is quadratic in the depth would take minutes here, a linear one milliseconds.
    assert.ok(performance.now() - t0 < 10_000, `${what}: refused within 10 s`);
  }
});

// ------------------------------------------------------------------------------------------------ never anything else

test('random bytes decode to a frame or a WireFormatError, never another throw (fast-check)', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
    const r = refusal(b);
    assert.ok(r === 'accepted' || r.startsWith('ERR_AVA_'), r);
  }), { numRuns: 2000 });
});

test('random maps shaped like frames decode to a frame or a WireFormatError, never another throw (fast-check)', () => {
  const anything = fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, maxDepth: 3 });
  const types = fc.oneof(fc.constantFrom(...Object.keys(EXAMPLES), 'bogus'), anything);
  const frameLike = fc.tuple(types, fc.constantFrom(...Object.values(EXAMPLES)), fc.dictionary(fc.constantFrom('v', 'seq', 'fn', 'args', 'calls', 'ret', 'outs', 'error', 'id', 'op', 'handle', 'bytes', 'callback', 'session', 'token', 'retId', 'async', 'timings', 'details'), anything, { maxKeys: 4 }))
    .map(([t, base, over]) => ({ ...base, ...over, t }));
  fc.assert(fc.property(frameLike, (f) => {
    let body: Uint8Array;
    try {
      body = enc(f);
    } catch {
      return; // not encodable: nothing to decode
    }
    const r = refusal(body);
    assert.ok(r === 'accepted' || r.startsWith('ERR_AVA_'), r);
  }), { numRuns: 1000 });
});

test('8-byte CBOR integers (as a C peer writes values past 32 bits) decode to numbers when exact, BigInts past 2^53', () => {
  // {t: 'call', seq: 1, fn: 'f', args: [-8589934593, 2^40, 2^60], retId: null}, written by hand as a C encoder does.
  const int8 = (major: number, v: bigint): number[] => {
    const out = [(major << 5) | 27];
    for (let i = 7; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
    return out;
  };
  const text = (t: string): number[] => [0x60 | t.length, ...Buffer.from(t)];
  const body = Uint8Array.from([
    0xa5, ...text('t'), ...text('call'), ...text('seq'), 0x01, ...text('fn'), ...text('f'), ...text('retId'), 0xf6,
    ...text('args'), 0x83, ...int8(1, 8589934592n), ...int8(0, 2n ** 40n), ...int8(0, 2n ** 60n),
  ]);
  const frame = decodeBody(body) as unknown as { args: unknown[] };
  assert.equal(frame.args, [-8589934593, 2 ** 40, 2n ** 60n]);
});

test.run();
