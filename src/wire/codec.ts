/**
 * The one codec of the wire: CBOR (cbor-x, with its JavaScript-only extensions off) behind a 4-byte big-endian
 * length prefix. Every frame read from a peer is untrusted: the length is checked before anything is buffered,
 * the CBOR is decoded defensively, and the result is validated field by field ({@link validateFrame}). A bad frame is
 * a {@link WireFormatError}; it never throws anything else and never crashes the reader.
 */
import { Encoder } from 'cbor-x';
import { AvaError } from '../errors.js';
import type { AvaErrorOptions } from '../errors.js';
import type { Frame, WireValue } from './frames.js';
import { PROTOCOL_VERSION } from './frames.js';
import { reclaimBefore } from './reclaim.js';

/** Limits against hostile or broken peers. */
export interface WireLimits {
  /** Largest frame body in bytes. @defaultValue 1 GiB */
  readonly maxFrameBytes: number;
  /** Most calls in one batch. @defaultValue 65536 */
  readonly maxBatchCalls: number;
  /** Most arguments of one call. @defaultValue 64 */
  readonly maxArgs: number;
  /** Deepest nesting of arrays and maps in a value. @defaultValue 8 */
  readonly maxDepth: number;
  /** Most elements of one array or map in a value. @defaultValue 1048576 */
  readonly maxElements: number;
}

/** The default {@link WireLimits}. */
export const DEFAULT_LIMITS: WireLimits = Object.freeze({
  maxFrameBytes: 2 ** 30,
  maxBatchCalls: 65536,
  maxArgs: 64,
  maxDepth: 8,
  maxElements: 2 ** 20,
});

/** A frame that breaks the protocol: `ERR_AVA_BAD_FRAME`, `ERR_AVA_FRAME_TOO_LARGE` or `ERR_AVA_PROTOCOL_VERSION`. */
export class WireFormatError extends AvaError {
  constructor(code: 'ERR_AVA_BAD_FRAME' | 'ERR_AVA_FRAME_TOO_LARGE' | 'ERR_AVA_PROTOCOL_VERSION', message: string, options?: AvaErrorOptions) {
    super(code, message, options);
  }
}

const encoder = new Encoder({
  useRecords: false, mapsAsObjects: true, tagUint8Array: false, bundleStrings: false, pack: false, structuredClone: false,
  // Maps with non-string keys or other tags are not part of the protocol.
});

/** Drops top-level fields set to `undefined` (absent optional fields): CBOR's undefined is not part of the protocol. */
function defined(frame: Frame): Frame {
  for (const key in frame) {
    if ((frame as unknown as Record<string, unknown>)[key] === undefined) {
      return Object.fromEntries(Object.entries(frame).filter(([, v]) => v !== undefined)) as unknown as Frame;
    }
  }
  return frame;
}

/** Encodes one frame body (no prefix). */
export function encodeBody(frame: Frame): Uint8Array {
  return encoder.encode(defined(frame));
}

/** Byte strings at least this large are sent from where they are by {@link encodeBodyPieces}, not copied. */
const PIECE_MIN_BYTES = 64 * 1024;

function holdsLargeBytes(v: unknown, depth: number): boolean {
  if (v instanceof Uint8Array) return v.byteLength >= PIECE_MIN_BYTES;
  if (depth > 4 || v === null || typeof v !== 'object') return false;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (holdsLargeBytes(x, depth + 1)) return true;
  return false;
}

/** A CBOR head (major type and argument) in its shortest form (cbor-x writes map heads wider; both are CBOR). */
function cborHead(major: number, n: number): Uint8Array {
  const m = major << 5;
  if (n < 24) return Uint8Array.of(m | n);
  if (n < 0x100) return Uint8Array.of(m | 24, n);
  if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const b = new Uint8Array(9);
  b[0] = m | 27;
  new DataView(b.buffer).setBigUint64(1, BigInt(n));
  return b;
}

function pushPieces(v: unknown, out: Uint8Array[]): void {
  if (v instanceof Uint8Array && v.byteLength >= PIECE_MIN_BYTES) {
    out.push(cborHead(2, v.byteLength), v);
  } else if (Array.isArray(v)) {
    out.push(cborHead(4, v.length));
    for (const x of v) pushPieces(x, out);
  } else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    out.push(cborHead(5, entries.length));
    for (const [k, x] of entries) {
      out.push(encoder.encode(k));
      pushPieces(x, out);
    }
  } else {
    out.push(encoder.encode(v));
  }
}

