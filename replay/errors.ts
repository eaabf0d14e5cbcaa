/**
 * Replay errors. "The program diverged" (a replayed call answered differently from its record: {@link ReplayMismatchError})
 * is kept apart from "the target failed" (the worker or channel broke: {@link ReplayTargetError}).
 */
import { AvaError } from '../src/errors.js';
import type { WireValue } from '../src/wire/frames.js';

/** Values of one call as recorded and as attempted, with the fields that differ. */
export interface CallDiff {
  readonly field: string;
  readonly recorded: WireValue | undefined;
  readonly attempted: WireValue | undefined;
}

/**
 * A replayed call did not answer as it did when recorded (`ERR_AVA_REPLAY_MISMATCH`). Names the record (its index in
 * the plan and its seq), the function, what was recorded, what the target answered, and the field-level difference.
 */
export class ReplayMismatchError extends AvaError {
  constructor(index: number, seq: number, fn: string, diff: readonly CallDiff[]) {
    const fields = diff.map((d) => `${d.field}: recorded ${JSON.stringify(d.recorded)}, got ${JSON.stringify(d.attempted)}`).join('; ');
    super('ERR_AVA_REPLAY_MISMATCH',
      `replay diverged at plan record ${index} (seq ${seq}, ${fn}): ${fields}. The target does not behave like the source ` +
      '(another library version or device?); the journal is untouched and the session stays where it was.',
      { details: { index, seq, fn, diff: diff as never } });
  }
}

/** The target failed during replay: its channel closed, a control request failed (`ERR_AVA_REPLAY_TARGET`). */
export class ReplayTargetError extends AvaError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('ERR_AVA_REPLAY_TARGET', message, options);
  }
}
