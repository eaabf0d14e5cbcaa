/** Entry point of `ava-migrate`. */
import { runCli } from './common.js';
import { main } from './migrate.js';

await runCli('ava-migrate', () => main(process.argv.slice(2)));
