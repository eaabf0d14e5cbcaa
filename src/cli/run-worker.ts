/** Entry point of a worker process (bin/ava-worker.js, and workers that managers and guests spawn). */
import { runCli } from './common.js';
import { main } from './worker.js';

await runCli('ava-worker', () => main(process.argv.slice(2)));
