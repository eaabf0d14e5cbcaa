/**
 * A workload for test/migrate/cli.test.ts, run by `ava-migrate -- node --import tsx test/migrate/cli-workload.ts
 * [exit code]`: opens a toyacc guestlib configured by the AVA_* variables that `ava-migrate` sets (migration call,
 * journal, channel, report file), runs the toyacc demo, prints one JSON line (the result, the migrations its session
 * made, the calls) and exits with the code given as its argument (default 0).
 */
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { openGuestlib } from '../../src/guest/open.js';

const lib = await openGuestlib(toyaccSpec);
const result = await runToyaccDemo(lib.api, { elements: 256, rounds: 2 });
process.stdout.write(`${JSON.stringify({ workload: result, migrations: lib.migration?.reports.length ?? 0, calls: lib.session.callCount, channel: lib.session.channel.kind })}\n`);
await lib.close();
process.exitCode = Number(process.argv[2] ?? 0);
