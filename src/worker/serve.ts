/**
 * The worker's side of one connection: the hello handshake (protocol version, spec name and hash, token), then
 * calls, batches and control requests of the session it opened. A bad frame or a failed handshake is answered with
 * an error frame and closes this connection only; the worker and its other sessions go on.
 */
import { timingSafeEqual } from 'node:crypto';
import { AvaError, toWireError } from '../errors.js';
import { callFailed } from '../spec/outcome.js';
import type { FrameLink } from '../transport/link.js';
import { DEFAULT_LIMITS } from '../wire/codec.js';
import type { CallFrame, ControlFrame, Frame, ReplyFrame, StateHelloFrame } from '../wire/frames.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import { parseAddress } from '../config.js';
import { encodeBody } from '../wire/codec.js';
import { expandRepeats } from '../wire/repeat.js';
import type { WorkerSession } from './session.js';
import { DEFAULT_STATE_CHUNK_BYTES, receiveState, sendState } from './state-stream.js';
import type { Worker } from './worker.js';

/** Options of {@link serveLink}. */
export interface ServeOptions {
  /** When set, a hello must carry this token. */
  readonly token?: string;
  /** Called when the connection's session ends. */
  readonly onSessionClosed?: (sessionId: string) => void;
  /** Largest frame accepted once the handshake is done (until then: {@link HELLO_MAX_BYTES}). */
  readonly maxFrameBytes?: number;
}

/** Largest frame a peer may send before its hello is accepted: nobody unauthenticated makes the worker buffer more. */
export const HELLO_MAX_BYTES = 64 * 1024;

/** A refused handshake (`ERR_AVA_AUTH`, `ERR_AVA_SPEC_MISMATCH`, `ERR_AVA_HANDSHAKE`). */
export class HandshakeError extends AvaError {}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.byteLength === y.byteLength && timingSafeEqual(x, y);
}

/** Answers control frame `id` with the bytes (or nothing) `work` resolves to, or with its error. */
export function answerControl(send: (frame: Frame) => void, id: number, work: Promise<Uint8Array | undefined>): void {
  work.then(
    (bytes) => send(bytes ? { t: 'controlReply', id, bytes } : { t: 'controlReply', id }),
    (error: unknown) => send({ t: 'controlReply', id, error: toWireError(error) }),
  );
}

/** Runs a `send` control: streams the listed objects' state to another worker; answers with a `stateDone` body. */
async function sendStateFor(session: WorkerSession, frame: ControlFrame): Promise<Uint8Array> {
  if (frame.address === undefined || frame.intake === undefined || frame.objects === undefined) {
    throw new AvaError('ERR_AVA_BAD_FRAME', 'a send control needs address, intake and objects');
  }
  const stats = await sendState(session, {
    address: parseAddress(frame.address, 'state target address'), intake: frame.intake, objects: frame.objects,
    ...(frame.token === undefined ? {} : { token: frame.token }), ...(frame.chunk === undefined ? {} : { chunkBytes: frame.chunk }),
    skipReleased: frame.skipReleased === true,
  });
  return encodeBody({ t: 'stateDone', objects: stats.objects, bytes: stats.bytes, ms: stats.extractMs, ...(stats.skipped.length > 0 ? { skipped: stats.skipped } : {}) });
}

