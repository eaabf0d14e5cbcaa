/**
 * Connecting a guest session to a worker over a unix socket or tcp.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Address } from '../config.js';
import { AvaError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import type { WireLimits } from '../wire/codec.js';
import { SocketLink } from './link.js';
import { RemoteChannel } from './remote.js';

/** Options of {@link connectSocketChannel}. */
export interface SocketChannelOptions {
  readonly address: Address;
  readonly spec: ApiSpec;
  readonly sessionId: string;
  readonly token?: string;
  readonly limits?: Partial<WireLimits>;
  /** Runs after the channel closed. */
  readonly dispose?: () => Promise<void>;
}

/** Opens a socket to `address`. @throws `ERR_AVA_CONNECT` when nothing listens there. */
export function openSocket(address: Address): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host);
    socket.once('connect', () => { socket.removeAllListeners('error'); resolve(socket); });
    socket.once('error', (error) => reject(new AvaError('ERR_AVA_CONNECT', `cannot connect to ${address.kind === 'unix' ? address.path : `${address.host}:${address.port}`}: ${error.message}`, { cause: error })));
  });
}

/** Connects a session to the worker at `address` and completes the handshake. */
export async function connectSocketChannel(options: SocketChannelOptions): Promise<RemoteChannel> {
  const socket = await openSocket(options.address);
  return RemoteChannel.open({
    kind: options.address.kind, link: new SocketLink(socket, options.limits), spec: options.spec, sessionId: options.sessionId,
    ...(options.token ? { token: options.token } : {}),
    ...(options.dispose ? { dispose: options.dispose } : {}),
    reachableAt: { address: options.address, ...(options.token ? { token: options.token } : {}) },
  });
}
