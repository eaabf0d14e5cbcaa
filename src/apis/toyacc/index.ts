/** The toyacc fixture API: spec, constants and the TypeScript model. */
export { toyaccSpec } from './spec.js';
export { TQ, TQ_STATUS_NAMES } from '../../../fixtures/toyacc/constants.js';
