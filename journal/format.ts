/**
 * The journal's on-disk format (version 1): keys, record values and their checksums.
 *
 * Keys are byte strings so that LevelDB's byte order is the journal's order:
 * - `meta`                                   -> {format, spec, hash, codec, created}
 * - `n!<session id>`                          -> the session's short number (keys stay short)
 * - `s!<n>!i`                                 -> {id, started, spec hash}: the session's info
 * - `s!<n>!r!<seq, 8 bytes big-endian>`       -> a call record
 * - `s!<n>!o!<id, 8 bytes big-endian two's complement + 2^63>` -> an object of the graph
 * - `s!<n>!k!<checkpoint, 4 bytes>!<id, 8 bytes>!<chunk, 4 bytes>` -> explicit state chunks of a checkpoint
 * - `s!<n>!c!<checkpoint, 4 bytes>`            -> {seq, objects}: the call before which a checkpoint was taken
 * - `s!<n>!t!<seq, 8 bytes big-endian>`       -> stage timings of a call (optional, every call of the session)
 *
 * Values are `crc32 (4 bytes, big-endian) ++ CBOR`. A record is a CBOR array
 * `[seq, fn, args, ret, outs, t]` with `fn` the function's index in the spec (the spec hash pins the order) and only
 * the out-arguments replay needs (ids of new handles). New fields are only ever appended, so old records stay
 * byte-identical and readable (golden journals under test/fixtures/journal guard this).
 *
 * Stage timings (written only when asked: `AVA_JOURNAL_TIMINGS=1`) are a CBOR array
 * `[fn, beforeMarshal, beforeSendCommand, afterReceiveCommand, afterUnmarshal, afterExecution, afterMarshal,
 * afterReceiveResult]` in ms since the epoch, null where a stage is absent. They are history, not replay input:
 * compaction keeps them, `ava-journal pack` leaves them out.
 */
import { crc32 } from 'node:zlib';
import { Encoder } from 'cbor-x';
import { AvaError } from '../src/errors.js';
import type { WireValue } from '../src/wire/frames.js';

/** The journal format version written in `meta`. */
export const FORMAT_VERSION = 1;

/** A stored record is corrupt (`ERR_AVA_JOURNAL_CORRUPT`): checksum or shape; `details.key` names it. */
export class JournalCorruptError extends AvaError {
  constructor(key: Uint8Array, reason: string) {
    super('ERR_AVA_JOURNAL_CORRUPT', `journal entry ${formatKey(key)} is corrupt: ${reason}`, { details: { key: formatKey(key) } });
  }
}

const codec = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, bundleStrings: false, pack: false, structuredClone: false });

/** One journaled call. */
export interface JournalRecord {
  readonly seq: number;
  /** The function's index in the spec's function list. */
  readonly fn: number;
  readonly args: readonly WireValue[];
  readonly ret: WireValue;
  /** Out-arguments replay needs (ids of handles the call created), by name; null when none. */
  readonly outs: { readonly [name: string]: WireValue } | null;
  /** When the call was made (ms since the epoch). */
  readonly t: number;
}

/** An object of the graph, as stored. */
export interface StoredObject {
  readonly id: number;
  readonly kind: string;
  /** Seq of the record that created it. */
  readonly created: number;
  /** Application-visible reference count (null where the API does not count). */
  readonly refs: number | null;
  /** Ids of the objects it depends on (parents, kernel arguments). */
  readonly deps: readonly number[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function u64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.byteLength, 0));
  let off = 0;
  for (const b of bytes) { out.set(b, off); off += b.byteLength; }
  return out;
}

/** Ids may be negative (worker-assigned); shifting by 2^63 keeps byte order = numeric order. */
function idBytes(id: number): Uint8Array {
  return u64(BigInt(id) + (1n << 63n));
}

const recordPrefixes = new Map<number, Uint8Array>();

/** `s!<n>!r!<seq>` without a BigInt or a text encoding per call: records are the hot path of journaling. */
function recordKey(n: number, seq: number): Uint8Array {
  let prefix = recordPrefixes.get(n);
  if (!prefix) {
    prefix = enc.encode(`s!${n}!r!`);
    recordPrefixes.set(n, prefix);
  }
  const out = new Uint8Array(prefix.byteLength + 8);
  out.set(prefix);
  const view = new DataView(out.buffer);
  view.setUint32(prefix.byteLength, Math.floor(seq / 2 ** 32));
  view.setUint32(prefix.byteLength + 4, seq >>> 0);
  return out;
}