/**
 * Encodes one frame body (no prefix) as pieces whose concatenation is its CBOR: a frame that carries large byte
 * strings (a read's bytes, a state chunk) refers to them instead of copying them into one buffer, so a socket can
 * write them from where they are. Any other frame is one piece, {@link encodeBody}'s.
 */
export function encodeBodyPieces(frame: Frame): Uint8Array[] {
  if (!holdsLargeBytes(frame, 0)) return [encodeBody(frame)];
  const out: Uint8Array[] = [];
  pushPieces(frame, out);
  return out;
}

/** Encodes one frame with its length prefix. */
export function encodeFrame(frame: Frame): Buffer {
  const body = encoder.encode(defined(frame));
  const out = Buffer.allocUnsafe(4 + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  return out;
}

/**
 * Walks the CBOR bytes once before they are decoded and refuses what the protocol does not use: tags (dates,
 * bignums, typed arrays, shared values...), `undefined` and other simple values, indefinite lengths, maps with
 * non-text keys, nesting past `maxDepth` and trailing bytes. So cbor-x never turns peer input into exotic objects.
 */
export function scanCbor(b: Uint8Array, limits: WireLimits = DEFAULT_LIMITS): boolean {
  // One loop over the items with the open containers on a small stack (no recursion, no closures): this runs over
  // every frame a peer sends, a thousand calls per batch from the C front.
  const len = b.byteLength;
  const maxDepth = limits.maxDepth + 2;
  const lefts: number[] = [];
  const maps: boolean[] = [];
  let pos = 0;
  let wideSafeInts = false;
  let depth = 0; // containers open around the next item
  let left = 1; // items left in the innermost one (the frame itself at the top)
  let inMap = false;
  for (;;) {
    if (left === 0) {
      if (depth === 0) break;
      depth--;
      left = lefts[depth]!;
      inMap = maps[depth]!;
      continue;
    }
    if (pos >= len) bad('truncated CBOR');
    const initial = b[pos++]!;
    const major = initial >> 5;
    if (inMap && (left & 1) === 0 && major !== 3) bad('map keys must be text');
    left--;
    const info = initial & 31;
    // Bytes of the argument after the initial byte.
    const size = info < 24 ? 0 : info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1;
    if (size < 0) bad(info === 31 ? 'indefinite-length CBOR items are not part of the protocol' : 'reserved CBOR additional information');
    if (pos + size > len) bad('truncated CBOR');
    let arg: number;
    if (size === 0) arg = info;
    else if (size === 1) arg = b[pos]!;
    else if (size === 2) arg = (b[pos]! << 8) | b[pos + 1]!;
    else if (size === 4) arg = b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
    else {
      const hi = b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!);
      const lo = b[pos + 4]! * 0x1000000 + ((b[pos + 5]! << 16) | (b[pos + 6]! << 8) | b[pos + 7]!);
      arg = hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo; // past 2^53: no number holds it
      if (major <= 1 && arg !== Infinity) wideSafeInts = true;
    }
    pos += size;
    switch (major) {
      case 0: case 1: break;
      case 2: case 3:
        if (arg > len) bad('CBOR string longer than the frame');
        if (pos + arg > len) bad('truncated CBOR');
        pos += arg;
        break;
      case 4: case 5:
        if (depth >= maxDepth) bad(`nested deeper than ${limits.maxDepth}`);
        if (arg > limits.maxElements) bad(`${major === 4 ? 'array' : 'map'} of ${arg} elements`);
        lefts[depth] = left;
        maps[depth] = inMap;
        depth++;
        left = major === 5 ? 2 * arg : arg;
        inMap = major === 5;
        break;
      case 6: bad('CBOR tags are not part of the protocol');
      // falls through: bad() throws
      default:
        // major 7: false, true, null and floats only.
        if (info === 20 || info === 21 || info === 22 || info === 25 || info === 26 || info === 27) break;
        bad(info === 23 ? 'undefined is not part of the protocol' : 'CBOR simple values are not part of the protocol');
    }
  }
  if (pos !== len) bad('trailing bytes after the frame');
  return wideSafeInts;
}

