/**
 * `ava-spec`: facts about the shipped specs. `ava-spec coverage <opencl|toyacc> [--json]` prints which functions
 * are implemented and which are declared unsupported (with the reason), against the API's full function list.
 */
import { OPENCL_12_FUNCTIONS, OPENCL_LATER_FUNCTIONS } from '../apis/opencl/cl12-functions.js';
import { openclSpec } from '../apis/opencl/spec.js';
import { toyaccSpec } from '../apis/toyacc/spec.js';
import { ConfigError } from '../errors.js';
import { coverageOf } from '../spec/coverage.js';
import type { ApiSpec } from '../spec/types.js';
import { parseCli } from './common.js';

const HELP = `Usage: ava-spec coverage <api> [--json]
       ava-spec hash <api>

APIs: opencl (OpenCL 1.2, against every entry point of CL/cl.h up to 1.2), toyacc (the fixture).
  coverage   implemented / unsupported / total, with names (and reasons); --json for scripts
  hash       the spec's stable hash
`;

const APIS: Record<string, { spec: ApiSpec; reference?: readonly string[] }> = {
  opencl: { spec: openclSpec, reference: [...OPENCL_12_FUNCTIONS, ...OPENCL_LATER_FUNCTIONS] },
  toyacc: { spec: toyaccSpec },
};

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCli(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return;
  }
  const [command, apiName] = positionals;
  const api = APIS[apiName ?? ''];
  if (!api) throw new ConfigError(`unknown api "${apiName ?? ''}"; choose one of: ${Object.keys(APIS).join(', ')}`);
  if (command === 'hash') {
    process.stdout.write(`${api.spec.hash}\n`);
    return;
  }
  if (command !== 'coverage') throw new ConfigError(`unknown command "${command}"; see ava-spec --help`);
  const c = coverageOf(api.spec, api.reference);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
    return;
  }
  const lines = [
    `${c.api}: ${c.implemented.length} implemented, ${c.unsupported.length} unsupported, ${c.missing.length} missing, ${c.total} total`,
    '',
    `implemented (${c.implemented.length}):`,
    ...c.implemented.map((n) => `  ${n}`),
    '',
    `unsupported (${c.unsupported.length}), each call fails with ERR_AVA_UNSUPPORTED naming it:`,
    ...c.unsupported.map((u) => `  ${u.name}: ${u.reason}`),
  ];
  if (c.missing.length > 0) lines.push('', `missing (${c.missing.length}):`, ...c.missing.map((n) => `  ${n}`));
  process.stdout.write(`${lines.join('\n')}\n`);
}
