/**
 * A worker listening on a unix socket or a tcp port: each connection is one guest session (see `serve.ts`).
 * Tcp listeners always require a token; unix sockets are created mode 0600 and take an optional token.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Address } from '../config.js';
import { ConfigError } from '../errors.js';
import { SocketLink } from '../transport/link.js';
import type { WireLimits } from '../wire/codec.js';
import { HELLO_MAX_BYTES, serveLink } from './serve.js';
import type { Worker } from './worker.js';

/** Options of {@link WorkerListener.listen}. */
export interface WorkerListenerOptions {
  readonly worker: Worker;
  readonly address: Address;
  /** Shared secret; required for tcp (generated when absent, read it from `listener.token`). */
  readonly token?: string;
  readonly limits?: Partial<WireLimits>;
}

/** See the module comment. */
export class WorkerListener implements AsyncDisposable {
  readonly worker: Worker;
  /** The bound address (a tcp port 0 becomes the real port). */
  readonly address: Address;
  /** The token guests must present, if any. */
  readonly token: string | undefined;
  readonly #server: Server;
  readonly #sockets: Set<Socket>;

  private constructor(worker: Worker, server: Server, sockets: Set<Socket>, address: Address, token: string | undefined) {
    this.worker = worker;
    this.#server = server;
    this.#sockets = sockets;
    this.address = address;
    this.token = token;
  }

  /** Starts listening. */
  static async listen(options: WorkerListenerOptions): Promise<WorkerListener> {
    const { address } = options;
    const token = address.kind === 'tcp' ? options.token ?? randomBytes(18).toString('base64url') : options.token;
    if (address.kind === 'tcp' && token !== undefined && token.length < 8) throw new ConfigError('a tcp token must have at least 8 characters');
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      const link = new SocketLink(socket, { ...options.limits, maxFrameBytes: HELLO_MAX_BYTES });
      serveLink(options.worker, link, {
        ...(token === undefined ? {} : { token }),
        ...(options.limits?.maxFrameBytes ? { maxFrameBytes: options.limits.maxFrameBytes } : {}),
      });
    });
    if (address.kind === 'unix' && existsSync(address.path)) unlinkSync(address.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (address.kind === 'unix') server.listen(address.path, resolve);
      else server.listen(address.port, address.host, resolve);
    });
    if (address.kind === 'unix') chmodSync(address.path, 0o600);
    const bound = server.address();
    const actual: Address = address.kind === 'tcp' && bound && typeof bound === 'object' ? { kind: 'tcp', host: address.host, port: bound.port } : address;
    return new WorkerListener(options.worker, server, sockets, actual, token);
  }

  /** Number of open connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Stops accepting, closes connections (their sessions release what they left), removes a unix socket file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
    if (this.address.kind === 'unix' && existsSync(this.address.path)) unlinkSync(this.address.path);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