/** Serves one connection of `worker`. */
export function serveLink(worker: Worker, link: FrameLink, options: ServeOptions = {}): void {
  let session: WorkerSession | undefined;
  const refuse = (error: AvaError): void => {
    link.send({ t: 'error', error: toWireError(error) });
    link.close();
  };
  const sendReply = (frame: CallFrame, reply: ReplyFrame): void => {
    try {
      link.send(frame.async ? { t: 'reply', fn: frame.fn, ...reply } : { t: 'reply', ...reply });
    } catch (error) {
      // A reply too large for a frame: the call is answered with the error instead (its effects stand).
      link.send({ t: 'reply', seq: reply.seq, ...(frame.async ? { fn: frame.fn } : {}), error: toWireError(error) });
    }
  };
  const answerIfNeeded = (frame: CallFrame, reply: ReplyFrame): void => {
    if (!frame.async || callFailed(session!.spec, frame.fn, reply)) sendReply(frame, reply);
  };
  const runCall = (frame: CallFrame): void => {
    void session!.execute(frame).then((reply) => answerIfNeeded(frame, reply));
  };
  const runControl = (frame: ControlFrame): void => {
    const s = session!;
    const answer = (p: Promise<Uint8Array | undefined>): void => answerControl((f) => link.send(f), frame.id, p);
    switch (frame.op) {
      case 'extract': answer(s.extractState(frame.handle ?? 0, frame.held === true, frame.length === undefined ? undefined : { offset: frame.offset ?? 0, length: frame.length })); break;
      case 'restore': answer(s.restoreState(frame.handle ?? 0, frame.bytes ?? new Uint8Array(), frame.crc, frame.held === true, frame.offset).then(() => undefined)); break;
      case 'ping': answer(s.drained().then(() => undefined)); break;
      case 'recreate': answer(s.recreateTransient(frame.handle ?? 0, frame.kind ?? '', frame.related ?? []).then(() => undefined)); break;
      case 'close': answer(s.close().then(() => undefined)); break;
      case 'intake': answer(Promise.resolve(Buffer.from(worker.issueIntake(s)))); break;
      case 'send': answer(sendStateFor(s, frame)); break;
    }
  };
  const acceptStateStream = (frame: StateHelloFrame): void => {
    if (options.token !== undefined && (frame.token === undefined || !tokensEqual(frame.token, options.token))) {
      throw new HandshakeError('ERR_AVA_AUTH', 'this worker needs a valid token (AVA_TOKEN)');
    }
    if (!link.detach) throw new HandshakeError('ERR_AVA_HANDSHAKE', 'state streams travel on sockets only');
    const target = worker.takeIntake(frame.intake);
    const { socket, rest } = link.detach();
    receiveState(target, socket, rest, worker.id, DEFAULT_STATE_CHUNK_BYTES);
  };

  link.onFrame((frame: Frame) => {
    try {
      if (!session) {
        if (frame.t === 'stateHello') { acceptStateStream(frame); return; }
        if (frame.t !== 'hello') throw new HandshakeError('ERR_AVA_HANDSHAKE', `expected a hello frame first, got ${frame.t}`);
        if (options.token !== undefined && (frame.token === undefined || !tokensEqual(frame.token, options.token))) {
          throw new HandshakeError('ERR_AVA_AUTH', 'this worker needs a valid token (AVA_TOKEN)');
        }
        if (frame.spec !== worker.spec.name || frame.hash !== worker.spec.hash) {
          throw new HandshakeError('ERR_AVA_SPEC_MISMATCH', `the worker serves ${worker.spec.name} ${worker.spec.hash.slice(0, 12)}, the guest speaks ${frame.spec} ${frame.hash.slice(0, 12)}`);
        }
        session = worker.openSession(frame.session);
        session.timed = true;
        const opened = session;
        opened.onEvent((event) => link.send({ t: 'event', ...event }));
        link.send({ t: 'welcome', v: PROTOCOL_VERSION, worker: worker.id, session: opened.id });
        link.setMaxFrameBytes?.(options.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes);
        return;
      }
      switch (frame.t) {
        case 'call': if (frame.repeat === undefined) runCall(frame); else session.post(expandRepeats([frame]), answerIfNeeded); break;
        case 'batch': session.post(expandRepeats(frame.calls), answerIfNeeded); break;
        case 'control': runControl(frame); break;
        default: throw new HandshakeError('ERR_AVA_BAD_FRAME', `a guest may not send ${frame.t} frames`);
      }
    } catch (error) {
      refuse(AvaError.isAvaError(error) ? error : new AvaError('ERR_AVA_INTERNAL', String(error)));
    }
  });
  link.onClose(() => {
    const s = session;
    if (!s) return;
    void s.close().then(() => options.onSessionClosed?.(s.id));
  });
}
