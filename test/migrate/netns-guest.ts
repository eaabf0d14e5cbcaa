/**
 * The guest of test/migrate/netns.test.ts, run inside a network namespace: opens a toyacc session over tcp on a
 * private worker process (started in this namespace), with a migration armed before call `argv[3]` to the peer
 * manager at AVA_MIGRATION_TARGET, runs the toyacc demo and prints one JSON line: the demo's result, the report,
 * the worker ids before and after, the network namespaces of this process and of both workers, and any failure.
 *
 * node --import tsx test/migrate/netns-guest.ts <journal folder> <call>
 */
import { readlinkSync } from 'node:fs';
import { runToyaccDemo } from '../../src/apis/toyacc/demo.js';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import { openGuestlib } from '../../src/guest/open.js';
import type { RemoteChannel } from '../../src/transport/remote.js';

const [journal, callText] = process.argv.slice(2);
const netns = (pid: number | 'self'): string => readlinkSync(`/proc/${pid}/ns/net`);
const pidOf = (workerId: string): number => Number(/^(\d+)-/.exec(workerId)?.[1] ?? NaN);

const lib = await openGuestlib(toyaccSpec, { transport: 'tcp', journal: { path: journal! }, migrateAt: { kind: 'at', call: Number(callText) } });
const failures: string[] = [];
lib.session.onTaskError = (error) => { failures.push(`${AvaError.isAvaError(error) ? error.code : 'Error'}: ${(error as Error).message}`); };
const source = (lib.session.channel as RemoteChannel).workerId;
const sourceNetns = netns(pidOf(source));
const result = await runToyaccDemo(lib.api, { elements: 256, rounds: 2 });
const target = (lib.session.channel as RemoteChannel).workerId;
process.stdout.write(`${JSON.stringify({
  result, report: lib.migration?.reports[0] ?? null, reports: lib.migration?.reports.length ?? 0, calls: lib.session.callCount,
  source, target, sourcePid: pidOf(source), targetPid: pidOf(target), selfNetns: netns('self'), sourceNetns, targetNetns: netns(pidOf(target)), failures,
})}\n`);
await lib.close();
