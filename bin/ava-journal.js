#!/usr/bin/env node
import { notYetAvailable, runCli } from '../dist/src/cli/common.js';
await runCli('ava-journal', notYetAvailable('ava-journal (offline journal tools, issue 5)', `Usage: ava-journal <ls|show|stats|graph|export|verify|compact|plan> [options]

Inspects session journals offline. Not yet available in this version.
`));
