/**
 * The one place that reads `AVA_*` environment variables. Everything else receives options objects;
 * a bad value is a {@link ConfigError} naming the variable, raised at start, never a silent default.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from './errors.js';

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

/** The C++ compiler for native fixtures (the C++ OpenCL program): `CXX`, else `c++`. */
export function cxxCompiler(env: Env = process.env): string {
  return env.CXX && env.CXX.trim() !== '' ? env.CXX.trim() : 'c++';
}

/** Where a worker or manager listens. */
export type Address = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/**
 * Parses an address: `unix:/path` or an absolute path (unix socket); `tcp:host:port`, `host:port`, or a bare port
 * (localhost).
 * @throws {ConfigError} naming `what` (e.g. `AVA_MANAGER_ADDR`).
 */
export function parseAddress(text: string, what = 'address'): Address {
  const value = text.trim();
  if (value.startsWith('unix:')) return { kind: 'unix', path: resolve(value.slice(5)) };
  if (value.startsWith('/')) return { kind: 'unix', path: value };
  const rest = value.startsWith('tcp:') ? value.slice(4) : value;
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${what}: "${text}" is not an address (unix:/path, host:port or port)`);
  return { kind: 'tcp', host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/** Formats an address the way {@link parseAddress} reads it. */
export function formatAddress(address: Address): string {
  return address.kind === 'unix' ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
}

/** The transports `AVA_CHANNEL` can name. */
export type ChannelKind = 'local' | 'shm' | 'unix' | 'tcp';

/**
 * `AVA_CHANNEL`: LOCAL (default), SHM, UNIX or TCP (any case). VSOCK, AvA's VM channel, is refused with a clear
 * error, as is anything unknown.
 */
export function channelKind(env: Env = process.env): ChannelKind {
  const raw = env.AVA_CHANNEL?.trim();
  if (!raw) return 'local';
  const kind = raw.toLowerCase();
  if (kind === 'local' || kind === 'shm' || kind === 'unix' || kind === 'tcp') return kind;
  if (kind === 'vsock') throw new ConfigError('AVA_CHANNEL=VSOCK is not supported: ava-migrate runs guests as processes, not VMs; use LOCAL, SHM, UNIX or TCP');
  throw new ConfigError(`AVA_CHANNEL="${raw}" is not supported; use LOCAL, SHM, UNIX or TCP`);
}

/** `AVA_MANAGER_ADDR`, parsed, or undefined. */
export function managerAddress(env: Env = process.env): Address | undefined {
  const raw = env.AVA_MANAGER_ADDR?.trim();
  return raw ? parseAddress(raw, 'AVA_MANAGER_ADDR') : undefined;
}

/** `AVA_WORKER_ADDR` (connect straight to a worker, no manager), parsed, or undefined. */
export function workerAddress(env: Env = process.env): Address | undefined {
  const raw = env.AVA_WORKER_ADDR?.trim();
  return raw ? parseAddress(raw, 'AVA_WORKER_ADDR') : undefined;
}

/** `AVA_TOKEN`: the shared secret tcp listeners require. */
export function authToken(env: Env = process.env): string | undefined {
  const raw = env.AVA_TOKEN?.trim();
  return raw ? raw : undefined;
}

/** `AVA_WPOOL=TRUE|FALSE` (also 1/0, yes/no): keep a pool of started workers in the manager. */
export function workerPool(env: Env = process.env): boolean {
  return flag(env, 'AVA_WPOOL', false);
}

/** `AVA_PRINT_TIMESTAMP=1`: print the seven stage timestamps of every call. */
export function printTimestamps(env: Env = process.env): boolean {
  return flag(env, 'AVA_PRINT_TIMESTAMP', false);
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name}="${env[name]}" is not a boolean (use TRUE or FALSE)`);
}

/** `AVA_RECORD_REPLAY=1`: journal every session. */
export function recordReplay(env: Env = process.env): boolean {
  return flag(env, 'AVA_RECORD_REPLAY', false);
}

/** `AVA_JOURNAL`: the journal folder (default `.ava/journal` under the working directory). */
export function journalPath(env: Env = process.env): string {
  const raw = env.AVA_JOURNAL?.trim();
  return resolve(raw ? raw : join('.ava', 'journal'));
}

/** `AVA_JOURNAL_DURABILITY`: none, batch (default) or sync. */
export function journalDurability(env: Env = process.env): 'none' | 'batch' | 'sync' {
  const raw = env.AVA_JOURNAL_DURABILITY?.trim().toLowerCase();
  if (!raw) return 'batch';
  if (raw === 'none' || raw === 'batch' || raw === 'sync') return raw;
  throw new ConfigError(`AVA_JOURNAL_DURABILITY="${env.AVA_JOURNAL_DURABILITY}" is not one of none, batch, sync`);
}

/** `AVA_JOURNAL_TIMINGS=1`: also journal every call's stage timings (for `ava-journal export --trace`). */
export function journalTimings(env: Env = process.env): boolean {
  return flag(env, 'AVA_JOURNAL_TIMINGS', false);
}

