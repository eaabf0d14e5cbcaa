/**
 * A frame link: a duplex pipe of whole frames between two peers. Sockets (unix, tcp) and the shared-memory ring
 * are links; the guest channel and the worker's connection handler are written once against this interface.
 */
import type { Socket } from 'node:net';
import { toWireError } from '../errors.js';
import { DEFAULT_LIMITS, FrameReader, WireFormatError, encodeBody, encodeFrame } from '../wire/codec.js';
import type { WireLimits } from '../wire/codec.js';
import type { Frame } from '../wire/frames.js';

/** A duplex pipe of frames. */
export interface FrameLink {
  /** Sends a frame; frames arrive in order. */
  send(frame: Frame): void;
  /** Called for every frame received, in order. */
  onFrame(listener: (frame: Frame) => void): void;
  /** Called once when the link closes; `error` is set when it broke (a bad frame, a reset). */
  onClose(listener: (error?: Error) => void): void;
  /** Closes the link (pending frames are flushed first). */
  close(): void;
  /** Changes the largest frame accepted from the peer (small until a handshake is done). */
  setMaxFrameBytes?(bytes: number): void;
  /** Socket links: hands the socket over to another reader (see {@link SocketLink.detach}). */
  detach?(): { socket: Socket; rest: Buffer };
}

/** A frame link over a stream socket, with the codec's length prefix. */
export class SocketLink implements FrameLink {
  readonly socket: Socket;
  readonly #reader: FrameReader;
  readonly #maxSend: number;
  readonly #frameListeners: ((frame: Frame) => void)[] = [];
  readonly #closeListeners: ((error?: Error) => void)[] = [];
  #closed = false;
  #detached = false;
  #error: Error | undefined;
  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed || this.#detached) return;
    const frames = this.#reader.push(chunk);
    for (const frame of frames) {
      for (const l of this.#frameListeners) l(frame);
      if (this.#detached) return;
    }
    if (this.#reader.failed) this.#fail(this.#reader.failed);
  };

  constructor(socket: Socket, limits: Partial<WireLimits> = {}) {
    this.socket = socket;
    this.#reader = new FrameReader(limits);
    // What a peer with default limits accepts (the reading limit may be lowered for a handshake).
    this.#maxSend = DEFAULT_LIMITS.maxFrameBytes;
    socket.setNoDelay?.(true);
    socket.on('data', this.#onData);
    socket.on('error', (error) => { this.#error ??= error; });
    socket.on('close', () => this.#closedNow());
  }

  /** The error that broke the link (a bad frame), kept so the owner can answer it before closing. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** A received frame broke the protocol: answer with an error frame, then close (the peer cannot be resynced). */
  #fail(error: Error): void {
    this.#error = error;
    if (!this.socket.destroyed) this.socket.write(encodeFrame({ t: 'error', error: toWireError(error) }));
    this.close();
  }

  #closedNow(): void {
    if (this.#closed && this.#closeListeners.length === 0) return;
    this.#closed = true;
    const listeners = this.#closeListeners.splice(0);
    for (const l of listeners) l(this.#error);
  }

  /**
   * Sends a frame.
   * @throws {WireFormatError} `ERR_AVA_FRAME_TOO_LARGE` when it is larger than a peer with the same limits accepts.
   */
  send(frame: Frame): void {
    if (this.#closed || this.socket.destroyed) return;
    const body = encodeBody(frame);
    if (body.byteLength > this.#maxSend) {
      throw new WireFormatError('ERR_AVA_FRAME_TOO_LARGE', `a ${frame.t ?? 'frame'} of ${body.byteLength} bytes is over the frame limit of ${this.#maxSend}`);
    }
    // Prefix and body as two writes of one corked packet: a state chunk of megabytes is not copied once more to join
    // them (cbor-x never writes over a body it returned, so the socket may hold it until sent).
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32BE(body.byteLength, 0);
    this.socket.cork();
    this.socket.write(prefix);
    this.socket.write(body);
    this.socket.uncork();
  }

  setMaxFrameBytes(bytes: number): void {
    this.#reader.setMaxFrameBytes(bytes);
  }

  /**
   * Stops reading frames: the socket (and the bytes received after the last frame) go to another reader, as when a
   * connection becomes a raw state stream. The peer must wait for an answer before sending such bytes, so nothing
   * after the last frame was read as frames. Close listeners are dropped.
   */
  detach(): { socket: Socket; rest: Buffer } {
    this.#detached = true;
    this.socket.off('data', this.#onData);
    this.#closeListeners.length = 0;
    return { socket: this.socket, rest: this.#reader.takeRest() };
  }

  onFrame(listener: (frame: Frame) => void): void {
    this.#frameListeners.push(listener);
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.#closed && this.socket.destroyed) listener(this.#error);
    else this.#closeListeners.push(listener);
  }

  close(): void {
    this.#closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}
