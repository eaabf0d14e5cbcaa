/**
 * The API server: loads a spec's library once and serves any number of isolated sessions.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AvaError, BadCallError, ClosedError } from '../errors.js';
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
  /** One-time tokens of state intakes (see {@link issueIntake}), to the session they write into. */
  readonly #intakes = new Map<string, WorkerSession>();
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

  /**
   * Issues a one-time token with which another worker may stream explicit state into `session` (a migration's
   * target: see `state-stream.ts`). It expires after `ttlMs` or when used.
   */
  issueIntake(session: WorkerSession, ttlMs = 60_000): string {
    const token = randomBytes(18).toString('base64url');
    this.#intakes.set(token, session);
    setTimeout(() => this.#intakes.delete(token), ttlMs).unref();
    return token;
  }

  /**
   * The session an intake token writes into; the token is used up.
   * @throws {AvaError} `ERR_AVA_AUTH` for a token this worker did not issue, that expired or was used, or whose
   *   session closed.
   */
  takeIntake(token: string): WorkerSession {
    const session = this.#intakes.get(token);
    this.#intakes.delete(token);
    if (!session || this.#sessions.get(session.id) !== session) throw new AvaError('ERR_AVA_AUTH', 'unknown, expired or used state intake token');
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
