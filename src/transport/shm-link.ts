/**
 * A frame link over two shared-memory rings (one per direction) between two threads of one process: the `shm`
 * transport's {@link FrameLink}. Frames are encoded and decoded by the wire codec (the one codec) and travel as
 * length-prefixed bodies through {@link RingWriter} / {@link RingReader}.
 *
 * Closing: the side that closes first flushes what it queued, then sets the CLOSED word of both rings and rings
 * both bells. The other side's reader delivers what was written before, sees CLOSED and ends; its writer stops.
 * Each side fires its `onClose` listeners exactly once, whichever noticed first. A peer that cannot close (its
 * thread died) is handled by the owner calling {@link ShmLink.destroy} on the surviving side.
 */
import { toWireError } from '../errors.js';
import { DEFAULT_LIMITS, decodeBody, encodeBody } from '../wire/codec.js';
import type { WireLimits } from '../wire/codec.js';
import type { Frame } from '../wire/frames.js';
import type { FrameLink } from './link.js';
import { RingReader, RingWriter, ShmRing } from './shm-ring.js';
import type { RingWaitOptions } from './shm-ring.js';

/** The two rings of one side: `rx` is read, `tx` is written. The peer gets them crossed. */
export interface ShmLinkRings {
  readonly rx: SharedArrayBuffer;
  readonly tx: SharedArrayBuffer;
}

/** Options of {@link ShmLink}. */
export interface ShmLinkOptions extends RingWaitOptions {
  readonly limits?: Partial<WireLimits>;
  /**
   * Keep this thread's event loop alive while the link is open (a pending `Atomics.waitAsync` does not, unlike a
   * socket). @defaultValue true
   */
  readonly keepAlive?: boolean;
  /**
   * How long {@link ShmLink.close} waits for queued frames to find room (a peer that no longer reads) before it
   * drops them. @defaultValue 1000 ms
   */
  readonly closeFlushMs?: number;
}

const noop = (): void => {};

/** See the module comment. */
export class ShmLink implements FrameLink {
  readonly #limits: WireLimits;
  readonly #rx: ShmRing;
  readonly #tx: ShmRing;
  readonly #reader: RingReader;
  readonly #writer: RingWriter;
  readonly #frameListeners: ((frame: Frame) => void)[] = [];
  readonly #closeListeners: ((error?: Error) => void)[] = [];
  #state: 'open' | 'closing' | 'closed' = 'open';
  #fired = false;
  #error: Error | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  readonly #closeFlushMs: number;

  /** @throws {ConfigError} `ERR_AVA_CONFIG` when a buffer is not a ring made by `createRingBuffer`. */
  constructor(rings: ShmLinkRings, options: ShmLinkOptions = {}) {
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#closeFlushMs = options.closeFlushMs ?? 1000;
    this.#rx = new ShmRing(rings.rx);
    this.#tx = new ShmRing(rings.tx);
    const wait = {
      ...(options.spinMicros === undefined ? {} : { spinMicros: options.spinMicros }),
      ...(options.wakeSpinMicros === undefined ? {} : { wakeSpinMicros: options.wakeSpinMicros }),
    };
    this.#writer = new RingWriter(this.#tx, wait);
    this.#reader = new RingReader(this.#rx, {
      ...wait,
      maxMessageBytes: this.#limits.maxFrameBytes,
      onMessage: (body) => this.#receive(body),
      onError: (error) => this.#fail(error),
      onEnd: () => this.#peerClosed(),
    });
    if (options.keepAlive ?? true) this.#keepAlive = setInterval(noop, 2 ** 30);
    // Reading starts on the next turn, after the owner registered its listeners.
    this.#reader.start();
  }

  /** The error that broke the link (a bad frame, the peer's death), kept so the owner can report it. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Bytes of frames waiting for room in the outgoing ring. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  #receive(body: Uint8Array): void {
    // A WireFormatError thrown here stops the reader, which reports it to #fail.
    const frame = decodeBody(body, this.#limits);
    if (this.#state !== 'open') return;
    for (const l of this.#frameListeners) {
      try {
        l(frame);
      } catch (error) {
        // A listener's bug is not the peer's: surface it as an uncaught error, as an event emitter would, and go on.
        process.nextTick(() => { throw error; });
      }
    }
  }

  /** A received frame broke the protocol: answer with an error frame, then close (the stream cannot be resynced). */
  #fail(error: Error): void {
    this.#error ??= error;
    if (this.#state === 'open') this.#writer.send(encodeBody({ t: 'error', error: toWireError(error) }));
    this.close();
  }

  /** The peer closed (or destroyed) the rings and everything it wrote before was delivered. */
  #peerClosed(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#writer.abort();
    this.#rx.close();
    this.#tx.close();
    this.#fire();
  }

  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#reader.stop();
    this.#tx.close();
    this.#rx.close();
    this.#fire();
  }

  #fire(): void {
    if (this.#fired) return;
    this.#fired = true;
    if (this.#keepAlive !== undefined) clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    const listeners = this.#closeListeners.splice(0);
    const error = this.#error;
    queueMicrotask(() => {
      for (const l of listeners) l(error);
    });
  }

  send(frame: Frame): void {
    if (this.#state !== 'open' || this.#writer.dead) return;
    // Whatever is sent is usually answered: have the reader spin for it (longer if the peer had to be woken).
    this.#reader.expect(this.#writer.send(encodeBody(frame)));
  }

  onFrame(listener: (frame: Frame) => void): void {
    this.#frameListeners.push(listener);
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.#fired) queueMicrotask(() => listener(this.#error));
    else this.#closeListeners.push(listener);
  }

  /** Closes the link after the frames already sent are in the ring; frames received from now on are dropped. */
  close(): void {
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#reader.stop();
    if (this.#writer.queuedBytes > 0) {
      // A peer that stopped reading must not hold the close forever: drop what is left after a while.
      const timer = setTimeout(() => this.#writer.abort(), this.#closeFlushMs);
      timer.unref();
      this.#writer.onDrained(() => {
        clearTimeout(timer);
        this.#finish();
      });
    } else this.#finish();
  }

  /**
   * Closes the link at once, dropping queued frames: for an owner that saw the peer die. `error` (if none was
   * recorded) is what the close listeners get.
   */
  destroy(error?: Error): void {
    if (this.#state === 'closed') return;
    if (error) this.#error ??= error;
    this.#state = 'closed';
    this.#reader.stop();
    this.#writer.abort();
    this.#rx.close();
    this.#tx.close();
    this.#fire();
  }
}
