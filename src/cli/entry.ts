/**
 * How this installation starts one of its command-line entries (`src/cli/run-<name>`) in a new process: the compiled
 * script under dist/, or, when running from the TypeScript sources (tests under tsx), the .ts file with the tsx
 * loader imported first (by absolute URL, so it resolves whatever the new process's working folder).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AvaError } from '../errors.js';

/** A command line: node, an optional module to `--import` first, the script. */
export interface CliEntry {
  readonly node: string;
  readonly importUrl?: string;
  readonly script: string;
}

/**
 * The entry `run-<name>` of this installation.
 * @throws `ERR_AVA_NATIVE_LOAD` when the compiled entry is missing (run `npm run build`).
 */
export function cliEntry(name: string): CliEntry {
  if (fileURLToPath(import.meta.url).endsWith('.ts')) {
    return { node: process.execPath, importUrl: import.meta.resolve('tsx'), script: fileURLToPath(new URL(`./run-${name}.ts`, import.meta.url)) };
  }
  const script = fileURLToPath(new URL(`./run-${name}.js`, import.meta.url));
  if (!existsSync(script)) throw new AvaError('ERR_AVA_NATIVE_LOAD', `${name} entry ${script} is missing; run npm run build`);
  return { node: process.execPath, script };
}
