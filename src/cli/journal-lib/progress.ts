/**
 * A progress bar for long journal work, on a terminal only: `[#####.....] 45% 12000/26000 records`, redrawn in
 * place with `\r` and cleared when done. Below `threshold` items, or when the stream is not a TTY (a pipe, a file, a
 * test), it prints nothing at all.
 */

/** Where the bar is drawn: a TTY write stream (process.stderr), or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** What is counted. @defaultValue 'records' */
  readonly unit?: string;
  /** Smallest total that shows a bar. @defaultValue 10000 */
  readonly threshold?: number;
  /** @defaultValue 20 */
  readonly width?: number;
}

/** See the module comment. */
export class Progress {
  readonly total: number;
  readonly enabled: boolean;
  readonly #stream: ProgressStream;
  readonly #unit: string;
  readonly #width: number;
  #done = 0;
  #drawnPercent = -1;
  #drawn = false;

  constructor(total: number, stream: ProgressStream = process.stderr, options: ProgressOptions = {}) {
    this.total = Math.max(0, total);
    this.#stream = stream;
    this.#unit = options.unit ?? 'records';
    this.#width = options.width ?? 20;
    this.enabled = stream.isTTY === true && this.total > (options.threshold ?? 10_000);
  }

  /** Whether a bar would be drawn for `total` items on `stream` (to skip counting work when it would not). */
  static wanted(stream: ProgressStream = process.stderr): boolean {
    return stream.isTTY === true;
  }

  /** The bar's text for `done` items (without the `\r`). */
  render(done: number): string {
    const ratio = this.total === 0 ? 1 : Math.min(1, done / this.total);
    const filled = Math.round(ratio * this.#width);
    return `[${'#'.repeat(filled)}${'.'.repeat(this.#width - filled)}] ${Math.floor(ratio * 100)}% ${Math.min(done, this.total)}/${this.total} ${this.#unit}`;
  }

  /** Counts `n` more items done; redraws when the percentage moved. */
  tick(n = 1): void {
    this.#done += n;
    if (!this.enabled) return;
    const percent = Math.floor((Math.min(this.#done, this.total) / this.total) * 100);
    if (percent === this.#drawnPercent) return;
    this.#drawnPercent = percent;
    this.#drawn = true;
    this.#stream.write(`\r${this.render(this.#done)}`);
  }

  /** Clears the bar. */
  done(): void {
    if (this.#drawn) this.#stream.write(`\r${' '.repeat(this.render(this.total).length)}\r`);
    this.#drawn = false;
  }
}
