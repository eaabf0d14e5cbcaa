/**
 * uvu's `test`, for suites that expect no AvaError: uvu prints an error's `details` as its diff and goes silent on
 * our structured `details`, so an unexpected AvaError is rethrown as a plain error carrying its code and message.
 */
import { test as uvuTest } from 'uvu';
import { AvaError } from '../../src/errors.js';

/** Registers a test whose unexpected AvaErrors are reported with their code. */
export function test(name: string, body: () => unknown): void {
  uvuTest(name, async () => {
    try {
      await body();
    } catch (error) {
      if (AvaError.isAvaError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`);
      throw error;
    }
  });
}

/**
 * A `test` that fails when its body has not finished within `timeoutMs`, and runs `cleanUp` (if given) after each
 * test whatever happened.
 */
export function boundedTest(timeoutMs: number, cleanUp?: () => Promise<void>): (name: string, body: () => Promise<void>) => void {
  return (name, body) => uvuTest(name, async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([body(), new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name}: not done within ${timeoutMs} ms`)), timeoutMs);
      })]);
    } catch (error) {
      if (AvaError.isAvaError(error)) throw new Error(`unexpected ${error.code}: ${error.message}`);
      throw error;
    } finally {
      clearTimeout(timer);
      await cleanUp?.();
    }
  });
}
test.run = uvuTest.run;
test.after = uvuTest.after;
test.before = uvuTest.before;
