/**
 * The OpenCL workloads, natively and through the guestlib over the local channel (see ./workload-suite.ts).
 *
 * node --import tsx test/opencl/workloads-local.test.ts
 */
import { openGuestlib } from '../../src/guest/open.js';
import { requireOpenCL } from '../helpers/opencl.js';
import { workloadSuite } from './workload-suite.js';

if (await requireOpenCL()) workloadSuite('local', (spec) => openGuestlib(spec));
