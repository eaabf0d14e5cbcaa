/**
 * The one place that reads `AVA_*` environment variables. Everything else receives options objects;
 * a bad value is a {@link ConfigError} naming the variable, raised at start, never a silent default.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Environment to read; defaults to `process.env`, tests pass their own. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Folder for things built on first use (the toyacc fixture library, later the C front).
 * `AVA_CACHE_DIR`, else `$XDG_CACHE_HOME/ava-migrate`, else `~/.cache/ava-migrate`.
 */
export function cacheDir(env: Env = process.env): string {
  if (env.AVA_CACHE_DIR) return resolve(env.AVA_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), 'ava-migrate');
  return join(homedir(), '.cache', 'ava-migrate');
}

/** The C compiler for native fixtures: `CC`, else `cc`. */
export function cCompiler(env: Env = process.env): string {
  return env.CC && env.CC.trim() !== '' ? env.CC.trim() : 'cc';
}
