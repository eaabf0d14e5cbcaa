/**
 * `npm run demo` / `ava-demo`: runs the built-in toyacc demo workload through the guestlib (local channel) or
 * natively, and prints what it computed.
 */
import { toyaccSpec } from '../apis/toyacc/spec.js';
import { runToyaccDemo } from '../apis/toyacc/demo.js';
import { openGuestlib } from '../guest/open.js';
import { openNativeApi } from '../worker/native-api.js';
import { ConfigError } from '../errors.js';
import { parseCli } from './common.js';

const HELP = `Usage: ava-demo [options]

Runs the built-in toyacc workload (devices, context, queue, program with four kernels, buffers, launches,
reads) through the guestlib -> local channel -> worker -> koffi -> the toyacc native library, and prints
what it computed. The toyacc library is compiled with the system C compiler on first use (cached).

Options:
  --elements <n>   elements per buffer (default 4096)
  --rounds <n>     rounds of axpy + scale (default 3)
  --native         call the native library directly (no guestlib), for comparison
  --json           print the result as one JSON object
  -h, --help       show this help
`;

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    elements: { type: 'string' }, rounds: { type: 'string' }, native: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const options = { elements: positiveInt(values.elements as string | undefined, 'elements', 4096), rounds: positiveInt(values.rounds as string | undefined, 'rounds', 3) };
  if (options.elements < 1) throw new ConfigError("--elements must be at least 1");
  if (!values.json) process.stderr.write(`ava-demo: building/loading toyacc and running ${values.native ? 'natively' : 'through the guestlib (local channel)'}...\n`);
  await using lib = values.native ? await openNativeApi(toyaccSpec) : await openGuestlib(toyaccSpec);
  const result = await runToyaccDemo(lib.api, options);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ path: values.native ? 'native' : 'guestlib-local', ...result })}\n`);
    return;
  }
  process.stdout.write(
    [
      `devices:   ${result.devices.join(', ')}`,
      `elements:  ${result.elements}, rounds: ${result.rounds}`,
      `y[0..3]:   ${result.head.join(', ')}`,
      `sum(y):    ${result.sum}`,
      `checksum:  0x${result.checksum.toString(16).padStart(8, '0')} (FNV-1a of y, computed on the device)`,
      '',
    ].join('\n'),
  );
}
