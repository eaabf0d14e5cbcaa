/**
 * Explicit state moved straight from a source worker to a target worker during a migration: one socket hop instead
 * of two through the guest, and chunk buffers reused from chunk to chunk instead of fresh memory for each (first
 * touches of fresh memory, not the copies themselves, were most of a relayed copy's time).
 *
 * The guest asks the target session for a one-time intake token (`intake` control), then asks the source session to
 * `send` the state of a list of objects to the target worker's address with that token. The source connects, sends a
 * `stateHello` frame and, after the target's `welcome`, `stateChunk` frames each followed by its raw bytes, then a
 * `stateDone` frame. The target writes every chunk into its object, reads it back against the chunk's CRC-32
 * (taken at extraction), and answers `stateDone` with what it received, or an `error` frame at the first failure.
 * docs/WIRE.md describes the frames.
 */
import type { Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import type { Address } from '../config.js';
import { AvaError, fromWireError, toWireError } from '../errors.js';
import { openSocket } from '../transport/connect.js';
import { DEFAULT_LIMITS, FrameReader, WireFormatError, decodeBody, encodeFrame } from '../wire/codec.js';
import type { Frame, StateCopyItem } from '../wire/frames.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import type { WorkerSession } from './session.js';

/** Bytes per chunk unless the request says otherwise. */
export const DEFAULT_STATE_CHUNK_BYTES = 8 * 1024 * 1024;

/** Largest frame before a chunk's raw bytes (frames on a state stream are small). */
const STREAM_FRAME_BYTES = 64 * 1024;

/** What a source worker sent: objects, bytes, the time spent reading state out of its objects, objects skipped. */
export interface StateSendStats {
  readonly objects: number;
  readonly bytes: number;
  readonly extractMs: number;
  readonly skipped: readonly number[];
}

/** Whether reading an object's state failed because the application released it (or never had it). */
export function isReleasedError(error: unknown): boolean {
  return AvaError.isAvaError(error) && (error.code === 'ERR_AVA_STALE_HANDLE' || error.code === 'ERR_AVA_UNKNOWN_HANDLE');
}

/** Options of {@link sendState}. */
export interface SendStateOptions {
  /** Where the target worker listens. */
  readonly address: Address;
  /** The target worker's own token (tcp listeners want one). */
  readonly token?: string;
  /** The one-time token the target session issued. */
  readonly intake: string;
  readonly objects: readonly StateCopyItem[];
  readonly chunkBytes?: number;
  /** Skip objects the application released meanwhile (see `ControlFrame.skipReleased`). */
  readonly skipReleased?: boolean;
}

/** The byte ranges to copy of one object: its own ranges, or all of it (read until a short chunk). */
export function segmentsOf(item: StateCopyItem): readonly (readonly [number, number])[] {
  return item.ranges ?? [[0, Number.POSITIVE_INFINITY]];
}

/**
 * Streams the state of `options.objects` from `session` (the source) to the target session that issued the intake
 * token. Reading the next chunk overlaps with the socket sending the one before; two chunk buffers are reused.
 * @throws the target's refusal or failure (`ERR_AVA_AUTH`, `ERR_AVA_STATE_CHECKSUM`, ...), `ERR_AVA_CONNECT`, or
 *   `ERR_AVA_CHANNEL_CLOSED` when the target went away.
 */
export async function sendState(session: WorkerSession, options: SendStateOptions): Promise<StateSendStats> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_STATE_CHUNK_BYTES;
  const socket = await openSocket(options.address);
  socket.setNoDelay(true);
  const incoming = frameQueue(socket);
  try {
    socket.write(encodeFrame({ t: 'stateHello', v: PROTOCOL_VERSION, intake: options.intake, ...(options.token ? { token: options.token } : {}) }));
    const welcome = await incoming.next();
    if (welcome.t !== 'welcome') throw new AvaError('ERR_AVA_HANDSHAKE', `expected a welcome on the state stream, got ${welcome.t}`);

    const pool = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
    const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    let which = 0;
    let bytes = 0;
    let extractMs = 0;
    const sent = new Set<number>();
    const skipped: number[] = [];
    objects: for (const item of options.objects) {
      for (const [start, size] of segmentsOf(item)) {
        const end = start + size;
        for (let offset = start; offset < end;) {
          const buffer = pool[which]!;
          await written[which]; // the socket has taken this buffer's previous chunk
          incoming.throwIfFailed();
          const want = Math.min(chunkBytes, end - offset);
          const t0 = performance.now();
          let chunk: Uint8Array;
          try {
            chunk = await session.extractState(item.id, item.held === true, { offset, length: want }, buffer);
          } catch (error) {
            if (!options.skipReleased || !isReleasedError(error)) throw error;
            skipped.push(item.id);
            continue objects;
          }
          extractMs += performance.now() - t0;
          // An object's first chunk is sent even when empty, so that the target restores it.
          if (chunk.byteLength === 0 && offset > 0) break;
          const frame = encodeFrame({ t: 'stateChunk', id: item.id, offset, n: chunk.byteLength, crc: crc32(chunk) >>> 0, ...(item.held ? { held: true } : {}) });
          socket.cork();
          socket.write(frame);
          written[which] = new Promise<void>((resolve) => socket.write(chunk, () => resolve()));
          socket.uncork();
          which = 1 - which;
          sent.add(item.id);
          bytes += chunk.byteLength;
          offset += chunk.byteLength;
          // A short chunk is the object's end (a kind without ranges hands over all its state in one chunk).
          if (chunk.byteLength !== want) break;
        }
      }
    }
    socket.write(encodeFrame({ t: 'stateDone', objects: sent.size, bytes }));
    const done = await incoming.next();
    if (done.t !== 'stateDone') throw new AvaError('ERR_AVA_HANDSHAKE', `expected stateDone on the state stream, got ${done.t}`);
    if (done.bytes !== bytes || done.objects !== sent.size) {
      throw new AvaError('ERR_AVA_STATE_CHECKSUM', `the target restored ${done.bytes} bytes of ${done.objects} objects, ${bytes} bytes of ${sent.size} were sent`);
    }
    return { objects: sent.size, bytes, extractMs, skipped };
  } finally {
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

/** Frames the target sends on a state stream, one at a time; an `error` frame or a close fails what waits. */
function frameQueue(socket: Socket): { next(): Promise<Frame>; throwIfFailed(): void } {
  const reader = new FrameReader({ maxFrameBytes: STREAM_FRAME_BYTES });
  const frames: Frame[] = [];
  let failed: AvaError | undefined;
  let waiter: { resolve(f: Frame): void; reject(e: unknown): void } | undefined;
  const fail = (error: AvaError): void => {
    failed ??= error;
    waiter?.reject(failed);
    waiter = undefined;
  };
  socket.on('data', (data: Buffer) => {
    for (const frame of reader.push(data)) {
      if (frame.t === 'error') fail(fromWireError(frame.error));
      else if (waiter) { waiter.resolve(frame); waiter = undefined; } else frames.push(frame);
    }
    if (reader.failed) fail(reader.failed);
  });
  socket.on('error', (error) => fail(new AvaError('ERR_AVA_CHANNEL_CLOSED', `the state stream broke: ${error.message}`, { cause: error })));
  socket.on('close', () => fail(new AvaError('ERR_AVA_CHANNEL_CLOSED', 'the target worker closed the state stream')));
  return {
    next: () => {
      const frame = frames.shift();
      if (frame) return Promise.resolve(frame);
      if (failed) return Promise.reject(failed);
      return new Promise<Frame>((resolve, reject) => { waiter = { resolve, reject }; });
    },
    throwIfFailed: () => { if (failed) throw failed; },
  };
}

/** A chunk being received: its frame, and the buffer its bytes go into once one is free. */
interface IncomingChunk {
  readonly id: number;
  readonly offset: number;
  readonly n: number;
  readonly crc: number;
  readonly held: boolean;
  body?: Buffer;
  filled: number;
}

/**
 * Serves the target's end of a state stream on `socket` (its `stateHello` already read, `rest` the bytes after it):
 * answers `welcome`, writes each chunk into `session`'s object and checks it, and answers `stateDone` or `error`.
 * Chunks are received into two reused buffers; the socket pauses while both wait to be written.
 */
export function receiveState(session: WorkerSession, socket: Socket, rest: Buffer, workerId: string, maxChunkBytes: number): void {
  const limits = { ...DEFAULT_LIMITS, maxFrameBytes: STREAM_FRAME_BYTES };
  const queue: Buffer[] = rest.byteLength > 0 ? [rest] : [];
  let queued = rest.byteLength;
  const free: Buffer[] = [];
  let pooled = 0;
  let chunk: IncomingChunk | undefined;
  const objects = new Set<number>();
  let bytes = 0;
  const restores: Promise<void>[] = [];
  let ended = false;
  let readBack: Buffer | undefined;

  const fail = (error: unknown): void => {
    if (ended && socket.writableEnded) return;
    ended = true;
    const coded = AvaError.isAvaError(error) ? error : new AvaError('ERR_AVA_INTERNAL', String(error));
    socket.end(encodeFrame({ t: 'error', error: toWireError(coded) }));
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  /** Joins the first pieces of the queue until the first holds `n` bytes (they are there): frames are small. */
  const gather = (n: number): void => {
    let count = 1;
    for (let have = queue[0]!.byteLength; have < n; count++) have += queue[count]!.byteLength;
    if (count > 1) queue.splice(0, count, Buffer.concat(queue.slice(0, count)));
  };

  /** Takes `n` bytes off the front of the queue (the first piece holds them). */
  const take = (n: number): Buffer => {
    const head = queue[0]!;
    if (head.byteLength === n) queue.shift();
    else queue[0] = head.subarray(n);
    queued -= n;
    return head.subarray(0, n);
  };

  /** A buffer for a chunk of `n` bytes: one of two pooled ones, or its own for larger whole-object state. */
  const bufferFor = (n: number): Buffer | undefined => {
    if (n > maxChunkBytes) return Buffer.allocUnsafe(n);
    if (free.length > 0) return free.pop();
    if (pooled < 2) { pooled++; return Buffer.allocUnsafe(maxChunkBytes); }
    return undefined; // both wait to be written into their objects
  };

  const restore = (c: IncomingChunk & { body: Buffer }): void => {
    objects.add(c.id);
    bytes += c.n;
    // Restores run one at a time in the session's order, so one read-back buffer serves them all.
    readBack ??= Buffer.allocUnsafe(maxChunkBytes);
    restores.push(session.restoreState(c.id, c.body.subarray(0, c.n), c.crc, c.held, c.offset, c.n <= maxChunkBytes ? readBack : undefined).then(
      () => {
        if (c.body.byteLength === maxChunkBytes) free.push(c.body);
        if (socket.isPaused() && !ended) { socket.resume(); pump(); }
      },
      fail,
    ));
  };

  const pump = (): void => {
    try {
      while (!ended) {
        if (chunk) {
          chunk.body ??= bufferFor(chunk.n);
          if (!chunk.body) { socket.pause(); return; }
          if (chunk.filled < chunk.n) {
            if (queued === 0) return;
            const piece = take(Math.min(chunk.n - chunk.filled, queue[0]!.byteLength));
            piece.copy(chunk.body, chunk.filled);
            chunk.filled += piece.byteLength;
            continue;
          }
          restore(chunk as IncomingChunk & { body: Buffer });
          chunk = undefined;
          continue;
        }
        if (queued < 4) return;
        gather(4);
        const length = queue[0]!.readUInt32BE(0);
        if (length > STREAM_FRAME_BYTES) throw new WireFormatError('ERR_AVA_FRAME_TOO_LARGE', `a state stream frame of ${length} bytes`);
        if (queued < 4 + length) return;
        gather(4 + length);
        const frame = decodeBody(take(4 + length).subarray(4), limits);
        if (frame.t === 'stateChunk') {
          chunk = { id: frame.id, offset: frame.offset, n: frame.n, crc: frame.crc, held: frame.held === true, filled: 0 };
        } else if (frame.t === 'stateDone') {
          ended = true;
          void Promise.all(restores).then(() => {
            if (!socket.writableEnded) socket.end(encodeFrame({ t: 'stateDone', objects: objects.size, bytes }));
          });
          return;
        } else {
          throw new WireFormatError('ERR_AVA_BAD_FRAME', `a ${frame.t} frame on a state stream`);
        }
      }
    } catch (error) {
      fail(error);
    }
  };

  socket.on('data', (data: Buffer) => {
    if (ended) return;
    queue.push(data);
    queued += data.byteLength;
    pump();
  });
  socket.on('error', () => undefined);
  socket.write(encodeFrame({ t: 'welcome', v: PROTOCOL_VERSION, worker: workerId, session: session.id }));
  pump();
}
