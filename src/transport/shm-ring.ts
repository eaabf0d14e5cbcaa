/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer, carrying length-prefixed messages (frame
 * bodies made by the wire codec) between two threads of one process.
 *
 * Layout (Int32 words of the header; each group the same side writes sits on its own 64-byte line):
 *
 * | word | name | written by | meaning |
 * |---|---|---|---|
 * | 0 | HEAD | producer | bytes written so far (wraps at 2^32) |
 * | 1 | WRITER_WAITING | producer | 1 while the producer sleeps for space |
 * | 16 | TAIL | consumer | bytes read so far (wraps at 2^32) |
 * | 17 | READER_WAITING | consumer | 1 while the consumer sleeps for data |
 * | 32 | READER_BELL | producer, closer | bumped (then `Atomics.notify`) to wake a sleeping consumer |
 * | 48 | WRITER_BELL | consumer, closer | bumped (then `Atomics.notify`) to wake a sleeping producer |
 * | 56 | MAGIC | creator | {@link RING_MAGIC} |
 * | 57 | SIZE | creator | bytes of the data area, a power of two |
 * | 58 | CLOSED | either | 1 once either side closed the ring: no more bytes will come, none will be read |
 *
 * The data area follows the 256-byte header. A message is a 4-byte big-endian length (as on the socket
 * transports) then the body; either may wrap around the end of the data area. A message larger than the data area
 * is streamed: the producer writes what fits and goes on as the consumer drains, the consumer reassembles it, so
 * any size up to `maxMessageBytes` travels through any ring.
 *
 * Waiting ({@link Waiter}): a side with nothing to do first spins for a short, bounded time (a sleeping wake-up
 * costs tens of µs even in C on small VMs), one turn of the event loop per check, so that the thread's other work
 * (another socket, a native call's completion, the continuations of what it just received) goes on meanwhile; then
 * it sets its WAITING word and sleeps with `Atomics.waitAsync` on its bell. The other side bumps the bell only when WAITING is
 * set, so a busy ring costs no notify at all. The WAITING store and the index store are both sequentially
 * consistent, so a wake-up is never lost: either the producer sees WAITING, or the consumer's re-check after setting
 * it sees the new HEAD. A side that has just woken its peer spins longer for the answer (see {@link Waiter}), so two
 * sides never settle into waking each other at every message.
 */
import { AvaError, ConfigError } from '../errors.js';
import { WireFormatError } from '../wire/codec.js';

/** Bytes of the header before the data area. */
export const RING_HEADER_BYTES = 256;
/** The data area of a ring by default: 4 MiB. */
export const DEFAULT_RING_BYTES = 4 * 1024 * 1024;
/** Default bounded spin before sleeping, in microseconds. */
export const DEFAULT_SPIN_MICROS = 40;
/** Default spin after waking a sleeping peer, in microseconds: longer than a sleeping thread's wake-up. */
export const DEFAULT_WAKE_SPIN_MICROS = 250;
/** Marks an initialized ring header ("AVAR"). */
export const RING_MAGIC = 0x41564152;

/** Word indices of the header (Int32). */
export const W = Object.freeze({
  HEAD: 0, WRITER_WAITING: 1, TAIL: 16, READER_WAITING: 17, READER_BELL: 32, WRITER_BELL: 48, MAGIC: 56, SIZE: 57, CLOSED: 58,
});

const MIN_RING_BYTES = 16;
const MAX_RING_BYTES = 2 ** 30;

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(ta: Int32Array, index: number, value: number): WaitAsyncResult }).waitAsync;

/**
 * Allocates and initializes a ring.
 * @param dataBytes size of the data area, a power of two from 16 bytes to 1 GiB.
 * @throws {ConfigError} `ERR_AVA_CONFIG` for another size.
 */
