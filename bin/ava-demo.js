#!/usr/bin/env node
import { runCli } from '../dist/src/cli/common.js';
import { main } from '../dist/src/cli/demo.js';
await runCli('ava-demo', () => main(process.argv.slice(2)));
