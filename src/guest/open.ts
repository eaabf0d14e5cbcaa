/**
 * Opening a guestlib: a session over a channel, with its proxy. The one entry point applications use.
 */
import type { ApiSpec } from '../spec/types.js';
import type { Channel } from '../transport/channel.js';
import { randomUUID } from 'node:crypto';
import type { ChannelKind } from '../config.js';
import { printTimestamps } from '../config.js';
import { formatStages } from '../intercept/interceptor.js';
import { openChannel } from '../transport/open-channel.js';
import type { Worker } from '../worker/worker.js';
import type { ApiObject } from './call-shape.js';
import type { Handle } from './handle.js';
import { createProxy, overlay } from './proxy.js';
import type { ProxyOptions } from './proxy.js';
import { GuestSession } from './session.js';

/** Options of {@link openGuestlib} and {@link wrap}. */
export interface GuestlibOptions extends ProxyOptions {
  /** A channel already open to a worker session; by default the one `AVA_CHANNEL` names (see `openChannel`). */
  readonly channel?: Channel;
  /** Overrides `AVA_CHANNEL` when no channel is given. */
  readonly transport?: ChannelKind;
  /** For the default local channel: a worker to share (e.g. to put several sessions on one worker). */
  readonly worker?: Worker;
  /** Session id. */
  readonly sessionId?: string;
}

/** An open guestlib. Close it (or `await using` it) to end the session. */
export interface Guestlib<T = ApiObject> extends AsyncDisposable {
  /** The API: one async function per spec function. */
  readonly api: T;
  readonly session: GuestSession;
  /** The handle for an id found in an info value (e.g. `CL_CONTEXT_DEVICES`). */
  handleAt(kind: string, bytes: ArrayBufferView, index?: number): Handle | null;
  close(): Promise<void>;
}

async function openSession(spec: ApiSpec, options: GuestlibOptions): Promise<GuestSession> {
  const id = options.sessionId ?? randomUUID();
  const channel = options.channel ?? (await openChannel({
    spec, sessionId: id, ...(options.transport ? { kind: options.transport } : {}), ...(options.worker ? { worker: options.worker } : {}),
  }));
  const session = new GuestSession({ spec, channel, id });
  if (printTimestamps()) session.interceptor.calls$.subscribe((event) => process.stderr.write(`${formatStages(event)}\n`));
  return session;
}

function guestlib<T>(api: T, session: GuestSession, handleAt: Guestlib['handleAt']): Guestlib<T> {
  return {
    api,
    session,
    handleAt,
    close: () => session.close(),
    [Symbol.asyncDispose]: () => session.close(),
  };
}

/**
 * Opens a guestlib for `spec`.
 * @example
 * await using lib = await openGuestlib(toyaccSpec);
 * const { outs } = await lib.api.tq_get_devices(2, true);
 */
export async function openGuestlib(spec: ApiSpec, options: GuestlibOptions = {}): Promise<Guestlib> {
  const session = await openSession(spec, options);
  const proxy = createProxy(spec, session, options);
  return guestlib(proxy.api, session, proxy.handleAt);
}

/**
 * Wraps an API object the application already has (a binding, an older guestlib): the functions `spec` names are
 * remoted through a new session, every other member of `existing` is reached as before.
 * @example
 * await using lib = await wrap(existingBinding, openclSpec);
 * await lib.api.clGetPlatformIDs(0, null); // remoted
 */
export async function wrap<T extends object>(existing: T, spec: ApiSpec, options: GuestlibOptions = {}): Promise<Guestlib<T & ApiObject>> {
  const session = await openSession(spec, options);
  const proxy = createProxy(spec, session, options);
  return guestlib(overlay(existing, proxy.api), session, proxy.handleAt);
}
