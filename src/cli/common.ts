/**
 * Helpers shared by the command-line tools: argument parsing with `util.parseArgs`, and one way to report errors
 * (code and message on stderr, exit status 2 for usage and availability, 1 for failures).
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { AvaError, ConfigError, NotYetAvailableError } from '../errors.js';

/** Parses argv with strict checking; unknown flags become {@link ConfigError}. */
export function parseCli<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[], options: T, allowPositionals = false,
): { values: Record<keyof T, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals }) as unknown as { values: Record<keyof T, string | boolean | undefined>; positionals: string[] };
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}

/** Runs a CLI main function: prints errors as `tool: CODE: message` and sets the exit status. */
export async function runCli(tool: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const code = AvaError.isAvaError(error) ? error.code : 'ERR_AVA_INTERNAL';
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${tool}: ${code}: ${message}\n`);
    if (!AvaError.isAvaError(error) && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    process.exitCode = error instanceof NotYetAvailableError || error instanceof ConfigError ? 2 : 1;
  }
}

/**
 * The main function of a tool whose work arrives in a later release: `--help` says what it will do; anything else
 * is a `ERR_AVA_NOT_YET_AVAILABLE` error (exit status 2), never fake output.
 */
export function notYetAvailable(tool: string, help: string): () => Promise<void> {
  return async () => {
    const argv = process.argv.slice(2);
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(help);
      return;
    }
    throw new NotYetAvailableError(`${tool}`);
  };
}
