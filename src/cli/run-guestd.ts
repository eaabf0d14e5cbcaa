/** Entry point of the ava-guestd sidecar (started by the C front; bin/ava-guestd.js). */
import { allowReclaim } from '../wire/reclaim.js';
import { runCli } from './common.js';
import { main } from './guestd.js';

allowReclaim(); // a process of ours: large transfers reuse memory (see reclaim.ts)
await runCli('ava-guestd', () => main(process.argv.slice(2)));
// The session is closed and its journal written: leave without waiting for pooled handles to wind down.
process.exit(process.exitCode ?? 0);
