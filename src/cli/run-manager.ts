/** Entry point of the manager daemon (bin/ava-manager.js). */
import { runCli } from './common.js';
import { main } from './manager.js';

await runCli('ava-manager', () => main(process.argv.slice(2)));
