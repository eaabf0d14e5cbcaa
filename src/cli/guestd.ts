/**
 * `ava-guestd`: the sidecar of the C front. A native program's first API call starts it with one end of a unix
 * socket pair as file descriptor 3; it runs the program's guest session (the same session code as a TypeScript
 * guest: journal, AVA_MIGRATION_CALL_ID, switch-over, failover, AVA_CHANNEL transports) and ends when the program
 * does, after closing the session so the journal is complete (also when the program crashed).
 */
import { loadSpec, SPEC_NAMES } from '../apis/registry.js';
import { guestdSpinMicros } from '../config.js';
import { ConfigError } from '../errors.js';
import { openSession } from '../guest/open.js';
import { serveFront } from '../guestd/serve-front.js';
import { SocketLink } from '../transport/link.js';
import { parseCli } from './common.js';

/** How long the sidecar waits, once the program has ended, for its session to close before it exits regardless. */
const CLOSE_GRACE_MS = 30_000;

const HELP = `Usage: ava-guestd --fd <n> <${SPEC_NAMES.join('|')}>

The sidecar of the C front (libava-<spec>.so, the OpenCL ICD): serves the guest session of the native program
whose front opened file descriptor <n> (a unix socket). Started by the front itself on the program's first call,
with the program's AVA_* variables; not meant to be run by hand.
`;

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCli(argv, { fd: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const fd = Number(values.fd);
  if (!Number.isInteger(fd) || fd < 3) throw new ConfigError(`--fd "${String(values.fd)}" must be a file descriptor number >= 3`);
  if (positionals.length !== 1) throw new ConfigError('give the spec name (see --help)');
  const spec = await loadSpec(positionals[0]!);
  // Half-open: the front shuts its side when the program ends and waits for ours to close, which happens only
  // once the session is closed (journal complete, a migration in progress finished).
  const link = SocketLink.overFd(fd);
  const { socket } = link;
  // A bad AVA_* value refuses the session (the front prints its code), as openSession's own checks do.
  let spinMicros = 0;
  let refused: unknown;
  try {
    spinMicros = guestdSpinMicros();
  } catch (error) {
    refused = error;
  }
  const front = serveFront(link, {
    spec,
    open: (sessionId) => (refused === undefined ? openSession(spec, { sessionId }) : Promise.reject(refused)),
    ...(spinMicros > 0 ? { onActivity: pollFor(spinMicros) } : {}),
  });
  // The program ended: close the session first, then our side of the socket, which the front waits for.
  socket.once('end', () => { void front.end().then(() => link.close()); });
  // A session whose worker is stuck in a native call that never returns (a read behind a user event the program
  // never completed) cannot close: past a grace period the sidecar ends anyway, as the program already has. The
  // journal holds what was recorded (LevelDB recovers its log), and the workers exit with their parent.
  let graceStarted = false;
  const exitAfterGrace = (): void => {
    if (graceStarted) return;
    graceStarted = true;
    setTimeout(() => {
      process.stderr.write(`ava-guestd: the session did not close within ${CLOSE_GRACE_MS / 1000} s of the program's end (a call that never returned): exiting\n`);
      process.exit(0);
    }, CLOSE_GRACE_MS).unref();
  };
  socket.once('end', exitAfterGrace);
  socket.once('close', exitAfterGrace);
  await front.done;
}

/**
 * Keeps the event loop polling (an immediate per turn: libuv then polls without sleeping) for `micros` after each
 * call of the returned function, so that the front's next frame is read at once instead of after a wake-up (tens
 * of microseconds on a VM). Measured on a 2-core VM (fixtures/opencl-c/microbench, medians of 6 alternating runs):
 * a query round trip 84 -> 72 us, a launch and its finish 186 -> 169 us.
 */
function pollFor(micros: number): () => void {
  let until = 0;
  let polling = false;
  const poll = (): void => {
    if (performance.now() < until) setImmediate(poll);
    else polling = false;
  };
  return () => {
    until = performance.now() + micros / 1000;
    if (!polling) {
      polling = true;
      setImmediate(poll);
    }
  };
}
