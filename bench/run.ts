/**
 * `npm run bench`: runs every benchmark (or those whose name contains an argument) and writes bench/results/*.json.
 */
const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  'toyacc-query': () => import('./toyacc-query.js'),
};

const filters = process.argv.slice(2);
for (const [name, load] of Object.entries(suites)) {
  if (filters.length > 0 && !filters.some((f) => name.includes(f))) continue;
  await (await load()).run();
}