/** Key builders. */
export const keys = {
  meta: enc.encode('meta'),
  sessionName: (session: string) => concat('n!', session),
  sessionNamePrefix: enc.encode('n!'),
  info: (n: number) => concat(`s!${n}!i`),
  record: (n: number, seq: number) => recordKey(n, seq),
  records: (n: number) => ({ gte: concat(`s!${n}!r!`), lt: concat(`s!${n}!r"`) }),
  object: (n: number, id: number) => concat(`s!${n}!o!`, idBytes(id)),
  objects: (n: number) => ({ gte: concat(`s!${n}!o!`), lt: concat(`s!${n}!o"`) }),
  chunk: (n: number, checkpoint: number, id: number, chunk: number) => concat(`s!${n}!k!`, u32(checkpoint), '!', idBytes(id), '!', u32(chunk)),
  checkpoint: (n: number, checkpoint: number) => ({ gte: concat(`s!${n}!k!`, u32(checkpoint), '!'), lt: concat(`s!${n}!k!`, u32(checkpoint), '"') }),
  checkpoints: (n: number) => ({ gte: concat(`s!${n}!k!`), lt: concat(`s!${n}!k"`) }),
  session: (n: number) => ({ gte: concat(`s!${n}!`), lt: concat(`s!${n}"`) }),
  /** `s!<n>!c!<checkpoint, 4 bytes>` -> {seq, objects}: where in the call stream a checkpoint was taken. */
  checkpointInfo: (n: number, checkpoint: number) => concat(`s!${n}!c!`, u32(checkpoint)),
  checkpointInfos: (n: number) => ({ gte: concat(`s!${n}!c!`), lt: concat(`s!${n}!c"`) }),
  timing: (n: number, seq: number) => concat(`s!${n}!t!`, u64(seq)),
  timings: (n: number) => ({ gte: concat(`s!${n}!t!`), lt: concat(`s!${n}!t"`) }),
};

/** Reads the sequence number at the end of a record key. */
export function seqOfKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset + key.byteLength - 8, 8).getBigUint64(0));
}

/** The parts of a chunk key: checkpoint, object id, chunk index. */
export function chunkOfKey(key: Uint8Array): { checkpoint: number; id: number; chunk: number } {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const end = key.byteLength;
  return {
    chunk: view.getUint32(end - 4),
    id: Number(view.getBigUint64(end - 13) - (1n << 63n)),
    checkpoint: view.getUint32(end - 18),
  };
}

/** A key in readable form: text with binary parts in hex (for errors and `ava-journal`). */
export function formatKey(key: Uint8Array): string {
  let out = '';
  for (const byte of key) out += byte >= 0x21 && byte <= 0x7e ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return out;
}

/** Encodes a value with its checksum. */
export function encodeValue(value: unknown): Uint8Array {
  const body = codec.encode(value);
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, crc32(body) >>> 0);
  out.set(body, 4);
  return out;
}

/**
 * Checks and decodes a stored value.
 * @throws {JournalCorruptError} naming `key` when the checksum or the CBOR is wrong.
 */
export function decodeValue(key: Uint8Array, bytes: Uint8Array): unknown {
  if (bytes.byteLength < 5) throw new JournalCorruptError(key, `value of ${bytes.byteLength} bytes`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
  const body = bytes.subarray(4);
  if ((crc32(body) >>> 0) !== stored) throw new JournalCorruptError(key, 'checksum mismatch');
  try {
    return codec.decode(body);
  } catch (error) {
    throw new JournalCorruptError(key, `undecodable value (${(error as Error).message})`);
  }
}

/** Encodes a record as its compact array. */
export function encodeRecord(r: JournalRecord): Uint8Array {
  return encodeValue([r.seq, r.fn, r.args, r.ret, r.outs, r.t]);
}

/** Decodes and shape-checks a record. */
export function decodeRecord(key: Uint8Array, bytes: Uint8Array): JournalRecord {
  const v = decodeValue(key, bytes);
  if (!Array.isArray(v) || v.length < 6 || typeof v[0] !== 'number' || typeof v[1] !== 'number' || !Array.isArray(v[2])) {
    throw new JournalCorruptError(key, 'not a record');
  }
  if (v[0] !== seqOfKey(key)) throw new JournalCorruptError(key, `record says seq ${v[0]}, its key says ${seqOfKey(key)}`);
  return { seq: v[0], fn: v[1], args: v[2], ret: v[3] ?? null, outs: v[4] ?? null, t: Number(v[5]) };
}

/** The stages of a call's timings, in the order they are stored (AvA's seven stages). */
export const STAGES = [
  'beforeMarshal', 'beforeSendCommand', 'afterReceiveCommand', 'afterUnmarshal', 'afterExecution', 'afterMarshal', 'afterReceiveResult',
] as const;

/** A stage name. */
export type Stage = (typeof STAGES)[number];

/** Stage timings of one call, as stored under `s!<n>!t!<seq>`: ms since the epoch, null where absent. */
export interface CallTimings {
  readonly seq: number;
  /** The function's index in the spec's function list. */
  readonly fn: number;
  readonly stages: { readonly [S in Stage]: number | null };
}

/** Encodes a call's timings (the seq is in the key). */
export function encodeTimings(fn: number, stages: { readonly [S in Stage]?: number | null }): Uint8Array {
  return encodeValue([fn, ...STAGES.map((s) => stages[s] ?? null)]);
}

/** Decodes and shape-checks a call's timings. */
export function decodeTimings(key: Uint8Array, bytes: Uint8Array): CallTimings {
  const v = decodeValue(key, bytes);
  if (!Array.isArray(v) || v.length < 1 + STAGES.length || typeof v[0] !== 'number' || !v.slice(1, 1 + STAGES.length).every((x) => x === null || typeof x === 'number')) {
    throw new JournalCorruptError(key, 'not a call\'s timings');
  }
  const stages = Object.fromEntries(STAGES.map((s, i) => [s, v[1 + i] as number | null])) as { [S in Stage]: number | null };
  return { seq: seqOfKey(key), fn: v[0], stages };
}

/** Decodes a UTF-8 key part. */
export function text(bytes: Uint8Array): string {
  return dec.decode(bytes);
}