/** `NO_COLOR` (any non-empty value, https://no-color.org): command-line tools print no ANSI colours. */
export function noColor(env: Env = process.env): boolean {
  return (env.NO_COLOR ?? '') !== '';
}

/** When to migrate: at call `n`, or at a random call below `limit`. */
export type MigrationTrigger = { readonly kind: 'at'; readonly call: number } | { readonly kind: 'random'; readonly limit: number };

/**
 * `AVA_MIGRATION_CALL_ID`: `<n>` migrates at call n (calls count from 0), `r<limit>` at a random call below limit.
 * @throws {ConfigError} for anything else.
 */
export function migrationTrigger(env: Env = process.env): MigrationTrigger | undefined {
  const raw = env.AVA_MIGRATION_CALL_ID?.trim();
  if (!raw) return undefined;
  return parseMigrationTrigger(raw, 'AVA_MIGRATION_CALL_ID');
}

/** Parses `<n>` or `r<limit>` (also what `ava-migrate --call` takes). */
export function parseMigrationTrigger(raw: string, what: string): MigrationTrigger {
  const m = /^(r)?(\d{1,15})$/.exec(raw.trim());
  if (!m) throw new ConfigError(`${what}="${raw}" must be a call number (e.g. 42) or r<limit> (e.g. r100)`);
  const n = Number(m[2]);
  if (m[1]) {
    if (n < 1) throw new ConfigError(`${what}="${raw}": the limit must be at least 1`);
    return { kind: 'random', limit: n };
  }
  return { kind: 'at', call: n };
}

/** `AVA_MIGRATION_SEED`: seed of the random call choice (an integer), so a run can be reproduced. */
export function migrationSeed(env: Env = process.env): number | undefined {
  const raw = env.AVA_MIGRATION_SEED?.trim();
  if (!raw) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new ConfigError(`AVA_MIGRATION_SEED="${raw}" must be a non-negative integer`);
  return Number(raw);
}

/** `AVA_MIGRATION_TARGET`: a peer manager (host:port) to migrate to; default: a new worker like the source's. */
export function migrationTarget(env: Env = process.env): Address | undefined {
  const raw = env.AVA_MIGRATION_TARGET?.trim();
  return raw ? parseAddress(raw, 'AVA_MIGRATION_TARGET') : undefined;
}

/** `AVA_MIGRATION_MODE`: `stop` (stop-and-copy, default) or `precopy` (state copied while the application runs). */
export function migrationMode(env: Env = process.env): 'stop' | 'precopy' {
  const raw = env.AVA_MIGRATION_MODE?.trim().toLowerCase();
  if (!raw || raw === 'stop') return 'stop';
  if (raw === 'precopy' || raw === 'pre-copy') return 'precopy';
  throw new ConfigError(`AVA_MIGRATION_MODE="${env.AVA_MIGRATION_MODE}" must be stop or precopy`);
}

/** `AVA_MIGRATION_REPORT`: a file to which each migration appends its report as one JSON line. */
export function migrationReportPath(env: Env = process.env): string | undefined {
  const raw = env.AVA_MIGRATION_REPORT?.trim();
  return raw ? resolve(raw) : undefined;
}

/** `AVA_JOURNAL_DATA=1`: data journaling (transfers and launches too), so failover loses no completed work. */
export function journalData(env: Env = process.env): boolean {
  return flag(env, 'AVA_JOURNAL_DATA', false);
}

/** `AVA_FAILOVER=1`: when the worker dies, rebuild the session on a new worker from the journal. */
export function failoverEnabled(env: Env = process.env): boolean {
  return flag(env, 'AVA_FAILOVER', false);
}

/** `AVA_CHECKPOINT_EVERY=<n>`: write a checkpoint of the explicit state every n calls (0: never). */
export function checkpointEvery(env: Env = process.env): number {
  const raw = env.AVA_CHECKPOINT_EVERY?.trim();
  if (!raw) return 0;
  if (!/^\d{1,9}$/.test(raw)) throw new ConfigError(`AVA_CHECKPOINT_EVERY="${raw}" must be a number of calls`);
  return Number(raw);
}

/** Default of {@link guestdSpinMicros}. */
export const DEFAULT_GUESTD_SPIN_MICROS = 100;

/**
 * `AVA_GUESTD_SPIN_US=<µs>`: how long ava-guestd keeps polling its front's socket after each frame in or out, instead
 * of sleeping until the next one (0: never; at most 10000). A native program's next call usually follows within
 * microseconds, and waking a sleeping process costs more than that on a VM.
 */
export function guestdSpinMicros(env: Env = process.env): number {
  const raw = env.AVA_GUESTD_SPIN_US?.trim();
  if (!raw) return DEFAULT_GUESTD_SPIN_MICROS;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 10_000) throw new ConfigError(`AVA_GUESTD_SPIN_US="${raw}" must be a number of microseconds from 0 to 10000`);
  return Number(raw);
}
