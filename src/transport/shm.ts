/**
 * The `shm` transport: the guest on the calling thread, its worker in a `node:worker_threads` thread of the same
 * process, frames through two SharedArrayBuffer rings (see shm-ring.ts and shm-link.ts). No sockets and no kernel
 * crossings on the data path: a round trip is two ring writes and two spins.
 *
 * The thread serves one session. Closing the channel ends the thread (terminated after `closeGraceMs` if it does not
 * exit by itself); a thread that dies (`process.exit`, an uncaught error, `terminate()`) closes the link, so every
 * pending call rejects with `ERR_AVA_CHANNEL_CLOSED`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker as NodeWorker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { AvaError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import type { WireLimits } from '../wire/codec.js';
import { RemoteChannel } from './remote.js';
import { ShmLink } from './shm-link.js';
import { DEFAULT_RING_BYTES, createRingBuffer } from './shm-ring.js';
import type { ShmThreadData } from './shm-worker-thread.js';

/** Options of {@link openShmChannel}. */
export interface ShmChannelOptions {
  /** The API; the thread loads the shipped spec of the same name (`loadSpec`), and the hello checks the hash. */
  readonly spec: ApiSpec;
  readonly sessionId: string;
  /** Bytes of each ring's data area (a power of two). @defaultValue 4 MiB */
  readonly ringBytes?: number;
  /** Bounded spin before sleeping, in microseconds, on both sides. @defaultValue 40 */
  readonly spinMicros?: number;
  /** Spin after waking the sleeping peer, in microseconds (covers its wake-up). @defaultValue 250 */
  readonly wakeSpinMicros?: number;
  readonly limits?: Partial<WireLimits>;
  /** How long a closed channel's thread may take to exit before it is terminated. @defaultValue 2000 ms */
  readonly closeGraceMs?: number;
  /** How long to wait for the worker's welcome (the thread loads the native library first). @defaultValue 10000 ms */
  readonly helloTimeoutMs?: number;
}

const threads = new WeakMap<RemoteChannel, NodeWorker>();

/** The worker thread behind an shm channel (for tests and tools: e.g. `terminate()` it to simulate a crash). */
export function shmThreadOf(channel: RemoteChannel): NodeWorker | undefined {
  return threads.get(channel);
}

/**
 * Starts a thread on a module given by the URL of its compiled `.js` file. When that file does not exist (running
 * the TypeScript sources under tsx), the `.ts` file next to it is started instead (as is a `.ts` URL), through a small bootstrap that
 * registers tsx first: on Node 20 a worker's entry module does not go through loaders given by
 * `execArgv: ['--import', 'tsx']` (privatenumber/tsx#354), so that alone fails with ERR_UNKNOWN_FILE_EXTENSION.
 */
export function startModuleThread(jsUrl: URL, options: WorkerOptions = {}): NodeWorker {
  if (!jsUrl.pathname.endsWith('.ts') && existsSync(fileURLToPath(jsUrl))) return new NodeWorker(jsUrl, options);
  const tsUrl = new URL(jsUrl.href.replace(/\.js$/, '.ts'));
  if (!existsSync(fileURLToPath(tsUrl))) throw new AvaError('ERR_AVA_INTERNAL', `no thread entry at ${fileURLToPath(jsUrl)} (nor .ts)`);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(tsUrl.href)}); });`;
  return new NodeWorker(boot, { ...options, eval: true });
}

/**
 * Opens a session on a fresh worker thread and completes the handshake.
 * @example
 * const channel = await openShmChannel({ spec: toyaccSpec, sessionId: 's1' });
 * await using lib = await openGuestlib(toyaccSpec, { channel });
 * @throws the worker's startup or handshake error, or `ERR_AVA_CHANNEL_CLOSED` when the thread died first.
 */
export async function openShmChannel(options: ShmChannelOptions): Promise<RemoteChannel> {
  const ringBytes = options.ringBytes ?? DEFAULT_RING_BYTES;
  const toWorker = createRingBuffer(ringBytes);
  const toGuest = createRingBuffer(ringBytes);
  const wait = {
    ...(options.spinMicros === undefined ? {} : { spinMicros: options.spinMicros }),
    ...(options.wakeSpinMicros === undefined ? {} : { wakeSpinMicros: options.wakeSpinMicros }),
  };
  const data: ShmThreadData = {
    kind: 'ava-shm-worker',
    spec: options.spec.name,
    rings: { toWorker, toGuest },
    ...wait,
    ...(options.limits ? { limits: options.limits } : {}),
  };
  const thread = startModuleThread(new URL('./shm-worker-thread.js', import.meta.url), { workerData: data, name: `ava-shm ${options.sessionId}` });
  const link = new ShmLink({ rx: toGuest, tx: toWorker }, { ...wait, ...(options.limits ? { limits: options.limits } : {}) });

  let exited = false;
  let threadError: Error | undefined;
  let grace: ReturnType<typeof setTimeout> | undefined;
  thread.on('error', (error) => { threadError ??= error; });
  thread.once('exit', (code) => {
    exited = true;
    if (grace !== undefined) clearTimeout(grace);
    link.destroy(new AvaError('ERR_AVA_WORKER_EXIT', `the shm worker thread exited (code ${code})${threadError ? `: ${threadError.message}` : ''}`, threadError ? { cause: threadError } : {}));
  });
  const ended = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
  link.onClose(() => {
    if (!exited) grace = setTimeout(() => void thread.terminate(), options.closeGraceMs ?? 2000);
  });

  try {
    const channel = await RemoteChannel.open({
      kind: 'shm', link, spec: options.spec, sessionId: options.sessionId,
      ...(options.helloTimeoutMs === undefined ? {} : { helloTimeoutMs: options.helloTimeoutMs }),
      // close() resolves once the thread is gone (it ends by itself, or is terminated after the grace period).
      dispose: () => ended,
    });
    threads.set(channel, thread);
    return channel;
  } catch (error) {
    link.destroy();
    void thread.terminate();
    throw error;
  }
}
