/**
 * `ava-manager`: the manager daemon. Hands each guest a worker of its spec (see src/manager/manager.ts), keeps a
 * pool of started workers when asked (`--pool N` or `AVA_WPOOL=TRUE`) and replaces pool workers that die. Prints one
 * JSON line once it listens (`{"event":"listening","address":...,"pid":...}`); logs worker starts, deaths and
 * replacements on stderr; SIGTERM and SIGINT stop it cleanly (every worker stopped, exit status 0).
 */
import { SPEC_NAMES } from '../apis/registry.js';
import type { Address, Env } from '../config.js';
import { authToken, formatAddress, managerAddress, parseAddress, workerPool } from '../config.js';
import { ConfigError } from '../errors.js';
import { Manager } from '../manager/manager.js';
import { parseCli } from './common.js';

/** Where the manager listens when neither `--addr` nor `AVA_MANAGER_ADDR` says. */
export const DEFAULT_MANAGER_ADDRESS: Address = { kind: 'tcp', host: '127.0.0.1', port: 3333 };
/** Pool size per spec when `AVA_WPOOL=TRUE` and no `--pool`. */
export const DEFAULT_POOL_SIZE = 2;

const HELP = `Usage: ava-manager [--addr <host:port | port | unix:/path>] [--pool <n>] [--spec <name,...>] [--token <secret>]

Hands each guest (AVA_MANAGER_ADDR=<addr> AVA_CHANNEL=TCP|UNIX) a worker process of its spec.

  --addr   where to listen; default AVA_MANAGER_ADDR, else 127.0.0.1:3333
  --pool   workers started per spec ahead of time and replaced when they die; the least-used one serves each
           guest. Default ${DEFAULT_POOL_SIZE} when AVA_WPOOL=TRUE, else 0: one worker per spec, started on first
           request and shared by later ones
  --spec   specs served, comma-separated (${SPEC_NAMES.join(', ')}); default all of them
  --token  secret guests must present (AVA_TOKEN on their side); default AVA_TOKEN

Prints {"event":"listening","address":...,"pid":...} as one JSON line on stdout once ready; logs worker starts,
deaths and replacements on stderr. SIGTERM or SIGINT stops every worker and exits with status 0.
`;

function parsePool(text: string): number {
  if (!/^\d{1,3}$/.test(text.trim())) throw new ConfigError(`--pool: "${text}" is not a worker count (0 to 256)`);
  const n = Number(text.trim());
  if (n > 256) throw new ConfigError(`--pool: ${n} is over the limit of 256 workers per spec`);
  return n;
}

function parseSpecs(text: string): string[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new ConfigError('--spec: name at least one spec');
  for (const name of names) {
    if (!SPEC_NAMES.includes(name)) throw new ConfigError(`--spec: unknown spec "${name}"; shipped specs: ${SPEC_NAMES.join(', ')}`);
  }
  return [...new Set(names)];
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** The CLI's main function; resolves once the manager stopped after SIGTERM or SIGINT. */
export async function main(argv: string[], env: Env = process.env): Promise<void> {
  const { values } = parseCli(argv, {
    addr: { type: 'string' }, pool: { type: 'string' }, spec: { type: 'string' }, token: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const address = values.addr !== undefined ? parseAddress(values.addr as string, '--addr') : managerAddress(env) ?? DEFAULT_MANAGER_ADDRESS;
  const poolSize = values.pool !== undefined ? parsePool(values.pool as string) : workerPool(env) ? DEFAULT_POOL_SIZE : 0;
  const specs = values.spec !== undefined ? parseSpecs(values.spec as string) : [...SPEC_NAMES];
  const token = (values.token as string | undefined) ?? authToken(env);
  if (address.kind === 'tcp' && !isLoopback(address.host) && !token) {
    process.stderr.write(`ava-manager: warning: listening on ${address.host} without a token: anybody who reaches it gets workers (set --token or AVA_TOKEN)\n`);
  }

  // Signals are caught from the start, so one that comes while the pool starts still stops everything cleanly.
  let stopping = false;
  let onStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => { onStop = resolve; });
  const handler = (signal: NodeJS.Signals): void => {
    process.stderr.write(stopping ? `ava-manager: ${signal}: already stopping\n` : `ava-manager: ${signal}: stopping\n`);
    stopping = true;
    onStop();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  try {
    const manager = await Manager.start({
      address, ...(token ? { token } : {}),
      ...(poolSize > 0 ? { pool: { size: poolSize, specs } } : { specs }),
    });
    try {
      process.stdout.write(`${JSON.stringify({ event: 'listening', address: formatAddress(manager.address), pid: process.pid, pool: poolSize, specs })}\n`);
      await stopRequested;
    } finally {
      await manager.close();
    }
  } finally {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  }
}
