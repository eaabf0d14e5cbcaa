/**
 * Starting a worker process (`ava-worker`) and learning where it listens. Used by guests that have no manager and
 * by the manager's pool. Works from the compiled package and from the TypeScript sources (tests run under tsx).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Address } from '../config.js';
import { formatAddress, parseAddress } from '../config.js';
import { cliEntry } from '../cli/entry.js';
import { AvaError } from '../errors.js';

/** Options of {@link spawnWorkerProcess}. */
export interface SpawnWorkerOptions {
  /** Spec name (see src/apis/registry.ts). */
  readonly spec: string;
  /** Where to listen; default: a fresh tcp port on 127.0.0.1. */
  readonly listen?: Address;
  readonly token?: string;
  /** How long to wait for the worker to listen. @defaultValue 30000 ms (a first build of a fixture takes seconds) */
  readonly startTimeoutMs?: number;
  /** Extra environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A started worker process. */
export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The worker's id, as its welcome frames report it. */
  readonly id: string;
  readonly address: Address;
  readonly token: string | undefined;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The command line that starts a worker process from this installation. */
export function workerCommand(): { command: string; args: string[] } {
  const { node, importUrl, script } = cliEntry('worker');
  return { command: node, args: importUrl ? ['--import', importUrl, script] : [script] };
}

/**
 * Starts `ava-worker` and waits for its `listening` line.
 * @throws `ERR_AVA_WORKER_START` when it exits or stays silent.
 */
export async function spawnWorkerProcess(options: SpawnWorkerOptions): Promise<WorkerProcess> {
  const { command, args } = workerCommand();
  const listen = formatAddress(options.listen ?? { kind: 'tcp', host: '127.0.0.1', port: 0 });
  const child = spawn(command, [...args, '--spec', options.spec, '--listen', listen, '--exit-with-parent', ...(options.token ? [`--token=${options.token}`] : [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let stderr = '';
  // What the worker and its library print (a platform's compiler warnings) reaches the user as it would natively.
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); process.stderr.write(d); });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  // A worker that could not clean up (killed, even before its listening line, or ended by its exit alarm) leaves its
  // socket file: removed here once the process is gone.
  const requested = options.listen;
  if (requested?.kind === 'unix') void exited.then(() => { rmSync(requested.path, { force: true }); });
  const timeout = options.startTimeoutMs ?? 30_000;
  const info = await new Promise<{ address: string; token: string | null; pid: number; worker: string }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new AvaError('ERR_AVA_WORKER_START', `worker did not listen within ${timeout} ms: ${stderr}`)); }, timeout);
    let listening = false;
    lines.on('line', (line) => {
      // After its `listening` line the worker's stdout is its library's (a platform's build messages): passed on.
      if (listening) { process.stdout.write(`${line}\n`); return; }
      listening = true;
      clearTimeout(timer);
      try { resolve(JSON.parse(line)); } catch { reject(new AvaError('ERR_AVA_WORKER_START', `unexpected worker output: ${line}`)); }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new AvaError('ERR_AVA_WORKER_START', `worker exited (${code}) before listening: ${stderr.trim()}`)); });
  });
  const stop = async (graceMs = 3000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { child, pid: info.pid, id: info.worker, address: parseAddress(info.address), token: info.token ?? undefined, exited, stop };
}
