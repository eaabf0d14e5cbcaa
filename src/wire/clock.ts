/**
 * The clock of stage timestamps: milliseconds since the epoch with sub-millisecond resolution, comparable between
 * processes of one host (both sides of a reply's timings use it).
 */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}
