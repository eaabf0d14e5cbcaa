/**
 * ava-migrate: remote, record and replay the calls of accelerator APIs.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './spec/index.js';
export { openGuestlib, wrap } from './guest/open.js';
export type { Guestlib, GuestlibOptions } from './guest/open.js';
export { GuestSession } from './guest/session.js';
export type { GuestSessionOptions } from './guest/session.js';
export { createProxy, overlay } from './guest/proxy.js';
export type { GuestProxy, ProxyOptions } from './guest/proxy.js';
export { Handle, Mapping } from './guest/handle.js';
export type { ApiFunction, ApiObject, CallResult } from './guest/call-shape.js';
export type { StatusMode } from './guest/status.js';
export type { Channel, ChannelSupports } from './transport/channel.js';
export { LocalChannel } from './transport/local.js';
export type { LocalChannelOptions } from './transport/local.js';
export type { CallFrame, EventFrame, ReplyFrame, WireValue } from './wire/frames.js';
export { Worker } from './worker/worker.js';
export type { WorkerOptions } from './worker/worker.js';
export { WorkerSession } from './worker/session.js';
export { openNativeApi } from './worker/native-api.js';
export type { NativeApi } from './worker/native-api.js';
export { toyaccSpec, TQ, TQ_STATUS_NAMES } from './apis/toyacc/index.js';
export { runToyaccDemo } from './apis/toyacc/demo.js';
export type { ToyaccDemoOptions, ToyaccDemoResult } from './apis/toyacc/demo.js';
