/**
 * The spec of the toyacc fixture accelerator (fixtures/toyacc/toyacc.h): the API every layer is first tested on.
 */
import { ApiStatusError } from '../../errors.js';
import { buildToyacc } from '../../../fixtures/toyacc/build.js';
import { TQ, TQ_STATUS_NAMES } from '../../../fixtures/toyacc/constants.js';
import { arg, defineSpec, fn, ret, statusName } from '../../spec/index.js';
import type { StateContext, StatusSpec } from '../../spec/index.js';

const status: StatusSpec = { type: 'int32', success: TQ.SUCCESS, names: TQ_STATUS_NAMES };

function check(fnName: string, result: unknown): void {
  if (result !== TQ.SUCCESS) throw new ApiStatusError(fnName, Number(result), statusName({ status }, Number(result)));
}

function bufferSize(ctx: StateContext, buffer: number): number {
  const value = Buffer.alloc(8);
  check('tq_state_size', ctx.callNative('tq_state_size', buffer, value));
  return Number(value.readBigUInt64LE(0));
}

const infoArgs = (param = 'param') => [
  arg.scalar(param, 'uint32'),
  arg.scalar('size', 'size'),
  arg.info('value', 'size', param, {
    [String(TQ.CONTEXT_DEVICES)]: 'device',
    [String(TQ.BUFFER_CONTEXT)]: 'context',
    [String(TQ.PROGRAM_CONTEXT)]: 'context',
  }),
  arg.scalarOut('size_ret', 'size'),
];

const lifetime = (kind: string, short: string) => [
  fn(`tq_retain_${short}`, ret.status(), 'retain', [arg.handle(short, kind)], { target: short }),
  fn(`tq_release_${short}`, ret.status(), 'release', [arg.handle(short, kind)], { target: short }),
];

