/**
 * The transport contract (./channel-contract.ts) on the local channel: guest and worker in this thread, both
 * sessions of the isolation test on one shared worker.
 *
 * node --import tsx test/transport/local.test.ts
 */
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { LocalChannel } from '../../src/transport/local.js';
import { Worker } from '../../src/worker/worker.js';
import { channelContract } from './channel-contract.js';

const worker = await Worker.open({ spec: toyaccSpec });

channelContract('local', (spec, sessionId) => LocalChannel.open({ spec, sessionId, worker }), { after: () => worker.close() });