/**
 * cbor-x decodes every 8-byte integer as a BigInt, even one a number holds exactly; a C peer writes any value past
 * 32 bits that way (a handle id, a size over 4 GiB). Those become numbers, as the same values sent by a JavaScript
 * peer are; only integers past 2^53 stay BigInts.
 */
function narrowSafeBigInts(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = narrowSafeBigInts(v[i]);
    return v;
  }
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    for (const key of Object.keys(v)) (v as Record<string, unknown>)[key] = narrowSafeBigInts((v as Record<string, unknown>)[key]);
  }
  return v;
}

/** Decodes and validates one frame body. */
export function decodeBody(body: Uint8Array, limits: WireLimits = DEFAULT_LIMITS): Frame {
  const wideSafeInts = scanCbor(body, limits);
  let value: unknown;
  try {
    value = encoder.decode(body);
  } catch (error) {
    throw new WireFormatError('ERR_AVA_BAD_FRAME', `undecodable CBOR: ${(error as Error).message}`, { cause: error });
  }
  if (wideSafeInts) value = narrowSafeBigInts(value);
  return validateFrame(value, limits);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

function bad(message: string): never {
  throw new WireFormatError('ERR_AVA_BAD_FRAME', message);
}

/** Where a value sits, for messages: a string, or a function that makes it (only a refusal needs it). */
type Where = string | (() => string);
const at = (where: Where): string => (typeof where === 'string' ? where : where());

function checkValue(v: unknown, limits: WireLimits, depth: number, where: Where): void {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || v instanceof Uint8Array) return;
  if (depth >= limits.maxDepth) bad(`${at(where)}: nested deeper than ${limits.maxDepth}`);
  if (Array.isArray(v)) {
    if (v.length > limits.maxElements) bad(`${at(where)}: array of ${v.length} elements`);
    for (const x of v) checkValue(x, limits, depth + 1, where);
    return;
  }
  if (isObject(v) && Object.getPrototypeOf(v) === Object.prototype) {
    const keys = Object.keys(v);
    if (keys.length > limits.maxElements) bad(`${at(where)}: map of ${keys.length} entries`);
    for (const k of keys) checkValue(v[k], limits, depth + 1, where);
    return;
  }
  bad(`${at(where)}: a value of type ${typeof v} is not part of the protocol`);
}

function checkCall(v: unknown, limits: WireLimits, where: Where): void {
  if (!isObject(v)) bad(`${at(where)}: a call must be a map`);
  if (!isInt(v.seq) || v.seq < 0) bad(`${at(where)}: seq must be a non-negative integer`);
  if (typeof v.fn !== 'string' || v.fn.length === 0 || v.fn.length > 256) bad(`${at(where)}: fn must be a function name`);
  if (!Array.isArray(v.args) || v.args.length > limits.maxArgs) bad(`${at(where)}: args must be an array of at most ${limits.maxArgs} values`);
  checkValue(v.args, limits, 0, () => `${at(where)}.args`);
  if (v.retId !== undefined && v.retId !== null && !isInt(v.retId)) bad(`${at(where)}: retId must be an integer or null`);
  if (v.async !== undefined && typeof v.async !== 'boolean') bad(`${at(where)}: async must be a boolean`);
  if (v.deliver !== undefined && (!isInt(v.deliver) || v.deliver < 0)) bad(`${at(where)}: deliver must be a non-negative integer`);
  if (v.repeat !== undefined && (!isInt(v.repeat) || v.repeat < 1 || v.repeat > limits.maxBatchCalls || v.async !== true)) {
    bad(`${at(where)}: repeat must be an integer from 1 to ${limits.maxBatchCalls}, on an asynchronous call`);
  }
}

function checkError(v: unknown, where: string, limits: WireLimits = DEFAULT_LIMITS): void {
  if (!isObject(v) || typeof v.code !== 'string' || typeof v.message !== 'string' || typeof v.name !== 'string') bad(`${where}: malformed error`);
  if (v.details !== undefined && !isObject(v.details)) bad(`${where}: error details must be a map`);
  if (v.details !== undefined) checkValue(v.details, limits, 0, `${where}.details`);
}

