#!/usr/bin/env node
import { notYetAvailable, runCli } from '../dist/src/cli/common.js';
await runCli('ava-migrate', notYetAvailable('ava-migrate (live migration of a session, issue 7)', `Usage: ava-migrate [--call <n>|r<limit>] [--demo] [--json] -- <workload command>

Runs a workload with migration armed and prints the per-phase downtime table.
Not yet available in this version: today, run the demo workload with \`npm run demo\`.
`));
