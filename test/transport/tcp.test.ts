/**
 * The transport contract (./channel-contract.ts) over tcp, to a worker in a separate process started once for this
 * file; and the tcp handshake: a hello without the token, with a wrong token, or for another spec is refused with a
 * coded error from `connectSocketChannel`.
 *
 * node --import tsx test/transport/tcp.test.ts
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { ApiSpec } from '../../src/spec/types.js';
import { connectSocketChannel } from '../../src/transport/connect.js';
import { spawnWorkerProcess } from '../../src/worker/spawn.js';
import { channelContract, rejectsWith, within } from './channel-contract.js';

const worker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
process.once('exit', () => worker.child.kill('SIGKILL')); // a safety net: never leave the worker behind
const token = worker.token!;

// ------------------------------------------------------------------------------------------------ handshake

const handshake = suite('tcp handshake');
const it = (title: string, body: () => Promise<void>): void => {
  handshake(title, async () => {
    try {
      await within(30_000, body(), title);
    } catch (error) {
      if (AvaError.isAvaError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`);
      throw error;
    }
  });
};
const connect = (options: { token?: string; spec?: ApiSpec; dispose?: () => Promise<void> }) => connectSocketChannel({
  address: worker.address, spec: options.spec ?? toyaccSpec, sessionId: `tcp-${randomUUID()}`,
  ...(options.token !== undefined ? { token: options.token } : {}), ...(options.dispose ? { dispose: options.dispose } : {}),
});
const otherHash = { ...toyaccSpec, hash: 'f'.repeat(toyaccSpec.hash.length) } as ApiSpec;

it('the worker printed a token of at least 8 characters', async () => {
  assert.type(token, 'string');
  assert.ok(token.length >= 8, `token of ${token.length} characters`);
});

it('a hello without a token is refused with ERR_AVA_AUTH', async () => {
  await rejectsWith(connect({}), 'ERR_AVA_AUTH', 'no token');
});

it('a hello with a wrong token is refused with ERR_AVA_AUTH', async () => {
  const sameLength = [...token].map((c) => (c === 'a' ? 'b' : 'a')).join('');
  await rejectsWith(connect({ token: sameLength }), 'ERR_AVA_AUTH', 'a wrong token of the same length');
  await rejectsWith(connect({ token: `${token}x` }), 'ERR_AVA_AUTH', 'the token with one more character');
  await rejectsWith(connect({ token: token.slice(0, -1) }), 'ERR_AVA_AUTH', 'the token less its last character');
});

it('a hello for another spec hash is refused with ERR_AVA_SPEC_MISMATCH', async () => {
  await rejectsWith(connect({ token, spec: otherHash }), 'ERR_AVA_SPEC_MISMATCH', 'another spec hash');
  await rejectsWith(connect({ token, spec: { ...toyaccSpec, name: 'not-toyacc' } as ApiSpec }), 'ERR_AVA_SPEC_MISMATCH', 'another spec name');
});

it('the token is checked before the spec (a wrong token learns nothing about the spec)', async () => {
  await rejectsWith(connect({ token: 'wrong-token', spec: otherHash }), 'ERR_AVA_AUTH', 'a wrong token and another spec');
});

it('after refusals, the right token opens a session', async () => {
  const channel = await connect({ token });
  assert.is(channel.kind, 'tcp');
  const reply = await within(5_000, channel.call({ seq: 0, fn: 'tq_get_devices', args: [2, [1, 2], true], retId: null }), 'a call');
  assert.is(reply.ret, 0);
  await channel.close();
});

it('close() runs the channel\'s dispose even after its link broke', async () => {
  let disposed = 0;
  const channel = await connect({ token, dispose: async () => { disposed++; } });
  // A negative seq breaks the protocol: the worker answers with an error frame and closes the connection.
  await rejectsWith(channel.call({ seq: -1, fn: 'tq_debug_live_objects', args: [], retId: null }), ['ERR_AVA_BAD_FRAME', 'ERR_AVA_CHANNEL_CLOSED'], 'a call with seq -1');
  await within(5_000, channel.close(), 'close()');
  assert.is(disposed, 1, 'dispose ran once (it owns e.g. the worker process openChannel started)');
});

handshake.run();

// ------------------------------------------------------------------------------------------------ contract

channelContract('tcp', (spec, sessionId) => connectSocketChannel({ address: worker.address, spec, sessionId, token }), { after: () => worker.stop() });
