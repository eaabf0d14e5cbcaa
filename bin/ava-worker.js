#!/usr/bin/env node
import { notYetAvailable, runCli } from '../dist/src/cli/common.js';
await runCli('ava-worker', notYetAvailable('ava-worker (the worker process of the remote transports, issue 4)', `Usage: ava-worker [--listen <unix path|host:port>] [--spec <name>]

Serves guest sessions over shm, unix or tcp channels. Not yet available in this version: today guest and worker
run in one process over the local channel (see README).
`));
