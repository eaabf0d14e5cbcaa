/**
 * The API server: loads a spec's library once and serves any number of isolated sessions.
 */
import { randomUUID } from 'node:crypto';
import { BadCallError, ClosedError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import { NativeLibrary } from './native-library.js';
import { WorkerSession } from './session.js';

/** Options of {@link Worker.open}. */
export interface WorkerOptions {
  /** The API the worker serves. */
  readonly spec: ApiSpec;
}

/**
 * A worker: one native library, many sessions.
 * @example
 * await using worker = await Worker.open({ spec: toyaccSpec });
 * const session = worker.openSession();
 */
export class Worker implements AsyncDisposable {
  readonly spec: ApiSpec;
  readonly library: NativeLibrary;
  /** This worker's id (process id and a random suffix), reported in welcome frames. */
  readonly id = `${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly #sessions = new Map<string, WorkerSession>();
  #closed = false;

  private constructor(spec: ApiSpec, library: NativeLibrary) {
    this.spec = spec;
    this.library = library;
  }

  /** Loads the spec's native library (building fixtures on first use). */
  static async open(options: WorkerOptions): Promise<Worker> {
    return new Worker(options.spec, await NativeLibrary.open(options.spec));
  }

  /**
   * Opens a session with its own handle table.
   * @throws {BadCallError} when `id` is already in use.
   */
  openSession(id: string = randomUUID()): WorkerSession {
    if (this.#closed) throw new ClosedError('worker');
    if (this.#sessions.has(id)) throw new BadCallError(`session ${id} already exists on this worker`);
    const session = new WorkerSession(id, this.spec, this.library, () => this.#sessions.delete(id));
    this.#sessions.set(id, session);
    return session;
  }

  /** Sessions currently open. */
  get sessions(): readonly WorkerSession[] {
    return [...this.#sessions.values()];
  }

  /** Closes every session (releasing what their guests left alive). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#sessions.values()].map((s) => s.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