export function createRingBuffer(dataBytes: number = DEFAULT_RING_BYTES): SharedArrayBuffer {
  if (!Number.isSafeInteger(dataBytes) || dataBytes < MIN_RING_BYTES || dataBytes > MAX_RING_BYTES || (dataBytes & (dataBytes - 1)) !== 0) {
    throw new ConfigError(`a shm ring must hold a power of two of bytes from ${MIN_RING_BYTES} to ${MAX_RING_BYTES}, got ${dataBytes}`);
  }
  const sab = new SharedArrayBuffer(RING_HEADER_BYTES + dataBytes);
  const i32 = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
  i32[W.SIZE] = dataBytes;
  Atomics.store(i32, W.MAGIC, RING_MAGIC);
  return sab;
}

/** A view of a ring made by {@link createRingBuffer}; shared by its producer and its consumer. */
export class ShmRing {
  readonly buffer: SharedArrayBuffer;
  /** The header words. */
  readonly i32: Int32Array;
  /** The data area. */
  readonly data: Uint8Array;
  /** Bytes of the data area. */
  readonly size: number;
  readonly mask: number;

  /** @throws {ConfigError} when `buffer` is not an initialized ring. */
  constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < RING_HEADER_BYTES + MIN_RING_BYTES) throw new ConfigError('not a shm ring buffer');
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    this.size = this.i32[W.SIZE]!;
    if (Atomics.load(this.i32, W.MAGIC) !== RING_MAGIC || this.size + RING_HEADER_BYTES !== buffer.byteLength) throw new ConfigError('not a shm ring buffer');
    this.mask = this.size - 1;
    this.data = new Uint8Array(buffer, RING_HEADER_BYTES, this.size);
  }

  /** True once either side closed the ring. */
  get closed(): boolean {
    return Atomics.load(this.i32, W.CLOSED) !== 0;
  }

  /** Closes the ring for both sides and wakes whoever sleeps on it. Idempotent. */
  close(): void {
    Atomics.store(this.i32, W.CLOSED, 1);
    bell(this.i32, W.READER_BELL);
    bell(this.i32, W.WRITER_BELL);
  }
}

/** Bumps a bell word and wakes its sleepers. */
export function bell(i32: Int32Array, bellIndex: number): void {
  Atomics.add(i32, bellIndex, 1);
  Atomics.notify(i32, bellIndex);
}

/**
 * Rings `bellIndex` only when the other side said it sleeps (`waitingIndex`): free while both sides are busy.
 * Returns whether it rang, i.e. whether the other side was asleep and now has a wake-up ahead of it.
 */
export function wake(i32: Int32Array, waitingIndex: number, bellIndex: number): boolean {
  if (Atomics.load(i32, waitingIndex) === 0) return false;
  bell(i32, bellIndex);
  return true;
}

/**
 * How a {@link Waiter} spins: `turns` checks once per turn of the event loop (an immediate each), so nothing else on
 * the thread waits for the spin; `tight` checks in a busy loop that holds the event loop for the whole spin.
 *
 * Links spin in turns. A tight spin held everything else on the thread: in ava-guestd the C front's socket (read only
 * between spins), on the worker's thread the completion of a blocking call run off the loop (its reply sent only
 * once the spin gave up), and on both ends the promise continuations of a frame just delivered. Measured through the
 * ICD over AVA_CHANNEL=SHM (fixtures/opencl-c/microbench, 2-core VM): a query round trip 310 -> 120 us, a launch and
 * its finish 345 -> 260 us. The raw ping-pong of bench/shm.ts (the floor) keeps the tight spin.
 */
export type SpinMode = 'turns' | 'tight';

/**
 * How one side waits for one condition: spin for a short, bounded time (see {@link SpinMode}), then sleep with
 * `Atomics.waitAsync` on its bell (setting its WAITING word so the other side rings).
 *
 * A sleeping side wakes slowly (tens of µs, more than the spin). So when a side has just woken its peer, the answer
 * it expects will come late, and if it then spun only the usual time it would be asleep itself when the answer
 * came, and both sides would go on waking each other at every message. {@link expect} lengthens the next spin to
 * cover the peer's wake-up (and rouses this side if it sleeps), which breaks that pattern at once.
 */
