#!/usr/bin/env node
import { runCli } from '../dist/src/cli/common.js';
import { main } from '../dist/src/cli/spec.js';
await runCli('ava-spec', () => main(process.argv.slice(2)));
