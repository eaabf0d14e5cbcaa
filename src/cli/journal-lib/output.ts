/**
 * Line output for the journal tools, to stdout or a file, written in chunks and respecting back-pressure, so that
 * exporting a large journal neither holds it all in memory nor outruns a slow pipe.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

/** See the module comment. */
export class LineWriter {
  readonly #stream: Writable;
  readonly #owned: boolean;
  #pending: string[] = [];
  #size = 0;

  private constructor(stream: Writable, owned: boolean) {
    this.#stream = stream;
    this.#owned = owned;
  }

  /** Writes to `path`, or to stdout when absent. */
  static open(path?: string): LineWriter {
    return path === undefined ? new LineWriter(process.stdout, false) : new LineWriter(createWriteStream(path), true);
  }

  /** Queues one line (a newline is added). */
  async line(text: string): Promise<void> {
    this.#pending.push(text);
    this.#size += text.length;
    if (this.#size >= 64 * 1024) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const chunk = `${this.#pending.join('\n')}\n`;
    this.#pending = [];
    this.#size = 0;
    if (!this.#stream.write(chunk)) await new Promise<void>((resolve) => this.#stream.once('drain', resolve));
  }

  /** Writes what is queued; closes the file when it owns one. */
  async end(): Promise<void> {
    await this.#flush();
    if (this.#owned) {
      await new Promise<void>((resolve, reject) => {
        this.#stream.once('error', reject);
        this.#stream.end(resolve);
      });
    }
  }
}
