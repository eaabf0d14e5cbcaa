#!/usr/bin/env node
import { notYetAvailable, runCli } from '../dist/src/cli/common.js';
await runCli('ava-manager', notYetAvailable('ava-manager (worker pool and placement, issue 4)', `Usage: ava-manager [--addr <host:port>] [--pool <n>]

Hands each guest a worker, keeps a pre-started pool (AVA_WPOOL). Not yet available in this version.
`));
