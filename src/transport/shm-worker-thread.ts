/**
 * Entry of the worker thread behind the `shm` transport (started by `openShmChannel`, never imported otherwise).
 * It loads the spec by name, opens a {@link Worker} and serves exactly one connection over the rings it was given:
 * one guest session per thread (a thread is cheap, and a session's blocking native calls then never stall another
 * session). When the link closes, the worker closes (releasing what the guest left alive) and the thread ends on
 * its own; the guest side terminates it after a grace period if it does not.
 *
 * A startup failure (unknown spec, native library that does not load) is answered with an error frame, so the guest
 * sees the real error rather than a closed channel.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { loadSpec } from '../apis/registry.js';
import { toWireError } from '../errors.js';
import type { WireLimits } from '../wire/codec.js';
import { serveLink } from '../worker/serve.js';
import { Worker } from '../worker/worker.js';
import { ShmLink } from './shm-link.js';

/** What `openShmChannel` passes as `workerData`. */
export interface ShmThreadData {
  readonly kind: 'ava-shm-worker';
  /** A shipped spec's name (see `loadSpec`). */
  readonly spec: string;
  /** `toWorker` carries guest frames, `toGuest` worker frames. */
  readonly rings: { readonly toWorker: SharedArrayBuffer; readonly toGuest: SharedArrayBuffer };
  readonly spinMicros?: number;
  readonly wakeSpinMicros?: number;
  readonly limits?: Partial<WireLimits>;
}

async function main(data: ShmThreadData): Promise<void> {
  const linkOptions = {
    ...(data.spinMicros === undefined ? {} : { spinMicros: data.spinMicros }),
    ...(data.wakeSpinMicros === undefined ? {} : { wakeSpinMicros: data.wakeSpinMicros }),
    ...(data.limits ? { limits: data.limits } : {}),
  };
  let worker: Worker;
  try {
    worker = await Worker.open({ spec: await loadSpec(data.spec) });
  } catch (error) {
    const link = new ShmLink({ rx: data.rings.toWorker, tx: data.rings.toGuest }, linkOptions);
    link.send({ t: 'error', error: toWireError(error) });
    link.close();
    return;
  }
  // The link is made once the worker is ready: frames the guest sent meanwhile wait in the ring.
  const link = new ShmLink({ rx: data.rings.toWorker, tx: data.rings.toGuest }, linkOptions);
  serveLink(worker, link);
  link.onClose(() => void worker.close());
}

const data = workerData as ShmThreadData | undefined;
if (!isMainThread && data?.kind === 'ava-shm-worker') await main(data);
