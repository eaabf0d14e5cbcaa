/**
 * `npm run bench [-- <name filter>...] [--platform <substring>]`: runs every benchmark (or those whose name contains
 * a filter) and writes bench/results/*.json. `--platform` is read by the OpenCL benchmarks (e.g. NVIDIA on the GPU
 * machine) and is not a filter.
 */
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  'toyacc-query': () => import('./toyacc-query.js'),
  'opencl-workloads': () => import('./opencl-workloads.js'),
  shm: () => import('./shm.js'),
  sockets: () => import('./sockets.js'),
  replay: () => import('./replay.js'),
  journal: () => import('./journal.js'),
  migration: () => import('./migration.js'),
  icd: () => import('./icd.js'),
};

const argv = process.argv.slice(2);
const filters = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1] === '--platform'));
for (const [name, load] of Object.entries(suites)) {
  if (filters.length > 0 && !filters.some((f) => name.includes(f))) continue;
  await (await load()).run();
}
