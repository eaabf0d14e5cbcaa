/** Entry point of the offline journal tools (bin/ava-journal.js). */
import { runCli } from './common.js';
import { main } from './journal.js';

// `ava-journal show | head`: a closed pipe ends the output, not the tool with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

await runCli('ava-journal', () => main(process.argv.slice(2)));
