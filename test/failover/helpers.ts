/**
 * Helpers of the failover tests: opening a failover guestlib on a private unix worker process, killing that worker
 * (kill -9) and waiting until it is gone, bounded waits, and cleanup (worker processes and journal folders).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { Guestlib, GuestlibOptions } from '../../src/guest/open.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { Handle } from '../../src/guest/handle.js';
import type { RemoteChannel } from '../../src/transport/remote.js';

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// A worker killed with -9 cannot remove its socket: remove this process's worker sockets (named after its pid by
// openChannel) when it exits; every worker it started exits with it (--exit-with-parent).
process.once('exit', () => {
  const prefix = `ava-worker-${process.pid}-`;
  for (const name of readdirSync(tmpdir())) {
    if (name.startsWith(prefix) && name.endsWith('.sock')) rmSync(join(tmpdir(), name), { force: true });
  }
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether process `pid` still exists (a zombie not yet reaped counts as existing). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the worker process serving `lib` now (the first part of its worker id). */
export function workerPid(lib: Guestlib): number {
  const id = (lib.session.channel as RemoteChannel).workerId;
  const pid = Number(id?.split('-')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no worker pid in worker id ${JSON.stringify(id)} (channel ${lib.session.channel.kind})`);
  return pid;
}

/** Sends SIGKILL to `pid` and waits (at most `ms`) until the process is gone. */
export async function killPid(pid: number, ms = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return;
    throw error;
  }
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`worker ${pid} still alive ${ms} ms after SIGKILL`);
    await sleep(5);
  }
}

/** kill -9 the worker serving `lib` now, and wait until it is gone. Returns its pid. */
export async function killWorker(lib: Guestlib): Promise<number> {
  const pid = workerPid(lib);
  await killPid(pid);
  return pid;
}

/** A failover guestlib with its journal folder; `close()` ends the session, its worker and the folder. */
export interface Opened {
  readonly lib: Guestlib;
  readonly dir: string;
  close(): Promise<void>;
}

/** Opens a toyacc guestlib on a private unix worker, journaled into a fresh temporary folder. */
export async function openToyacc(options: Omit<GuestlibOptions, 'journal' | 'transport'> & { readonly journal?: boolean } = {}): Promise<Opened> {
  const dir = mkdtempSync(join(tmpdir(), 'ava-failover-'));
  const { journal = true, ...rest } = options;
  let lib: Guestlib;
  try {
    lib = await within(60_000, 'openGuestlib', openGuestlib(toyaccSpec, { ...rest, transport: 'unix', journal: journal ? { path: dir } : false }));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let closed = false;
  return {
    lib,
    dir,
    async close() {
      if (closed) return;
      closed = true;
      try {
        // The worker (a child of this process) would be stopped with SIGTERM and a grace period, which it outlives
        // (see the report): a kill -9 first ends it at once. Only the current one: earlier ones are gone already.
        for (const pid of currentPid(lib)) await killPid(pid).catch(() => undefined);
        await within(15_000, 'closing the guestlib', lib.close()).catch(() => undefined);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function currentPid(lib: Guestlib): number[] {
  try {
    return [workerPid(lib)];
  } catch {
    return [];
  }
}

/** The code of an error (AvaError code, or its name). */
export function codeOf(error: unknown): string {
  return AvaError.isAvaError(error) ? error.code : (error as { code?: string }).code ?? (error as Error).name;
}

type Api = Record<string, (...args: unknown[]) => Promise<{ ret: unknown; outs: Record<string, unknown> }>>;

/** The API of `lib`, loosely typed. */
export function apiOf(lib: Guestlib): Api {
  return lib.api as unknown as Api;
}

/** A context on both devices, a queue, a built program with every kernel. */
export interface Setup {
  readonly devices: Handle[];
  readonly ctx: Handle;
  readonly queue: Handle;
  readonly program: Handle;
}

/** Creates {@link Setup} (calls 0 to 4). */
export async function setUp(lib: Guestlib): Promise<Setup> {
  const api = apiOf(lib);
  const devices = (await api.tq_get_devices!(2, true)).outs.devices as Handle[];
  const ctx = (await api.tq_create_context!(2, devices)).ret as Handle;
  const queue = (await api.tq_create_queue!(ctx, devices[0])).ret as Handle;
  const program = (await api.tq_create_program!(ctx, 'fill axpy scale checksum')).ret as Handle;
  await api.tq_build_program!(program, null);
  return { devices, ctx, queue, program };
}

/** Float32 values as bytes. */
export const f32 = (...values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);

/** A buffer's contents as floats, read through the API (a waiting call: it triggers a pending failover). */
export async function readFloats(lib: Guestlib, queue: Handle, buffer: Handle, count: number): Promise<number[]> {
  const out = new Float32Array(count);
  await apiOf(lib).tq_enqueue_read!(queue, buffer, 0, 4 * count, out);
  return [...out];
}

/** A buffer's contents through the state path (no queue needed; a waiting call). */
export async function readState(lib: Guestlib, buffer: Handle, size: number): Promise<number[]> {
  const out = new Uint8Array(size);
  await apiOf(lib).tq_state_read!(buffer, 0, size, out);
  return [...out];
}
