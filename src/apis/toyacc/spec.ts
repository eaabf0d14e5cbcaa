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

/**
 * Runs `work` with a queue of the buffer's context (toyacc, like OpenCL, moves data through queues): a live queue of
 * the session where one fits (the context itself may already be released by the application), else a temporary one.
 */
function withQueue(ctx: StateContext, buffer: number, work: (queue: number) => number): void {
  for (const queue of ctx.liveHandles('queue')) {
    const status = work(queue);
    if (status === TQ.SUCCESS) return;
    if (status !== TQ.INVALID_CONTEXT) check('state transfer', status);
  }
  const value = Buffer.alloc(8);
  check('tq_get_buffer_info', ctx.callNative('tq_get_buffer_info', buffer, TQ.BUFFER_CONTEXT, 8, value, null));
  const context = Number(value.readBigUInt64LE(0));
  const devices = Buffer.alloc(16);
  check('tq_get_context_info', ctx.callNative('tq_get_context_info', context, TQ.CONTEXT_DEVICES, 16, devices, null));
  const err = Buffer.alloc(4);
  const queue = ctx.callNative('tq_create_queue', context, Number(devices.readBigUInt64LE(0)), err) as number;
  check('tq_create_queue', err.readInt32LE(0));
  try {
    check('state transfer', work(queue));
  } finally {
    ctx.callNative('tq_release_queue', queue);
  }
}

function bufferSize(ctx: StateContext, buffer: number): number {
  const value = Buffer.alloc(8);
  check('tq_get_buffer_info', ctx.callNative('tq_get_buffer_info', buffer, TQ.BUFFER_SIZE, 8, value, null));
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
        extract(ctx, buffer) {
          // toyacc runs work at enqueue time, so finishing queues only keeps the OpenCL-shaped contract.
          for (const q of ctx.liveHandles('queue')) ctx.callNative('tq_finish', q);
          const bytes = Buffer.alloc(bufferSize(ctx, buffer));
          withQueue(ctx, buffer, (q) => ctx.callNative('tq_enqueue_read', q, buffer, 0, bytes.byteLength, bytes) as number);
          return bytes;
        },
        restore(ctx, buffer, bytes) {
          const size = bufferSize(ctx, buffer);
          if (size !== bytes.byteLength) throw new ApiStatusError('restore', TQ.INVALID_VALUE, `buffer holds ${size} bytes, state has ${bytes.byteLength}`);
          withQueue(ctx, buffer, (q) => ctx.callNative('tq_enqueue_write', q, buffer, 0, size, bytes) as number);
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
      target: 'program', blocking: true,
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
    ]),
    fn('tq_enqueue_read', ret.status(), 'transfer', [
      arg.handle('queue', 'queue'), arg.handle('buffer', 'buffer'), arg.scalar('offset', 'size'), arg.scalar('size', 'size'), arg.bufferOut('dst', 'size'),
    ]),
    fn('tq_enqueue_kernel', ret.status(), 'execute', [arg.handle('queue', 'queue'), arg.handle('kernel', 'kernel'), arg.scalar('global_size', 'size')]),
    fn('tq_finish', ret.status(), 'sync', [arg.handle('queue', 'queue')], { blocking: true }),
    fn('tq_debug_live_objects', ret.scalar('uint32'), 'query', []),
  ],
});
