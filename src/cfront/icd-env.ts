/**
 * Running a native program through the OpenCL ICD: the environment that makes the ICD loader show only the remoted
 * platform, and the test for "is this command a native program" that `ava-migrate` uses to decide.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { openclSpec } from '../apis/opencl/spec.js';
import type { BuildCFrontOptions } from './build.js';
import { buildCFront } from './build.js';

/**
 * The variables a program needs to run through the ICD: `OCL_ICD_VENDORS` names the folder that holds only our
 * `.icd` file (what ocl-icd reads), `OCL_ICD_FILENAMES` our library (what Khronos' loader, shipped with the CUDA
 * toolkit, reads first; it lists the platforms of /etc/OpenCL/vendors after ours); `AVA_OCL_ICD_VENDORS` and
 * `AVA_OCL_ICD_FILENAMES` keep the caller's values, which the sidecar and its workers get back, so that their
 * libOpenCL finds the real platforms (and never the ICD again).
 */
export async function icdEnvironment(options: BuildCFrontOptions = {}): Promise<Record<string, string>> {
  const front = await buildCFront(openclSpec, options);
  const keep = (name: string): string => process.env[`AVA_${name}`] ?? process.env[name] ?? '';
  return {
    OCL_ICD_VENDORS: front.dir, OCL_ICD_FILENAMES: front.library,
    AVA_OCL_ICD_VENDORS: keep('OCL_ICD_VENDORS'), AVA_OCL_ICD_FILENAMES: keep('OCL_ICD_FILENAMES'),
  };
}

/** The file `command` runs (a path, or the first match on PATH), or undefined. */
export function resolveCommand(command: string): string | undefined {
  if (command.includes('/')) return existsSync(command) ? resolve(command) : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, command);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** True when `command` is a compiled (ELF) program, as opposed to a script (node, shell, python...). */
export function isNativeProgram(command: string): boolean {
  const file = resolveCommand(command);
  if (!file) return false;
  const head = Buffer.alloc(4);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    return readSync(fd, head, 0, 4, 0) === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
