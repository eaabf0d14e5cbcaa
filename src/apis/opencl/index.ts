/** The OpenCL 1.2 API (with the later host entry points programs built against newer headers call): its spec, constants and function lists. */
export { openclSpec } from './spec.js';
export { CL, CL_STATUS_NAMES, clStatusName } from './constants.js';
export type { ClConstantName } from './constants.js';
export { OPENCL_12_FUNCTIONS, OPENCL_LATER_FUNCTIONS } from './cl12-functions.js';
