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
test.run = uvuTest.run;
test.after = uvuTest.after;
test.before = uvuTest.before;
