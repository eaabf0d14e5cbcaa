/**
 * The shipped specs by name, loaded on demand: a worker process, thread or CLI names the API it serves and gets
 * the very spec object the guest uses (specs carry functions, so they are imported, never sent).
 */
import { ConfigError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';

const LOADERS: Readonly<Record<string, () => Promise<ApiSpec>>> = {
  toyacc: async () => (await import('./toyacc/spec.js')).toyaccSpec,
  opencl: async () => (await import('./opencl/spec.js')).openclSpec,
};

/** Names of the shipped specs. */
export const SPEC_NAMES: readonly string[] = Object.keys(LOADERS);

/**
 * Loads a shipped spec by name.
 * @throws {ConfigError} `ERR_AVA_CONFIG` for an unknown name.
 */
export async function loadSpec(name: string): Promise<ApiSpec> {
  const load = Object.hasOwn(LOADERS, name) ? LOADERS[name] : undefined;
  if (!load) throw new ConfigError(`unknown spec "${name}"; shipped specs: ${SPEC_NAMES.join(', ')}`);
  return load();
}
