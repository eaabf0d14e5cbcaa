/**
 * ava-guestd's side of one C front connection: the front (a native program's OpenCL calls, marshalled by the
 * generated C library) speaks the wire's guest protocol (hello, call, batch, control); this feeds its call records
 * into the same guest session a TypeScript program gets (interceptor, journal, migration trigger, switch-over,
 * failover, any transport to the workers) and sends the replies and callback events back.
 *
 * The front issues its own handle and callback ids and sequence numbers; the session numbers calls in the order
 * frames arrive, and each reply carries the front's `seq` back.
 */
import { AvaError, toWireError } from '../errors.js';
import type { OpenedSession } from '../guest/open.js';
import type { ApiSpec } from '../spec/types.js';
import type { FrameLink } from '../transport/link.js';
import type { CallFrame, ControlFrame, Frame, ReplyFrame } from '../wire/frames.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import { answerControl, HandshakeError } from '../worker/serve.js';

/** Options of {@link serveFront}. */
export interface ServeFrontOptions {
  readonly spec: ApiSpec;
  /** Opens the session the front's calls go to (by default from the AVA_* variables: see `openSession`). */
  readonly open: (sessionId: string) => Promise<OpenedSession>;
  /** Called for every frame received from the front and every frame sent to it (see ava-guestd's polling). */
  readonly onActivity?: () => void;
}

/** A front being served. */
export interface FrontConnection {
  /** Closes the session (journal complete, a migration in progress finished); the same promise on every call. */
  end(): Promise<void>;
  /** Resolves once the link closed and the session is closed. */
  readonly done: Promise<void>;
}

/**
 * Serves one front. When the link closes (the program ended or crashed) the session is closed; a front that only
 * half-closes (shuts its writing side and waits) is answered by calling `end()` and then closing the link.
 */
export function serveFront(link: FrameLink, options: ServeFrontOptions): FrontConnection {
  const { spec } = options;
  let opened: OpenedSession | undefined;
  let opening: Promise<void> | undefined;
  /** Frames that arrived while the session was being opened, in order. */
  const queued: Frame[] = [];
  /** An asynchronous call's failure consumed while posting: reported on the next waiting call, as the session would. */
  let pendingFailure: unknown;

  const { onActivity } = options;
  const send = (frame: Frame): void => {
    onActivity?.();
    try {
      link.send(frame);
    } catch (error) {
      if ('seq' in frame && frame.t === 'reply') link.send({ t: 'reply', seq: frame.seq, error: toWireError(error) });
    }
  };

  const call = (frame: CallFrame): void => {
    const session = opened!.session;
    const reply = (r: Omit<ReplyFrame, 'seq'>): void => {
      const failure = pendingFailure;
      pendingFailure = undefined;
      if (failure !== undefined) send({ t: 'reply', seq: frame.seq, error: toWireError(failure) });
      else send({ t: 'reply', seq: frame.seq, ...(r.ret === undefined ? {} : { ret: r.ret }), ...(r.outs ? { outs: r.outs } : {}), ...(r.error ? { error: r.error } : {}) });
    };
    session.call(frame.fn, frame.args, frame.retId ?? null, undefined, frame.deliver).then(reply, (error: unknown) => reply({ error: toWireError(error) }));
  };

  /** Posts the call, and its repeats (the front's shorthand for the same call made again: see CallFrame.repeat). */
  const post = (frame: CallFrame): void => {
    const session = opened!.session;
    const { fn, args } = frame;
    const retId = frame.retId ?? null;
    for (let n = frame.repeat ?? 0; n >= 0; n--) {
      try {
        session.post(fn, args, retId);
      } catch (error) {
        // An earlier asynchronous call failed: keep its error for the next waiting call, and still post this one.
        if ((error as { code?: string }).code !== 'ERR_AVA_ASYNC_CALL_FAILED') throw error;
        pendingFailure ??= error;
        session.post(fn, args, retId);
      }
    }
  };

  const control = (frame: ControlFrame): void => {
    const session = opened!.session;
    const work = frame.op === 'extract' ? session.extractState(frame.handle ?? 0)
      : frame.op === 'restore' ? session.restoreState(frame.handle ?? 0, frame.bytes ?? new Uint8Array(), frame.offset ?? 0).then(() => undefined)
      : Promise.reject(new HandshakeError('ERR_AVA_BAD_FRAME', `a front may not send control ${frame.op}`));
    answerControl(send, frame.id, work);
  };

  const handle = (frame: Frame): void => {
    switch (frame.t) {
      case 'call': if (frame.async) post(frame); else call(frame); break;
      case 'batch': for (const c of frame.calls) { if (c.async) post(c); else call(c); } break;
      case 'control': control(frame); break;
      default: throw new HandshakeError('ERR_AVA_BAD_FRAME', `a front may not send ${frame.t} frames`);
    }
  };

  const refuse = (error: unknown): void => {
    link.send({ t: 'error', error: toWireError(AvaError.isAvaError(error) ? error : new AvaError('ERR_AVA_INTERNAL', String(error))) });
    link.close();
  };

  link.onFrame((frame) => {
    onActivity?.();
    try {
      if (opening === undefined) {
        if (frame.t !== 'hello') throw new HandshakeError('ERR_AVA_HANDSHAKE', `expected a hello frame first, got ${frame.t}`);
        if (frame.spec !== spec.name || frame.hash !== spec.hash) {
          throw new HandshakeError('ERR_AVA_SPEC_MISMATCH', `ava-guestd serves ${spec.name} ${spec.hash.slice(0, 12)}, the C front was built for ${frame.spec} ${frame.hash.slice(0, 12)}: rebuild it`);
        }
        opening = options.open(frame.session).then((s) => {
          opened = s;
          s.session.onEvent((event) => send({ t: 'event', callback: event.callback, args: event.args }));
          send({ t: 'welcome', v: PROTOCOL_VERSION, worker: s.session.channel.constructor.name, session: s.session.id });
          for (const f of queued.splice(0)) handle(f);
        }, refuse);
        return;
      }
      if (!opened) queued.push(frame);
      else handle(frame);
    } catch (error) {
      refuse(error);
    }
  });

  let ending: Promise<void> | undefined;
  const end = (): Promise<void> => {
    ending ??= (opening ? opening.then(() => opened?.close()) : Promise.resolve()).catch((error: unknown) => {
      process.stderr.write(`ava-guestd: closing the session: ${(error as Error).message}\n`);
    });
    return ending;
  };
  const done = new Promise<void>((resolve) => {
    link.onClose(() => { void end().finally(() => resolve()); });
  });
  return { end, done };
}
