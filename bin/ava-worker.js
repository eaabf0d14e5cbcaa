#!/usr/bin/env node
import { runCli } from '../dist/src/cli/common.js';
import { main } from '../dist/src/cli/worker.js';
await runCli('ava-worker', () => main(process.argv.slice(2)));
