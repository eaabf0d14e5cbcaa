/**
 * A channel that answers every waiting call with success and drops posted ones: what a guest costs on its own,
 * without a worker or a transport (a row beside the real channels in the benchmarks).
 */
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import type { Channel } from '../src/transport/channel.js';
import type { ReplyFrame } from '../src/wire/frames.js';

/** A toyacc channel with no worker behind it. */
export function nullChannel(): Channel {
  return {
    kind: 'null',
    spec: toyaccSpec,
    supports: { zeroCopy: false, crossProcess: false },
    call: (frame) => Promise.resolve({ seq: frame.seq, ret: TQ.SUCCESS, outs: {} } as ReplyFrame),
    post: () => {},
    onAsyncFailure: () => () => {},
    extractState: () => Promise.resolve(new Uint8Array()),
    restoreState: () => Promise.resolve(),
    barrier: () => Promise.resolve(),
    recreateTransient: () => Promise.resolve(),
    onEvent: () => () => {},
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
