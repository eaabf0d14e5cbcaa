/** The OpenCL 1.2 API: its spec, constants and function list. */
export { openclSpec } from './spec.js';
export { CL, CL_STATUS_NAMES, clStatusName } from './constants.js';
export type { ClConstantName } from './constants.js';
export { OPENCL_12_FUNCTIONS } from './cl12-functions.js';
