/**
 * Picks and opens the channel of a new guest session: an explicit kind, else `AVA_CHANNEL` (LOCAL by default).
 * For unix and tcp the worker is found at `AVA_WORKER_ADDR`, else through the manager at `AVA_MANAGER_ADDR`, else
 * a private worker process is started for the session (and stopped when it closes).
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChannelKind, Env } from '../config.js';
import { authToken, channelKind, managerAddress, workerAddress } from '../config.js';
import { requestWorker } from '../manager/client.js';
import type { ApiSpec } from '../spec/types.js';
import { spawnWorkerProcess } from '../worker/spawn.js';
import type { Worker } from '../worker/worker.js';
import type { Channel } from './channel.js';
import { connectSocketChannel } from './connect.js';
import { LocalChannel } from './local.js';
import { openShmChannel } from './shm.js';

/** Options of {@link openChannel}. */
export interface OpenChannelOptions {
  readonly spec: ApiSpec;
  readonly sessionId: string;
  /** Overrides `AVA_CHANNEL`. */
  readonly kind?: ChannelKind;
  /** For `local`: a worker to share. */
  readonly worker?: Worker;
  /** Environment to read `AVA_*` from. @defaultValue process.env */
  readonly env?: Env;
}

/** Opens the channel (see the module comment). */
export async function openChannel(options: OpenChannelOptions): Promise<Channel> {
  const env = options.env ?? process.env;
  const kind = options.kind ?? channelKind(env);
  const { spec, sessionId } = options;
  if (kind === 'local') return LocalChannel.open({ spec, sessionId, ...(options.worker ? { worker: options.worker } : {}) });
  if (kind === 'shm') return openShmChannel({ spec, sessionId });
  const token = authToken(env);
  const direct = workerAddress(env);
  if (direct) return connectSocketChannel({ address: direct, spec, sessionId, ...(token ? { token } : {}) });
  const manager = managerAddress(env);
  if (manager) {
    const placed = await requestWorker(manager, spec, sessionId, token);
    return connectSocketChannel({ address: placed.address, spec, sessionId, ...(placed.token ? { token: placed.token } : {}) });
  }
  const listen = kind === 'unix'
    ? { kind: 'unix' as const, path: join(tmpdir(), `ava-worker-${process.pid}-${randomBytes(4).toString('hex')}.sock`) }
    : { kind: 'tcp' as const, host: '127.0.0.1', port: 0 };
  const worker = await spawnWorkerProcess({ spec: spec.name, listen, ...(token ? { token } : {}) });
  try {
    return await connectSocketChannel({
      address: worker.address, spec, sessionId, ...(worker.token ? { token: worker.token } : {}), dispose: () => worker.stop(),
    });
  } catch (error) {
    await worker.stop();
    throw error;
  }
}
