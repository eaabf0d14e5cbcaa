/**
 * Builds the C front of a spec into the cache on first use: the generated descriptor tables and entry points
 * (generate.ts) plus the runtime in `c/`, compiled with the system C compiler into
 * `<cacheDir>/cfront/<spec>-<hash16>/libava-<spec>.so`, where the hash covers the generated source (so the spec's
 * hash and the sidecar's location), the runtime sources, the compiler and the flags. For OpenCL the library is an
 * ICD, and an `.icd` file naming it is written beside it: `OCL_ICD_VENDORS=<that file>` makes the ICD loader show
 * the remoted platform. Concurrent builders never see a half-written library (compiled to a temporary name, renamed).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cliEntry } from '../cli/entry.js';
import { compileInto, hashFields, packageSourceDir, splitCompiler } from '../build/compile.js';
import { cacheDir as defaultCacheDir, cCompiler } from '../config.js';
import { NativeLibraryError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import { dispatchFields, generateCFront } from './generate.js';

/** Compiler flags of the front (part of the cache hash). */
export const CFRONT_CFLAGS: readonly string[] = Object.freeze([
  '-std=c11', '-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-fPIC', '-shared', '-pthread', '-fvisibility=hidden',
  '-DCL_TARGET_OPENCL_VERSION=300', '-DCL_USE_DEPRECATED_OPENCL_1_0_APIS', '-DCL_USE_DEPRECATED_OPENCL_1_1_APIS',
  '-DCL_USE_DEPRECATED_OPENCL_1_2_APIS',
]);

const RUNTIME = ['ava_front.c', 'ava_cbor.c'] as const;
const HEADERS = ['ava_front.h', 'ava_cbor.h'] as const;
/**
 * The folder holding `CL/cl_icd.h` (the ICD dispatch table): the first of `CPATH`'s folders, /usr/include and
 * /usr/local/include that has it, or undefined.
 */
export function openclIncludeDir(): string | undefined {
  const dirs = [...(process.env.CPATH ?? '').split(':').filter(Boolean), '/usr/include', '/usr/local/include'];
  return dirs.find((d) => existsSync(join(d, 'CL', 'cl_icd.h')));
}

/** Options of {@link buildCFront}. */
export interface BuildCFrontOptions {
  /** Cache root; default `cacheDir()` (AVA_CACHE_DIR). */
  readonly cacheDir?: string;
  /** C compiler command; default `cCompiler()` (`CC` or `cc`). */
  readonly compiler?: string;
  /** Progress messages (compiling, using the cache). */
  readonly onProgress?: (message: string) => void;
}

/** A built front. */
export interface CFront {
  /** The shared library. */
  readonly library: string;
  /** For an ICD: the `.icd` file naming the library (the value for `OCL_ICD_VENDORS`). */
  readonly icdFile: string | undefined;
  /** The folder both live in. */
  readonly dir: string;
}

/** The folder of the runtime's C sources: `c/` beside this module in the source tree, else `src/cfront/c` of the package. */
export function cfrontSourceDir(): string {
  return join(packageSourceDir(import.meta.url, join('src', 'cfront'), join('c', 'ava_front.c')), 'c');
}

/**
 * Builds (or finds in the cache) the C front of `spec`.
 * @throws {NativeLibraryError} `ERR_AVA_NO_COMPILER` without a C compiler, `ERR_AVA_BUILD_FAILED` with the compiler's
 * output when compiling fails (an OpenCL front also needs CL/cl_icd.h: scripts/install-opencl.sh installs it).
 */
export async function buildCFront(spec: ApiSpec, options: BuildCFrontOptions = {}): Promise<CFront> {
  const icd = spec.name === 'opencl';
  const include = icd ? openclIncludeDir() : undefined;
  if (icd && !include) {
    throw new NativeLibraryError('ERR_AVA_BUILD_FAILED', 'CL/cl_icd.h is missing: run scripts/install-opencl.sh (opencl-headers), or name its folder in CPATH');
  }
  const command = cliEntry('guestd');
  const generated = generateCFront(spec, {
    node: command.node, guestdScript: command.script, ...(command.importUrl ? { guestdImport: command.importUrl } : {}),
    ...(icd ? { icdDispatch: { header: 'CL/cl_icd.h', struct: 'cl_icd_dispatch', fields: dispatchFields(readFileSync(join(include!, 'CL', 'cl_icd.h'), 'utf8')) } } : {}),
  });
  const srcDir = cfrontSourceDir();
  const sources = [...RUNTIME, ...(icd ? ['ava_icd.c'] : [])];
  const compiler = splitCompiler(options.compiler ?? cCompiler());
  const files = [...sources, ...HEADERS].flatMap((f) => [f, readFileSync(join(srcDir, f))]);
  const hash = hashFields(['cfront-1', generated, ...files, compiler.join(' '), CFRONT_CFLAGS.join(' '), include ?? '']);
  const dir = join(options.cacheDir ?? defaultCacheDir(), 'cfront', `${spec.name}-${hash}`);
  const library = join(dir, `libava-${spec.name}.so`);
  const icdFile = icd ? join(dir, `ava-${spec.name}.icd`) : undefined;
  if (existsSync(library) && (!icdFile || existsSync(icdFile))) {
    options.onProgress?.(`using the cached C front ${library}`);
    return { library, icdFile, dir };
  }
  await mkdir(dir, { recursive: true });
  const tmp = `.tmp-${randomBytes(6).toString('hex')}`;
  const genFile = join(dir, `generated-${spec.name}.c`);
  await writeFile(`${genFile}${tmp}`, generated);
  await rename(`${genFile}${tmp}`, genFile);
  await compileInto(library, {
    compiler: options.compiler ?? cCompiler(), what: `the C front of ${spec.name}`,
    args: (out) => [...CFRONT_CFLAGS, `-I${srcDir}`, ...(include ? [`-I${include}`] : []), '-o', out, genFile, ...sources.map((f) => join(srcDir, f))],
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  if (icdFile) {
    await writeFile(`${icdFile}${tmp}`, `${library}\n`);
    await rename(`${icdFile}${tmp}`, icdFile);
  }
  return { library, icdFile, dir };
}
