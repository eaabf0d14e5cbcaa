/**
 * The transport contract (./channel-contract.ts) over a unix socket, to a worker in a separate process started once
 * for this file.
 *
 * node --import tsx test/transport/unix.test.ts
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSocketChannel } from '../../src/transport/connect.js';
import { spawnWorkerProcess } from '../../src/worker/spawn.js';
import { channelContract } from './channel-contract.js';

const path = join(tmpdir(), `ava-contract-${process.pid}.sock`);
const worker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'unix', path } });
process.once('exit', () => { worker.child.kill('SIGKILL'); rmSync(path, { force: true }); }); // a safety net: never leave the worker behind

channelContract('unix', (spec, sessionId) => connectSocketChannel({ address: worker.address, spec, sessionId }), { after: () => worker.stop() });
