/**
 * `repeat` on posted calls (see CallFrame.repeat): a run of the same asynchronous call, made again with the next seqs,
 * travels as one call frame with a count. The C front folds its own runs (ava_front.c, `fold_repeat`); the guest's
 * remote channels fold runs the session posts with one args object (ava-guestd posting a front's repeat), and the
 * worker expands them back into calls of their own that still share that args object (which lets a burst reuse the
 * first call's prepared arguments).
 */
import type { CallFrame } from './frames.js';

/** True when `next` is `first` made again `n` calls later: same function, same args object, nothing to give back. */
function repeats(first: CallFrame, next: CallFrame, n: number): boolean {
  return next.args === first.args && next.fn === first.fn && next.seq === first.seq + n && next.async === true &&
    next.repeat === undefined && next.deliver === undefined && (next.retId ?? null) === null;
}

/**
 * The frames with each run of repeated posted calls (one args object, consecutive seqs) as one frame with `repeat`
 * (at most `maxRepeat` each); the same array when there is none.
 */
export function foldRepeats(frames: readonly CallFrame[], maxRepeat: number): readonly CallFrame[] {
  let out: CallFrame[] | undefined;
  for (let i = 0; i < frames.length;) {
    const first = frames[i]!;
    let n = 0;
    if (first.async === true && first.repeat === undefined && first.deliver === undefined && (first.retId ?? null) === null) {
      while (n < maxRepeat && i + n + 1 < frames.length && repeats(first, frames[i + n + 1]!, n + 1)) n++;
    }
    if (n > 0 && !out) out = frames.slice(0, i);
    if (out) out.push(n > 0 ? { seq: first.seq, fn: first.fn, args: first.args, retId: null, async: true, repeat: n } : first);
    i += n + 1;
  }
  return out ?? frames;
}

/** The frames with each `repeat` expanded into calls of their own (seqs `seq + 1` on, one args object); the same array when there is none. */
export function expandRepeats(frames: readonly CallFrame[]): readonly CallFrame[] {
  if (!frames.some((f) => f.repeat !== undefined)) return frames;
  const out: CallFrame[] = [];
  for (const f of frames) {
    if (f.repeat === undefined) { out.push(f); continue; }
    for (let n = 0; n <= f.repeat; n++) out.push({ seq: f.seq + n, fn: f.fn, args: f.args, retId: null, async: true });
  }
  return out;
}
