/**
 * `ava-worker`: a worker process. Serves guest sessions of one spec on a unix socket or a tcp port and prints one
 * JSON line when it listens (`{"event":"listening","address":...,"pid":...,"token":...}`), so that a manager or a
 * script can start it and read where it is. SIGTERM and SIGINT close it cleanly (sessions release their objects).
 */
import koffi from 'koffi';
import { authToken, formatAddress, parseAddress } from '../config.js';
import { loadSpec, SPEC_NAMES } from '../apis/registry.js';
import { WorkerListener } from '../worker/listener.js';
import { Worker } from '../worker/worker.js';
import { parseCli } from './common.js';

/** How long a stopping worker waits for its sessions to close before it exits regardless. */
const CLOSE_GRACE_SECONDS = 3;

/** Has the kernel end this process with SIGALRM (no handler) after `seconds`, whatever its threads are doing. */
function armExitAlarm(seconds: number): void {
  try {
    koffi.load('libc.so.6').func('unsigned int alarm(unsigned int)')(seconds);
  } catch {
    setTimeout(() => process.exit(0), seconds * 1000).unref(); // no libc.so.6: the best a timer can do
  }
}

const HELP = `Usage: ava-worker --spec <${SPEC_NAMES.join('|')}> --listen <unix:/path | host:port | port> [--token <secret>]

Serves guest sessions (several at once, isolated from each other) of one API over a unix socket or tcp.
Tcp always requires a token: give one with --token or AVA_TOKEN, or one is generated and printed.
Prints {"event":"listening",...} as one JSON line on stdout once ready.
  --exit-with-parent   exit when standard input closes (used when a manager or guest starts the worker)
`;

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    spec: { type: 'string' }, listen: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    'exit-with-parent': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const spec = await loadSpec((values.spec as string | undefined) ?? 'toyacc');
  const address = parseAddress((values.listen as string | undefined) ?? 'tcp:127.0.0.1:0', '--listen');
  const worker = await Worker.open({ spec });
  const token = (values.token as string | undefined) ?? authToken();
  const listener = await WorkerListener.listen({ worker, address, ...(token ? { token } : {}) });
  // The stop signals are handled before the listening line tells anyone they may be sent.
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => { resolve(); };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // Started by a manager or a guest: its stdin is a pipe from that parent, which closes when the parent dies
    // (even by kill -9), so the worker never outlives it.
    if (values['exit-with-parent']) {
      process.stdin.on('end', stop).on('close', stop).resume();
    }
  });
  process.stdout.write(`${JSON.stringify({ event: 'listening', address: formatAddress(listener.address), pid: process.pid, worker: worker.id, spec: spec.name, token: listener.token ?? null })}\n`);
  await stopped;
  // A native call that never returns (a read waiting on a user event nobody will set) would hold the sessions' close
  // forever, and releasing its queue can block the main thread itself (a JavaScript timer would never fire): past
  // a grace period the kernel ends the process (SIGALRM), as its parent already has.
  armExitAlarm(CLOSE_GRACE_SECONDS);
  await listener.close();
  await worker.close();
}
