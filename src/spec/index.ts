/** The spec DSL: describe a C API as data. */
export * from './types.js';
export { arg, ret, fn, unsupported } from './roles.js';
export type { FunctionOptions } from './roles.js';
export { defineSpec, statusName } from './define.js';
export { evalLength, LENGTH_FUNCTIONS } from './length.js';
