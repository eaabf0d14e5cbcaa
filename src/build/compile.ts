/**
 * Compiling C on first use, into the cache: what the toyacc fixture, the OpenCL C test programs and the C front
 * share. An output that exists is used as it is (its folder is named by a hash of everything that went into it);
 * a new one is compiled to a temporary name beside it and renamed into place, so concurrent builders (threads or
 * processes) never see a half-written file. Errors are coded: `ERR_AVA_NO_COMPILER`, `ERR_AVA_BUILD_FAILED`.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NativeLibraryError } from '../errors.js';

const execFileAsync = promisify(execFile);

/** A compiler command split at whitespace (`"ccache gcc"` works). @throws `ERR_AVA_NO_COMPILER` when empty. */
export function splitCompiler(compiler: string): string[] {
  const parts = compiler.trim().split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0) throw new NativeLibraryError('ERR_AVA_NO_COMPILER', 'the C compiler command is empty: install a C compiler (gcc) or set CC');
  return parts;
}

/** The first 16 hex digits of a sha-256 over length-prefixed fields: a cache key no two field lists share. */
export function hashFields(fields: readonly (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const v of fields) {
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    h.update(`${bytes.length}:`);
    h.update(bytes);
  }
  return h.digest('hex').slice(0, 16);
}

/** Reads a source file. @throws `ERR_AVA_BUILD_FAILED` naming `what` when it cannot be read. */
export async function readBuildSource(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new NativeLibraryError('ERR_AVA_BUILD_FAILED', `cannot read the ${what} source ${path}: ${(cause as Error).message}`, { cause });
  }
}

/** True when `path` is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Options of {@link compileInto}. */
export interface CompileOptions {
  /** The compiler command (see {@link splitCompiler}). */
  readonly compiler: string;
  /** The compiler's arguments, given the temporary output path. */
  readonly args: (output: string) => readonly string[];
  /** What is built, for messages ("toyacc", "the C front of opencl"). */
  readonly what: string;
  readonly cwd?: string;
  /** Extra words for a failed build, from the compiler's stderr (a missing header, say). */
  readonly hint?: (stderr: string) => string;
  readonly onProgress?: (message: string) => void;
}

/**
 * Compiles into `output` (its folder is made) through a temporary file; when another builder got there first, its
 * file (same inputs, same bytes) is kept.
 * @throws {NativeLibraryError} `ERR_AVA_NO_COMPILER` when the compiler cannot run, `ERR_AVA_BUILD_FAILED` with the
 * compiler's stderr when it fails.
 */
export async function compileInto(output: string, options: CompileOptions): Promise<void> {
  await mkdir(dirname(output), { recursive: true });
  const tmp = join(dirname(output), `.${basename(output)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const [cmd, ...pre] = splitCompiler(options.compiler);
  const args = [...pre, ...options.args(tmp)];
  options.onProgress?.(`${options.what}: compiling with ${[cmd, ...args].join(' ')}`);
  try {
    await execFileAsync(cmd!, args, { ...(options.cwd ? { cwd: options.cwd } : {}), maxBuffer: 16 * 1024 * 1024 });
  } catch (cause) {
    await rm(tmp, { force: true });
    const e = cause as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      throw new NativeLibraryError('ERR_AVA_NO_COMPILER', `cannot run the C compiler '${cmd}' (${e.code}): install a C compiler (gcc) or set CC to one`, {
        cause, details: { compiler: options.compiler },
      });
    }
    const stderr = (e.stderr ?? '').toString().trim();
    throw new NativeLibraryError('ERR_AVA_BUILD_FAILED', `building ${options.what} failed (${[cmd, ...args].join(' ')}):\n${stderr || e.message}${options.hint?.(stderr) ?? ''}`, {
      cause, details: { compiler: options.compiler, stderr },
    });
  }
  try {
    if (await isFile(output)) await rm(tmp, { force: true });
    else await rename(tmp, output);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new NativeLibraryError('ERR_AVA_BUILD_FAILED', `cannot move the built ${options.what} into ${output}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Memoizes builds per key in this process: a second caller with the same key shares the first build; a result
 * whose files were deleted since (`stillThere` false) is built again; a failed build is forgotten.
 */
export function memoizedBuild<T>(stillThere: (result: T) => Promise<boolean>): (key: string, build: () => Promise<T>) => Promise<T> {
  const memo = new Map<string, Promise<T>>();
  const get = async (key: string, build: () => Promise<T>): Promise<T> => {
    const pending = memo.get(key);
    if (pending !== undefined) {
      const result = await pending;
      if (await stillThere(result)) return result;
      if (memo.get(key) === pending) memo.delete(key);
      return get(key, build);
    }
    const promise = build();
    memo.set(key, promise);
    promise.catch(() => {
      if (memo.get(key) === promise) memo.delete(key);
    });
    return promise;
  };
  return get;
}

/**
 * Where C sources live in this installation: the calling module's own folder when `marker` is there (running from
 * the source tree under tsx), else `relative` under the ava-migrate package root found above it (running from
 * dist/, where .c and .h files are not copied).
 * @throws `ERR_AVA_BUILD_FAILED` when neither is found.
 */
export function packageSourceDir(moduleUrl: string, relative: string, marker: string): string {
  const here = fileURLToPath(new URL('.', moduleUrl));
  if (existsSync(join(here, marker))) return resolve(here);
  for (let dir = resolve(here); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'ava-migrate') return join(dir, relative);
      } catch {
        // not a package.json we can read: keep walking up
      }
    }
    if (dirname(dir) === dir) throw new NativeLibraryError('ERR_AVA_BUILD_FAILED', `cannot find the sources (${marker}) from ${here}`);
  }
}