/** The toyacc spec. Its library is built from fixtures/toyacc on first use. */
export const toyaccSpec = defineSpec({
  name: 'toyacc',
  version: '1',
  library: { resolve: () => buildToyacc() },
  status,
  handles: [
    { name: 'device', interned: true, invalidStatus: TQ.INVALID_DEVICE },
    { name: 'context', invalidStatus: TQ.INVALID_CONTEXT },
    { name: 'queue', invalidStatus: TQ.INVALID_QUEUE },
    {
      name: 'buffer',
      invalidStatus: TQ.INVALID_BUFFER,
      state: {
        // Through the state path (no queue needed), so that a buffer whose context, queues or own handle the
        // application released, but a kernel still holds, travels too.
        extract(ctx, buffer) {
          // toyacc runs work at enqueue time, so finishing queues only keeps the OpenCL-shaped contract.
          for (const q of ctx.liveHandles('queue')) ctx.callNative('tq_finish', q);
          const bytes = Buffer.alloc(bufferSize(ctx, buffer));
          check('tq_state_read', ctx.callNative('tq_state_read', buffer, 0, bytes.byteLength, bytes));
          return bytes;
        },
        async extractRange(ctx, buffer, offset, length, into) {
          if (offset === 0) for (const q of ctx.liveHandles('queue')) ctx.callNative('tq_finish', q);
          const n = Math.max(0, Math.min(length, bufferSize(ctx, buffer) - offset));
          // Every byte is read (or the call fails and throws), so the memory need not be zeroed first.
          const bytes = into && into.byteLength >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
          // Megabytes at a time: copied on a pool thread, so that a worker streaming state keeps its socket moving.
          if (n > 0) check('tq_state_read', await ctx.callNativeOffThread('tq_state_read', buffer, offset, n, bytes));
          return bytes;
        },
        async restoreRange(ctx, buffer, offset, bytes) {
          check('tq_state_write', await ctx.callNativeOffThread('tq_state_write', buffer, offset, bytes.byteLength, bytes));
        },
        restore(ctx, buffer, bytes) {
          const size = bufferSize(ctx, buffer);
          if (size !== bytes.byteLength) throw new ApiStatusError('restore', TQ.INVALID_VALUE, `buffer holds ${size} bytes, state has ${bytes.byteLength}`);
          check('tq_state_write', ctx.callNative('tq_state_write', buffer, 0, size, bytes));
        },
      },
    },
    { name: 'program', invalidStatus: TQ.INVALID_PROGRAM },
    { name: 'kernel', invalidStatus: TQ.INVALID_KERNEL },
  ],
  functions: [
    fn('tq_get_devices', ret.status(), 'global', [
      arg.count('capacity'), arg.handlesOut('devices', 'device', 'capacity', { optional: true }), arg.scalarOut('count', 'uint32'),
    ]),
    fn('tq_get_device_info', ret.status(), 'query', [arg.handle('device', 'device'), ...infoArgs()]),
    fn('tq_create_context', ret.handle('context'), 'create', [
      arg.count('num_devices'), arg.handles('devices', 'device', 'num_devices', { nullable: true }), arg.errcode(),
    ]),
    ...lifetime('context', 'context'),
    fn('tq_get_context_info', ret.status(), 'query', [arg.handle('context', 'context'), ...infoArgs()]),
    fn('tq_create_queue', ret.handle('queue'), 'create', [arg.handle('context', 'context'), arg.handle('device', 'device'), arg.errcode()]),
    ...lifetime('queue', 'queue'),
    fn('tq_create_buffer', ret.handle('buffer'), 'create', [
      arg.handle('context', 'context'), arg.scalar('flags', 'uint32'), arg.scalar('size', 'size'),
      arg.bufferIn('host', 'size', { nullable: true }), arg.errcode(),
    ]),
    ...lifetime('buffer', 'buffer'),
    fn('tq_get_buffer_info', ret.status(), 'query', [arg.handle('buffer', 'buffer'), ...infoArgs()]),
    fn('tq_create_program', ret.handle('program'), 'create', [arg.handle('context', 'context'), arg.string('source'), arg.errcode()]),
    fn('tq_build_program', ret.status(), 'configure', [arg.handle('program', 'program'), arg.string('options', { nullable: true })], {
      target: 'program', blocking: true, journalFailures: [TQ.BUILD_FAILURE],
    }),
    ...lifetime('program', 'program'),
    fn('tq_get_program_info', ret.status(), 'query', [arg.handle('program', 'program'), ...infoArgs()]),
    fn('tq_create_kernel', ret.handle('kernel'), 'create', [arg.handle('program', 'program'), arg.string('name'), arg.errcode()]),
    ...lifetime('kernel', 'kernel'),
    fn('tq_set_kernel_arg', ret.status(), 'configure', [
      arg.handle('kernel', 'kernel'), arg.scalar('index', 'uint32'), arg.scalar('size', 'size'), arg.argValue('value', 'size', ['buffer'], { invalidStatus: TQ.INVALID_ARG_VALUE }),
    ], { target: 'kernel', supersedeKey: ['index'] }),
    fn('tq_enqueue_write', ret.status(), 'transfer', [
      arg.handle('queue', 'queue'), arg.handle('buffer', 'buffer'), arg.scalar('offset', 'size'), arg.scalar('size', 'size'), arg.bufferIn('src', 'size'),
    ], { writes: { target: 'buffer', offset: 'offset', size: 'size' } }),
    fn('tq_enqueue_read', ret.status(), 'transfer', [
      arg.handle('queue', 'queue'), arg.handle('buffer', 'buffer'), arg.scalar('offset', 'size'), arg.scalar('size', 'size'), arg.bufferOut('dst', 'size'),
    ]),
    fn('tq_enqueue_kernel', ret.status(), 'execute', [arg.handle('queue', 'queue'), arg.handle('kernel', 'kernel'), arg.scalar('global_size', 'size')]),
    fn('tq_finish', ret.status(), 'sync', [arg.handle('queue', 'queue')], { blocking: true }),
    fn('tq_debug_live_objects', ret.scalar('uint32'), 'query', []),
    fn('tq_state_size', ret.status(), 'query', [arg.handle('buffer', 'buffer'), arg.scalarOut('size', 'uint64')]),
    fn('tq_state_read', ret.status(), 'transfer', [
      arg.handle('buffer', 'buffer'), arg.scalar('offset', 'size'), arg.scalar('length', 'size'), arg.bufferOut('dst', 'length'),
    ]),
    fn('tq_state_write', ret.status(), 'transfer', [
      arg.handle('buffer', 'buffer'), arg.scalar('offset', 'size'), arg.scalar('length', 'size'), arg.bufferIn('src', 'length'),
    ], { writes: { target: 'buffer', offset: 'offset', size: 'length' } }),
  ],
});
