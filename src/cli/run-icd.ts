/** Entry point of `ava-icd` (bin/ava-icd.js). */
import { runCli } from './common.js';
import { main } from './icd.js';

await runCli('ava-icd', () => main(process.argv.slice(2)));
