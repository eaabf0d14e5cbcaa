/** Entry point of a worker process (bin/ava-worker.js, and workers that managers and guests spawn). */
import { allowReclaim } from '../wire/reclaim.js';
import { runCli } from './common.js';
import { main } from './worker.js';

allowReclaim(); // a process of ours: large transfers reuse memory (see reclaim.ts)
await runCli('ava-worker', () => main(process.argv.slice(2)));
// Sessions are closed and their objects released by now: leave at once rather than wait for handles (the parent's
// stdin pipe, koffi's thread pool) to wind down, which would make every stop wait for the parent's grace period.
process.exit(process.exitCode ?? 0);
