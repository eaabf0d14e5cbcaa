/**
 * A frame link: a duplex pipe of whole frames between two peers. Sockets (unix, tcp) and the shared-memory ring
 * are links; the guest channel and the worker's connection handler are written once against this interface.
 */
import { Socket } from 'node:net';
import { AvaError, toWireError } from '../errors.js';
import { DEFAULT_LIMITS, FrameReader, WireFormatError, encodeBodyPieces, encodeFrame } from '../wire/codec.js';
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
  readonly #direct: boolean;
  #error: Error | undefined;
  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed || this.#detached) return;
    this.#deliver(this.#reader.push(chunk));
  };

  #deliver(frames: Frame[]): void {
    for (const frame of frames) {
      for (const l of this.#frameListeners) l(frame);
      if (this.#detached) return;
    }
    if (this.#reader.failed) this.#fail(this.#reader.failed);
  }

  /**
   * A link over a socket it makes of an open file descriptor (a unix socket), reading frames in place: the socket
   * reads straight into the frame a large one goes to (`FrameReader.nextReadBuffer`), so bulk data is copied once
   * less. Such a link cannot {@link detach}.
   */
  static overFd(fd: number, limits: Partial<WireLimits> = {}): SocketLink {
    const reader = new FrameReader(limits);
    let link: SocketLink | undefined;
    // `onread` is in Node's net.Socket options (since 15.8) but not in @types/node's constructor type.
    const socket = new Socket({
      fd, readable: true, writable: true, allowHalfOpen: true,
      onread: {
        buffer: () => reader.nextReadBuffer(),
        callback: (n: number) => {
          if (!link || link.#closed) return;
          link.#deliver(reader.received(n));
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    link = new SocketLink(socket, limits, reader);
    return link;
  }

  /** @param direct the reader `overFd` wired the socket's reads to (no 'data' events then). */
  constructor(socket: Socket, limits: Partial<WireLimits> = {}, direct?: FrameReader) {
    this.socket = socket;
    this.#reader = direct ?? new FrameReader(limits);
    this.#direct = direct !== undefined;
    // What a peer with default limits accepts (the reading limit may be lowered for a handshake).
    this.#maxSend = DEFAULT_LIMITS.maxFrameBytes;
    socket.setNoDelay?.(true);
    if (!direct) socket.on('data', this.#onData);
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
    const pieces = encodeBodyPieces(frame);
    let length = 0;
    for (const p of pieces) length += p.byteLength;
    if (length > this.#maxSend) {
      throw new WireFormatError('ERR_AVA_FRAME_TOO_LARGE', `a ${frame.t ?? 'frame'} of ${length} bytes is over the frame limit of ${this.#maxSend}`);
    }
    // Prefix and body pieces as writes of one corked packet: large byte strings (a read's bytes, a state chunk) are
    // written from where they are, not copied into one buffer (cbor-x never writes over a body it returned, and
    // nothing changes a frame's bytes once sent, so the socket may hold them until written).
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32BE(length, 0);
    this.socket.cork();
    this.socket.write(prefix);
    for (const p of pieces) this.socket.write(p);
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
    if (this.#direct) throw new AvaError('ERR_AVA_INTERNAL', 'a link that reads in place (SocketLink.overFd) cannot be detached');
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
