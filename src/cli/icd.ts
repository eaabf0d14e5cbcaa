/**
 * `ava-icd`: the OpenCL ICD for unmodified native programs. `env` builds it (cached) and prints the variables that
 * make the ICD loader use it; `run -- <program> [args]` runs a program through it (with whatever AVA_* variables
 * are set: journal, migration trigger, failover, channel); `path` prints the library and the .icd file.
 */
import { spawn } from 'node:child_process';
import { openclSpec } from '../apis/opencl/spec.js';
import { buildCFront } from '../cfront/build.js';
import { icdEnvironment } from '../cfront/icd-env.js';
import { ConfigError } from '../errors.js';
import { parseCli } from './common.js';

const HELP = `Usage: ava-icd env                       print OCL_ICD_VENDORS=... (eval "$(npx ava-icd env)")
       ava-icd run -- <program> [args]   run a native OpenCL program through the ICD; exits with its status
       ava-icd path [--json]             the ICD library and its .icd file

Builds the C front of the OpenCL spec into the cache (AVA_CACHE_DIR) on first use, with the system C compiler
(CC), and again when the spec changes. Through it, the ICD loader shows one platform, "AvA remoted: <name>", and
every call goes to ava-guestd, which runs the session as AVA_* variables say (see the README).
`;

const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseCli(own, { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }, true);
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return;
  }
  const progress = (m: string): void => { process.stderr.write(`ava-icd: ${m}\n`); };
  switch (positionals[0]) {
    case 'env': {
      const env = await icdEnvironment({ onProgress: progress });
      process.stdout.write(Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}`).join('\n') + '\n');
      return;
    }
    case 'path': {
      const front = await buildCFront(openclSpec, { onProgress: progress });
      process.stdout.write(values.json ? `${JSON.stringify(front)}\n` : `${front.library}\n${front.icdFile}\n`);
      return;
    }
    case 'run': {
      if (command.length === 0) throw new ConfigError('give the program after --: ava-icd run -- ./program args');
      const env = { ...process.env, ...(await icdEnvironment({ onProgress: progress })) };
      process.exitCode = await new Promise<number>((resolve, reject) => {
        const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
        child.once('error', (error) => reject(new ConfigError(`cannot start ${command[0]}: ${error.message}`, { cause: error })));
        child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
      return;
    }
    default:
      throw new ConfigError(`unknown command "${positionals[0]}" (see --help)`);
  }
}