function checkCopyItems(v: unknown, limits: WireLimits): void {
  if (!Array.isArray(v) || v.length > limits.maxElements) bad('control: objects must be an array');
  for (const item of v) {
    if (!isObject(item) || !isInt(item.id)) bad('control: each object needs an integer id');
    if (item.held !== undefined && typeof item.held !== 'boolean') bad('control: held must be a boolean');
    if (item.ranges === undefined) continue;
    if (!Array.isArray(item.ranges) || item.ranges.length > limits.maxElements) bad('control: ranges must be an array');
    for (const r of item.ranges) {
      if (!Array.isArray(r) || r.length !== 2 || !isInt(r[0]) || !isInt(r[1]) || r[0] < 0 || r[1] < 0) bad('control: a range is [offset, size]');
    }
  }
}

/**
 * Checks that a decoded value is a well-formed frame.
 * @throws {WireFormatError} naming the field at fault.
 */
export function validateFrame(v: unknown, limits: WireLimits = DEFAULT_LIMITS): Frame {
  if (!isObject(v)) bad('a frame must be a map');
  switch (v.t) {
    case 'hello':
      if (!isInt(v.v)) bad('hello: v must be an integer');
      if (v.v !== PROTOCOL_VERSION) throw new WireFormatError('ERR_AVA_PROTOCOL_VERSION', `protocol version ${v.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
      if (typeof v.spec !== 'string' || typeof v.hash !== 'string' || typeof v.session !== 'string' || v.session.length === 0 || v.session.length > 200) bad('hello: spec, hash and session must be strings');
      if (v.token !== undefined && typeof v.token !== 'string') bad('hello: token must be a string');
      break;
    case 'assign':
      if (!isInt(v.v)) bad('assign: v must be an integer');
      if (v.v !== PROTOCOL_VERSION) throw new WireFormatError('ERR_AVA_PROTOCOL_VERSION', `protocol version ${v.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
      if (typeof v.spec !== 'string' || typeof v.hash !== 'string' || typeof v.session !== 'string') bad('assign: spec, hash and session must be strings');
      if (v.token !== undefined && typeof v.token !== 'string') bad('assign: token must be a string');
      break;
    case 'assigned':
      if (typeof v.address !== 'string' || typeof v.worker !== 'string') bad('assigned: address and worker must be strings');
      if (v.token !== undefined && typeof v.token !== 'string') bad('assigned: token must be a string');
      break;
    case 'welcome':
      if (!isInt(v.v) || typeof v.worker !== 'string' || typeof v.session !== 'string') bad('welcome: malformed');
      if (v.v !== PROTOCOL_VERSION) throw new WireFormatError('ERR_AVA_PROTOCOL_VERSION', `protocol version ${v.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
      break;
    case 'call':
      checkCall(v, limits, 'call');
      break;
    case 'batch':
      if (!Array.isArray(v.calls) || v.calls.length === 0 || v.calls.length > limits.maxBatchCalls) bad(`batch: calls must be an array of 1 to ${limits.maxBatchCalls} calls`);
      for (let i = 0; i < v.calls.length; i++) checkCall(v.calls[i], limits, () => `batch.calls[${i}]`);
      break;
    case 'reply':
      if (!isInt(v.seq)) bad('reply: seq must be an integer');
      if (v.timings !== undefined) {
        const t = v.timings;
        if (!isObject(t) || !Object.values(t).every((x) => typeof x === 'number')) bad('reply: timings must be a map of numbers');
      }
      if (v.fn !== undefined && typeof v.fn !== 'string') bad('reply: fn must be a string');
      if (v.outs !== undefined && !isObject(v.outs)) bad('reply: outs must be a map');
      checkValue(v.ret ?? null, limits, 0, 'reply.ret');
      checkValue(v.outs ?? null, limits, 0, 'reply.outs');
      if (v.error !== undefined) checkError(v.error, 'reply');
      break;
    case 'event':
      if (!isInt(v.callback) || !Array.isArray(v.args)) bad('event: malformed');
      checkValue(v.args, limits, 0, 'event.args');
      break;
    case 'control':
      if (!isInt(v.id) || !['extract', 'restore', 'ping', 'close', 'recreate', 'intake', 'send'].includes(v.op as string)) bad('control: malformed');
      if (v.address !== undefined && (typeof v.address !== 'string' || v.address.length > 1024)) bad('control: address must be a string');
      if (v.token !== undefined && (typeof v.token !== 'string' || v.token.length > 256)) bad('control: token must be a short string');
      if (v.intake !== undefined && (typeof v.intake !== 'string' || v.intake.length > 256)) bad('control: intake must be a short string');
      if (v.chunk !== undefined && (!isInt(v.chunk) || v.chunk < 4096 || v.chunk > limits.maxFrameBytes)) bad('control: chunk out of range');
      if (v.objects !== undefined) checkCopyItems(v.objects, limits);
      if (v.skipReleased !== undefined && typeof v.skipReleased !== 'boolean') bad('control: skipReleased must be a boolean');
      if (v.kind !== undefined && (typeof v.kind !== 'string' || v.kind.length > 64)) bad('control: kind must be a short string');
      if (v.related !== undefined && (!Array.isArray(v.related) || v.related.length > 64 || !v.related.every(isInt))) bad('control: related must be a short list of ids');
      if (v.handle !== undefined && !isInt(v.handle)) bad('control: handle must be an integer');
      if (v.bytes !== undefined && !(v.bytes instanceof Uint8Array)) bad('control: bytes must be a byte string');
      if (v.crc !== undefined && !isInt(v.crc)) bad('control: crc must be an integer');
      if (v.held !== undefined && typeof v.held !== 'boolean') bad('control: held must be a boolean');
      if (v.offset !== undefined && (!isInt(v.offset) || v.offset < 0)) bad('control: offset must be a non-negative integer');
      if (v.length !== undefined && (!isInt(v.length) || v.length < 0 || v.length > limits.maxFrameBytes)) bad('control: length out of range');
      break;
    case 'stateHello':
      if (!isInt(v.v)) bad('stateHello: v must be an integer');
      if (v.v !== PROTOCOL_VERSION) throw new WireFormatError('ERR_AVA_PROTOCOL_VERSION', `protocol version ${v.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
      if (typeof v.intake !== 'string' || v.intake.length === 0 || v.intake.length > 256) bad('stateHello: intake must be a short string');
      if (v.token !== undefined && typeof v.token !== 'string') bad('stateHello: token must be a string');
      break;
    case 'stateChunk':
      if (!isInt(v.id) || !isInt(v.offset) || v.offset < 0 || !isInt(v.crc) || v.crc < 0) bad('stateChunk: id, offset and crc must be integers');
      if (!isInt(v.n) || v.n < 0 || v.n > 2 ** 31) bad('stateChunk: n out of range');
      if (v.held !== undefined && typeof v.held !== 'boolean') bad('stateChunk: held must be a boolean');
      break;
    case 'stateDone':
      if (!isInt(v.objects) || !isInt(v.bytes) || v.objects < 0 || v.bytes < 0) bad('stateDone: objects and bytes must be counts');
      if (v.ms !== undefined && typeof v.ms !== 'number') bad('stateDone: ms must be a number');
      if (v.skipped !== undefined && (!Array.isArray(v.skipped) || v.skipped.length > limits.maxElements || !v.skipped.every(isInt))) bad('stateDone: skipped must be a list of ids');
      break;
    case 'controlReply':
      if (!isInt(v.id)) bad('controlReply: id must be an integer');
      if (v.bytes !== undefined && !(v.bytes instanceof Uint8Array)) bad('controlReply: bytes must be a byte string');
      if (v.error !== undefined) checkError(v.error, 'controlReply');
      break;
    case 'error':
      checkError(v.error, 'error');
      break;
    default:
      bad(`unknown frame type ${typeof v.t === 'string' ? JSON.stringify(v.t.slice(0, 40)) : `(${typeof v.t})`}`);
  }
  return v as unknown as Frame;
}

/** Frames at least this large are read in place by a direct reader ({@link FrameReader.nextReadBuffer}). */
const DIRECT_MIN_BYTES = 256 * 1024;
/** The scratch buffer of a direct reader: what one read takes at most outside a large frame. */
const DIRECT_READ_BYTES = 64 * 1024;

/**
 * Reassembles length-prefixed frames from a byte stream. Push chunks as they arrive; complete frames come out in
 * order. A length over the limit is refused before its body is buffered.
 */
export class FrameReader {
  #limits: WireLimits;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Direct reads (see {@link nextReadBuffer}): where small reads land, copied out before the next one. */
  #scratch: Buffer | undefined;
  /** A large frame's body being read in place, and how much of it is there. */
  #large: { body: Buffer; filled: number } | undefined;

  constructor(limits: Partial<WireLimits> = {}) {
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Changes the largest accepted frame (a worker accepts only small frames until the handshake is done). */
  setMaxFrameBytes(bytes: number): void {
    this.#limits = { ...this.#limits, maxFrameBytes: bytes };
  }

  /**
   * The first bad frame seen, if any. Frames before it were returned; nothing after it is read. The connection must
   * then be answered with an error and closed.
   */
  failed: WireFormatError | undefined;

  /**
   * Adds bytes and returns the frames they complete, in order. On a bad frame, returns the good frames before it and
   * sets {@link failed}; whatever the chunking, the same frames come out.
   */
  push(chunk: Buffer): Frame[] {
    if (this.failed) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.#buffered < 4) break;
        const head = this.#peek(4);
        const length = head.readUInt32BE(0);
        if (length > this.#limits.maxFrameBytes) {
          throw new WireFormatError('ERR_AVA_FRAME_TOO_LARGE', `frame of ${length} bytes is over the limit of ${this.#limits.maxFrameBytes}`);
        }
        if (this.#buffered < 4 + length) {
          if (this.#scratch !== undefined && length >= DIRECT_MIN_BYTES) this.#startLarge(length);
          break;
        }
        const all = this.#take(4 + length);
        frames.push(decodeBody(all.subarray(4), this.#limits));
      }
    } catch (error) {
      this.#refuse(error);
      this.#chunks = [];
      this.#buffered = 0;
    }
    return frames;
  }

  /** Sets {@link failed} from what a bad frame threw. */
  #refuse(error: unknown): void {
    this.failed = error instanceof WireFormatError ? error : new WireFormatError('ERR_AVA_BAD_FRAME', String(error), { cause: error });
  }

  /**
   * For a reader the socket reads into directly (`net.Socket`'s `onread`): where the next read should land. The rest
   * of a large frame's body while one is coming, so its bytes are read in place instead of being joined from chunks
   * (a copy of every byte, into freshly faulted memory); else a scratch buffer that {@link received} copies out of.
   */
  nextReadBuffer(): Buffer {
    if (this.#large) return this.#large.body.subarray(this.#large.filled);
    return this.#scratch ??= Buffer.allocUnsafeSlow(DIRECT_READ_BYTES);
  }

  /** `n` bytes were read into the buffer {@link nextReadBuffer} gave; returns the frames they complete (see {@link push}). */
  received(n: number): Frame[] {
    const large = this.#large;
    if (!large) return this.push(Buffer.from(this.#scratch!.subarray(0, n)));
    large.filled += n;
    if (large.filled < large.body.byteLength) return [];
    this.#large = undefined;
    try {
      return [decodeBody(large.body, this.#limits)];
    } catch (error) {
      this.#refuse(error);
      return [];
    }
  }

  /** Moves what is buffered of a large frame (its prefix read) into a body of its own, read into from now on. */
  #startLarge(length: number): void {
    const head = this.#take(this.#buffered);
    reclaimBefore(length);
    const body = Buffer.allocUnsafeSlow(length);
    head.copy(body, 0, 4);
    this.#large = { body, filled: head.byteLength - 4 };
  }

  /** The bytes received after the last complete frame (the reader is empty afterwards). */
  takeRest(): Buffer {
    const rest = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.byteLength >= n) return this.#chunks[0]!;
    return (this.#chunks = [Buffer.concat(this.#chunks)])[0]!;
  }

  #take(n: number): Buffer {
    const joined = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.#chunks = rest.byteLength > 0 ? [rest] : [];
    this.#buffered = rest.byteLength;
    return out;
  }
}

/** @internal exported for tests: checks a value the way a frame's values are checked. */
export function checkWireValue(v: unknown, limits: WireLimits = DEFAULT_LIMITS): v is WireValue {
  checkValue(v, limits, 0, 'value');
  return true;
}