export class Waiter {
  readonly #i32: Int32Array;
  readonly #waitingIndex: number;
  readonly #bellIndex: number;
  readonly #spinMs: number;
  readonly #mode: SpinMode;
  #until = 0;
  #sleeping = false;

  constructor(i32: Int32Array, waitingIndex: number, bellIndex: number, spinMicros: number = DEFAULT_SPIN_MICROS, mode: SpinMode = 'turns') {
    this.#i32 = i32;
    this.#waitingIndex = waitingIndex;
    this.#bellIndex = bellIndex;
    this.#spinMs = spinMicros / 1000;
    this.#mode = mode;
  }

  /** True while asleep in `Atomics.waitAsync`. */
  get sleeping(): boolean {
    return this.#sleeping;
  }

  /**
   * Waits for `ready()`: returns true when it holds now, or (spinning `tight`) within the spin: the caller goes on at
   * once. Otherwise returns false, and `then` is called later (always asynchronously) once it holds or the bell rang.
   * `ready` must be cheap (an `Atomics.load` and a compare).
   */
  wait(ready: () => boolean, then: () => void): boolean {
    if (ready()) return true;
    if (this.#spinMs > 0) {
      const end = Math.max(performance.now() + this.#spinMs, this.#until);
      if (this.#mode === 'turns') {
        const turn = (): void => {
          if (ready()) then();
          else if (performance.now() < Math.max(end, this.#until)) setImmediate(turn);
          else this.#sleep(ready, then);
        };
        setImmediate(turn);
        return false;
      }
      for (;;) {
        for (let i = 0; i < 32; i++) if (ready()) return true;
        if (performance.now() >= end) break;
      }
    }
    this.#sleep(ready, then);
    return false;
  }

  /** Sleeps on the bell until it rings (or `ready()` already holds), then calls `then`. */
  #sleep(ready: () => boolean, then: () => void): void {
    const i32 = this.#i32;
    this.#sleeping = true;
    Atomics.store(i32, this.#waitingIndex, 1);
    const seen = Atomics.load(i32, this.#bellIndex);
    const done = (): void => {
      this.#sleeping = false;
      Atomics.store(i32, this.#waitingIndex, 0);
      then();
    };
    if (ready()) {
      setImmediate(done);
      return;
    }
    const result = waitAsync(i32, this.#bellIndex, seen);
    if (result.async) void result.value.then(done);
    else setImmediate(done);
  }

  /** Something is about to arrive: spin at least `micros` from now before sleeping, and wake up if asleep. */
  expect(micros: number): void {
    if (micros > 0) this.#until = Math.max(this.#until, performance.now() + micros / 1000);
    if (this.#sleeping) bell(this.#i32, this.#bellIndex);
  }
}

/** Options shared by {@link RingWriter} and {@link RingReader}. */
export interface RingWaitOptions {
  /** Bounded spin before sleeping, in microseconds. @defaultValue {@link DEFAULT_SPIN_MICROS} */
  readonly spinMicros?: number;
  /** Spin after waking a sleeping peer, to cover its wake-up (see {@link Waiter}). @defaultValue {@link DEFAULT_WAKE_SPIN_MICROS} */
  readonly wakeSpinMicros?: number;
}

/** Writes the 4-byte big-endian length at index `at` (wrapping). */
function putLength(ring: ShmRing, at: number, n: number): void {
  const { data, mask } = ring;
  data[at & mask] = n >>> 24;
  data[(at + 1) & mask] = n >>> 16;
  data[(at + 2) & mask] = n >>> 8;
  data[(at + 3) & mask] = n;
}

function getLength(ring: ShmRing, at: number): number {
  const { data, mask } = ring;
  return ((data[at & mask]! << 24) | (data[(at + 1) & mask]! << 16) | (data[(at + 2) & mask]! << 8) | data[(at + 3) & mask]!) >>> 0;
}

/** Copies `src` into the data area at index `at` (wrapping). */
function copyIn(ring: ShmRing, at: number, src: Uint8Array): void {
  const p = at & ring.mask;
  const first = Math.min(src.byteLength, ring.size - p);
  if (first === src.byteLength) ring.data.set(src, p);
  else {
    ring.data.set(src.subarray(0, first), p);
    ring.data.set(src.subarray(first), 0);
  }
}

/** Copies `dst.byteLength - offset` (at most `n`) bytes out of the data area at index `at` (wrapping). */
function copyOut(ring: ShmRing, at: number, dst: Uint8Array, offset: number, n: number): void {
  const p = at & ring.mask;
  const first = Math.min(n, ring.size - p);
  dst.set(ring.data.subarray(p, p + first), offset);
  if (first < n) dst.set(ring.data.subarray(0, n - first), offset + first);
}

/**
 * The producer side. {@link send} writes at once when the message fits; otherwise it queues the message (in order
 * after any queued before) and streams it in as the consumer makes room, spinning briefly, then sleeping with
 * `Atomics.waitAsync`. Messages are kept, not copied, while queued: the caller must not change them.
 */
export class RingWriter {
  readonly ring: ShmRing;
  readonly #i32: Int32Array;
  readonly #waiter: Waiter;
  #head: number;
  #tail: number;
  /** Queued pieces (length prefixes and bodies) and the offset reached in the first one. */
  #queue: Uint8Array[] = [];
  #offset = 0;
  #queuedBytes = 0;
  #pumping = false;
  #aborted = false;
  #drained: (() => void)[] = [];

  constructor(ring: ShmRing, options: RingWaitOptions = {}) {
    this.ring = ring;
    this.#i32 = ring.i32;
    this.#waiter = new Waiter(ring.i32, W.WRITER_WAITING, W.WRITER_BELL, options.spinMicros);
    this.#head = Atomics.load(this.#i32, W.HEAD);
    this.#tail = Atomics.load(this.#i32, W.TAIL);
  }

  /** Bytes queued behind a full ring. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** True once the ring closed or {@link abort} was called: sends are dropped. */
  get dead(): boolean {
    return this.#aborted || this.ring.closed;
  }

  #free(need: number): number {
    let free = this.ring.size - ((this.#head - this.#tail) | 0);
    if (free < need) {
      this.#tail = Atomics.load(this.#i32, W.TAIL);
      free = this.ring.size - ((this.#head - this.#tail) | 0);
    }
    return free;
  }

  #publish(): boolean {
    Atomics.store(this.#i32, W.HEAD, this.#head);
    return wake(this.#i32, W.READER_WAITING, W.READER_BELL);
  }

  /**
   * Sends one message (any length up to 4 GiB - 1; the reader enforces its own limit). Dropped when {@link dead}.
   * Returns true when the consumer was asleep and this woke it (its answer will take a wake-up).
   */
  send(body: Uint8Array): boolean {
    if (this.dead) return false;
    const n = body.byteLength;
    if (this.#queue.length === 0 && this.#free(4 + n) >= 4 + n) {
      putLength(this.ring, this.#head, n);
      copyIn(this.ring, this.#head + 4, body);
      this.#head = (this.#head + 4 + n) | 0;
      return this.#publish();
    }
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, n);
    this.#queue.push(prefix, body);
    this.#queuedBytes += 4 + n;
    if (this.#pumping) return false;
    // Write what fits now; the rest streams from the event loop (the sender is never held up by a spin).
    const rang = this.#writeQueued();
    if (this.#queue.length > 0) {
      this.#pumping = true;
      setImmediate(this.#pump);
    }
    return rang;
  }

  /** Writes as much of the queue as fits; returns whether that woke the consumer. */
  #writeQueued(): boolean {
    let wrote = false;
    while (this.#queue.length > 0) {
      const free = this.#free(1);
      if (free <= 0) break;
      const piece = this.#queue[0]!;
      const n = Math.min(free, piece.byteLength - this.#offset);
      copyIn(this.ring, this.#head, n === piece.byteLength ? piece : piece.subarray(this.#offset, this.#offset + n));
      this.#head = (this.#head + n) | 0;
      this.#offset += n;
      this.#queuedBytes -= n;
      wrote = true;
      if (this.#offset === piece.byteLength) {
        this.#queue.shift();
        this.#offset = 0;
      }
    }
    return wrote && this.#publish();
  }

  readonly #hasRoom = (): boolean => Atomics.load(this.#i32, W.TAIL) !== this.#tail || Atomics.load(this.#i32, W.CLOSED) !== 0;

  readonly #pump = (): void => {
    const started = performance.now();
    for (;;) {
      if (this.dead) {
        this.#drop();
        return;
      }
      this.#writeQueued();
      if (this.#queue.length === 0) {
        this.#pumping = false;
        this.#settle();
        return;
      }
      // Let the event loop breathe while streaming a big message.
      if (performance.now() - started > 1) {
        setImmediate(this.#pump);
        return;
      }
      if (!this.#waiter.wait(this.#hasRoom, this.#pump)) return;
    }
  };

  #drop(): void {
    this.#queue = [];
    this.#offset = 0;
    this.#queuedBytes = 0;
    this.#pumping = false;
    this.#settle();
  }

  #settle(): void {
    const waiting = this.#drained.splice(0);
    for (const f of waiting) f();
  }

  /** Calls `then` once everything sent so far is in the ring (or dropped because the ring closed). */
  onDrained(then: () => void): void {
    if (this.#queue.length === 0 || this.dead) {
      if (this.dead) this.#drop();
      queueMicrotask(then);
    } else this.#drained.push(then);
  }

  /** Drops the queue and every later send (the ring itself is left as it is). */
  abort(): void {
    this.#aborted = true;
    this.#drop();
    // A sleeping pump wakes on its own bell; ring it so no wait is left pending.
    bell(this.#i32, W.WRITER_BELL);
  }
}

/** Callbacks and limits of a {@link RingReader}. */
export interface RingReaderOptions extends RingWaitOptions {
  /** Called with each message, in order; the bytes are the callee's (copied out of the ring). */
  readonly onMessage: (body: Uint8Array) => void;
  /** Called once when a message breaks the stream (too long, or `onMessage` threw); the reader has stopped. */
  readonly onError: (error: Error) => void;
  /** Called once when the ring was closed and everything written before was delivered. */
  readonly onEnd: () => void;
  /** Longest message accepted, checked before anything is buffered. @defaultValue 1 GiB */
  readonly maxMessageBytes?: number;
  /** Messages delivered per turn of the event loop before yielding. @defaultValue 256 */
  readonly maxMessagesPerTurn?: number;
}

/**
 * The consumer side. Once started, it delivers messages in order from a turn of the event loop (`setImmediate`),
 * yields after any delivery so that the promise continuations it caused run (they usually send the next request),
 * then spins briefly for more and sleeps with `Atomics.waitAsync` when none come.
 */
export class RingReader {
  readonly ring: ShmRing;
  readonly #i32: Int32Array;
  readonly #options: RingReaderOptions;
  readonly #waiter: Waiter;
  readonly #wakeSpinMicros: number;
  readonly #max: number;
  readonly #perTurn: number;
  #tail: number;
  #seenHead: number;
  #partial: Uint8Array | null = null;
  #got = 0;
  #started = false;
  #stopped = false;
  #scheduled = false;

  constructor(ring: ShmRing, options: RingReaderOptions) {
    this.ring = ring;
    this.#i32 = ring.i32;
    this.#options = options;
    this.#waiter = new Waiter(ring.i32, W.READER_WAITING, W.READER_BELL, options.spinMicros);
    this.#wakeSpinMicros = options.wakeSpinMicros ?? DEFAULT_WAKE_SPIN_MICROS;
    this.#max = options.maxMessageBytes ?? 2 ** 30;
    this.#perTurn = options.maxMessagesPerTurn ?? 256;
    this.#tail = Atomics.load(this.#i32, W.TAIL);
    this.#seenHead = this.#tail;
  }

  /** Starts reading (from the next turn of the event loop). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#schedule();
  }

  /** Stops delivering; nothing more is read. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // Wake a pending wait so that it does not linger.
    bell(this.#i32, W.READER_BELL);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(this.#tick);
  }

  readonly #ready = (): boolean => Atomics.load(this.#i32, W.HEAD) !== this.#seenHead || Atomics.load(this.#i32, W.CLOSED) !== 0;

  readonly #tick = (): void => {
    this.#scheduled = false;
    for (;;) {
      if (this.#stopped) return;
      if (this.#drain()) {
        this.#schedule();
        return;
      }
      if (this.#stopped) return;
      if (Atomics.load(this.#i32, W.CLOSED) !== 0 && Atomics.load(this.#i32, W.HEAD) === this.#seenHead) {
        // Closed, and everything written before the close has been read: the stream ended.
        this.#stopped = true;
        this.#options.onEnd();
        return;
      }
      if (!this.#waiter.wait(this.#ready, this.#tick)) return;
    }
  };

  /**
   * Tells the reader that an answer is coming: the owner just sent a request on the opposite ring. `wokePeer`: that
   * send woke the peer from sleep, so the answer will take its wake-up; spin long enough to catch it. Wakes the
   * reader if it sleeps, so that it spins for the answer rather than waiting to be rung.
   */
  expect(wokePeer: boolean): void {
    if (!this.#stopped) this.#waiter.expect(wokePeer ? this.#wakeSpinMicros : 0);
  }

  #publish(): void {
    Atomics.store(this.#i32, W.TAIL, this.#tail);
    wake(this.#i32, W.WRITER_WAITING, W.WRITER_BELL);
  }

  #fail(error: Error): void {
    this.#stopped = true;
    this.#partial = null;
    this.#options.onError(error);
  }

  #deliver(body: Uint8Array): boolean {
    try {
      this.#options.onMessage(body);
      return true;
    } catch (error) {
      this.#fail(error instanceof Error ? error : new AvaError('ERR_AVA_INTERNAL', String(error)));
      return false;
    }
  }

  /** Reads what is there; returns whether it consumed anything. */
  #drain(): boolean {
    const ring = this.ring;
    const head = Atomics.load(this.#i32, W.HEAD);
    this.#seenHead = head;
    let progressed = false;
    let delivered = 0;
    while (!this.#stopped) {
      const avail = (head - this.#tail) | 0;
      if (avail === 0) break;
      if (this.#partial === null) {
        if (avail < 4) break;
        const n = getLength(ring, this.#tail);
        if (n > this.#max) {
          this.#fail(new WireFormatError('ERR_AVA_FRAME_TOO_LARGE', `frame of ${n} bytes is over the limit of ${this.#max}`));
          return true;
        }
        if (n <= avail - 4) {
          const body = new Uint8Array(n);
          copyOut(ring, this.#tail + 4, body, 0, n);
          this.#tail = (this.#tail + 4 + n) | 0;
          this.#publish();
          progressed = true;
          if (!this.#deliver(body)) return true;
          if (++delivered >= this.#perTurn) break;
          continue;
        }
        // Longer than what is there (maybe longer than the ring): reassemble as it streams in.
        this.#partial = new Uint8Array(n);
        this.#got = 0;
        this.#tail = (this.#tail + 4) | 0;
        this.#publish();
        progressed = true;
        continue;
      }
      const partial = this.#partial;
      const n = Math.min(avail, partial.byteLength - this.#got);
      copyOut(ring, this.#tail, partial, this.#got, n);
      this.#got += n;
      this.#tail = (this.#tail + n) | 0;
      this.#publish();
      progressed = true;
      if (this.#got < partial.byteLength) break;
      this.#partial = null;
      if (!this.#deliver(partial)) return true;
      if (++delivered >= this.#perTurn) break;
    }
    return progressed;
  }
}
