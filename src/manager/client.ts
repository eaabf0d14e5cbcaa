/**
 * The guest's side of the manager protocol: ask the manager at `AVA_MANAGER_ADDR` for a worker of a spec, get back
 * the worker's address and token. One `assign` frame, one `assigned` (or `error`) frame, then the socket closes.
 */
import type { Address } from '../config.js';
import { parseAddress } from '../config.js';
import { AvaError, fromWireError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import { openSocket } from '../transport/connect.js';
import { SocketLink } from '../transport/link.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';

/** Where the manager placed a session. */
export interface Assignment {
  readonly address: Address;
  readonly worker: string;
  readonly token: string | undefined;
}

/**
 * Asks the manager for a worker.
 * @throws `ERR_AVA_CONNECT` (no manager there), the manager's refusal, or `ERR_AVA_CHANNEL_CLOSED`.
 */
export async function requestWorker(manager: Address, spec: ApiSpec, sessionId: string, token?: string, timeoutMs = 30_000): Promise<Assignment> {
  const link = new SocketLink(await openSocket(manager));
  return new Promise<Assignment>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new AvaError('ERR_AVA_CHANNEL_CLOSED', `the manager did not answer within ${timeoutMs} ms`)); link.close(); }, timeoutMs);
    link.onFrame((frame) => {
      clearTimeout(timer);
      if (frame.t === 'assigned') resolve({ address: parseAddress(frame.address), worker: frame.worker, token: frame.token });
      else reject(frame.t === 'error' ? fromWireError(frame.error) : new AvaError('ERR_AVA_HANDSHAKE', `expected an assigned frame, got ${frame.t}`));
      link.close();
    });
    link.onClose((error) => {
      clearTimeout(timer);
      reject(new AvaError('ERR_AVA_CHANNEL_CLOSED', `the manager closed the connection${error ? `: ${error.message}` : ''}`));
    });
    link.send({ t: 'assign', v: PROTOCOL_VERSION, spec: spec.name, hash: spec.hash, session: sessionId, ...(token ? { token } : {}) });
  });
}
