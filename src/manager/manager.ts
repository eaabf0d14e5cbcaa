/**
 * The manager daemon: guests ask it for a worker of a spec (one `assign` frame on a fresh connection) and it answers
 * with where that worker listens and the token it wants (one `assigned` frame), or a coded `error` frame. See
 * {@link Manager}. The guest's side is `client.ts` (`requestWorker`).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Subject alone, from the path rxjs exports for it: `import from 'rxjs'` loads every operator, ~60 ms of every
// process start here (ava-guestd, workers, CLIs), against ~15 ms; the class is the one 'rxjs' re-exports.
import { Subject } from 'rxjs/internal/Subject';
import type { Observable } from 'rxjs';
import { loadSpec, SPEC_NAMES } from '../apis/registry.js';
import type { Address } from '../config.js';
import { formatAddress } from '../config.js';
import { AvaError, ClosedError, ConfigError, toWireError } from '../errors.js';
import type { WireError } from '../errors.js';
import type { ApiSpec } from '../spec/types.js';
import { SocketLink } from '../transport/link.js';
import { WireFormatError } from '../wire/codec.js';
import type { WireLimits } from '../wire/codec.js';
import type { AssignFrame, AssignedFrame, Frame } from '../wire/frames.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import { spawnWorkerProcess } from '../worker/spawn.js';
import type { WorkerProcess } from '../worker/spawn.js';

/** A pre-started pool: `size` workers of each spec in `specs`. */
export interface PoolOptions {
  readonly size: number;
  readonly specs: readonly string[];
}

/** Options of {@link Manager.start}. */
export interface ManagerOptions {
  /** Where guests reach the manager (a tcp port 0 becomes a real port: read {@link Manager.address}). */
  readonly address: Address;
  /**
   * Shared secret an `assign` frame must carry (compared in constant time). Without one, anybody who reaches the
   * manager gets worker addresses and tokens: give one whenever the manager listens beyond the loopback interface.
   */
  readonly token?: string;
  /** Keep a pool of started workers (`AVA_WPOOL`); without it, workers start on first request (see {@link Manager}). */
  readonly pool?: PoolOptions;
  /**
   * Without a pool: the specs this manager serves. @defaultValue every shipped spec (src/apis/registry.ts)
   * With a pool, the pool's specs are the ones served.
   */
  readonly specs?: readonly string[];
  /** Extra environment for worker processes. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long a stopping worker gets between SIGTERM and SIGKILL. @defaultValue 3000 ms */
  readonly stopGraceMs?: number;
  /** How long a worker may take to listen. @defaultValue 30000 ms */
  readonly workerStartTimeoutMs?: number;
  /** A connection that sends no frame within this time is answered with an error and closed. @defaultValue 10000 ms */
  readonly requestTimeoutMs?: number;
  /** First delay before a failed pool replacement is tried again (doubling up to 30 s). @defaultValue 1000 ms */
  readonly retryDelayMs?: number;
  /** Where human-readable lines go (worker starts, deaths, replacements). @defaultValue `ava-manager: <line>` on stderr */
  readonly log?: (line: string) => void;
}

/** A worker the manager runs, as {@link Manager.workers} shows it. */
export interface ManagedWorkerInfo {
  /** The manager's name for it (`<spec>-<n>`), sent in `assigned` frames. */
  readonly id: string;
  readonly spec: string;
  readonly pid: number;
  /** Where it listens, formatted like `AVA_WORKER_ADDR`. */
  readonly address: string;
  /** A pool worker (replaced when it dies) or an on-demand one. */
  readonly pool: boolean;
  /** Sessions assigned to it so far (workers do not report sessions that ended). */
  readonly sessions: number;
}

/** What happens in a manager, for tests, metrics and logs. */
export type ManagerEvent =
  | { readonly type: 'worker-started'; readonly worker: ManagedWorkerInfo }
  | { readonly type: 'worker-exited'; readonly worker: ManagedWorkerInfo; readonly exit: number | string; readonly expected: boolean }
  | { readonly type: 'worker-replaced'; readonly old: ManagedWorkerInfo; readonly worker: ManagedWorkerInfo }
  | { readonly type: 'worker-start-failed'; readonly spec: string; readonly error: WireError }
  | { readonly type: 'assigned'; readonly worker: ManagedWorkerInfo; readonly session: string }
  | { readonly type: 'refused'; readonly error: WireError };

interface ManagedWorker {
  readonly id: string;
  readonly spec: string;
  readonly pool: boolean;
  readonly process: WorkerProcess;
  sessions: number;
  alive: boolean;
}

/** One place of a pool: the worker in it, or the start of its (next) worker. */
interface Slot {
  worker: ManagedWorker | undefined;
  starting: Promise<ManagedWorker> | undefined;
}

/** Assign frames are tiny: a peer may not make the manager buffer more than this. */
const MANAGER_LIMITS: Partial<WireLimits> = { maxFrameBytes: 64 * 1024, maxDepth: 4, maxElements: 64, maxArgs: 0, maxBatchCalls: 1 };

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Compares secrets in constant time (hashing first, so lengths do not leak either). */
function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** True when something accepts connections on the unix socket at `path`. */
function listened(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => { socket.destroy(); resolve(false); }, 1000);
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve(true); });
    socket.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

const info = (w: ManagedWorker): ManagedWorkerInfo => ({
  id: w.id, spec: w.spec, pid: w.process.pid, address: formatAddress(w.process.address), pool: w.pool, sessions: w.sessions,
});

/**
 * The manager: listens on tcp or a unix socket and places guest sessions on worker processes (`ava-worker`) it
 * starts and watches. A worker serves many sessions.
 *
 * Placement:
 * - **With a pool** (`AVA_WPOOL=TRUE` for the CLI): `pool.size` workers of each pool spec are started by
 *   {@link Manager.start}; a request gets the live pool worker with the fewest sessions assigned so far (ties: the
 *   first). A pool worker that exits unexpectedly (a crash, `kill -9`) is noticed through its process's `exit` and
 *   replaced by a fresh one (logged, counted in {@link Manager.replacements}, and a `worker-replaced`
 *   {@link ManagerEvent}); a replacement that fails to start is tried again with a growing delay. Specs outside the
 *   pool are refused (`ERR_AVA_CONFIG`).
 * - **Without a pool**: the first request for a spec starts one worker of that spec, and every later request for it
 *   reuses that worker (requests that arrive while it starts wait for the same start). If it dies, it is not
 *   replaced at once: the next request starts a new one.
 *
 * Workers of a tcp manager listen on tcp ports of the manager's host; those of a unix-socket manager on unix sockets
 * in a private temporary folder. Each worker gets its own random token, handed out in `assigned` frames.
 *
 * Every connection carries one request: a bad frame, a frame of another kind, silence past `requestTimeoutMs`, a
 * wrong protocol version (`ERR_AVA_PROTOCOL_VERSION`), token (`ERR_AVA_AUTH`), spec name (`ERR_AVA_CONFIG`) or spec
 * hash (`ERR_AVA_SPEC_MISMATCH`) gets a coded `error` frame and a closed connection; the manager goes on serving.
 *
 * {@link Manager.close} stops listening and stops every worker (SIGTERM, then SIGKILL after `stopGraceMs`).
 * @example
 * await using manager = await Manager.start({ address: parseAddress('127.0.0.1:3333'), pool: { size: 2, specs: ['toyacc'] } });
 * // guests: AVA_MANAGER_ADDR=127.0.0.1:3333 AVA_CHANNEL=TCP
 */
export class Manager implements AsyncDisposable {
  #address: Address;
  readonly #options: ManagerOptions;
  readonly #log: (line: string) => void;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #events = new Subject<ManagerEvent>();
  /** Specs served, by name; undefined: any shipped spec (on-demand mode without a list). */
  readonly #served: ReadonlySet<string> | undefined;
  readonly #specs = new Map<string, ApiSpec>();
  readonly #pools = new Map<string, Slot[]>();
  readonly #onDemand = new Map<string, Slot>();
  readonly #workers = new Set<ManagedWorker>();
  readonly #starting = new Set<Promise<unknown>>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #socketDir: string | undefined;
  #seq = 0;
  #replacements = 0;
  #closing = false;
  #closed: Promise<void> | undefined;

  private constructor(options: ManagerOptions, served: ReadonlySet<string> | undefined) {
    this.#options = options;
    this.#address = options.address;
    this.#served = served;
    this.#log = options.log ?? ((line) => { process.stderr.write(`ava-manager: ${line}\n`); });
    this.#server = createServer((socket) => this.#accept(socket));
    this.#socketDir = options.address.kind === 'unix' ? mkdtempSync(join(tmpdir(), 'ava-manager-')) : undefined;
  }

  /**
   * Checks the options, listens, and starts the pool (resolving once every pool worker listens).
   * @throws {ConfigError} for a bad pool size or an unknown spec; `ERR_AVA_WORKER_START` when a pool worker does
   * not start (the manager is closed again); the listen error (e.g. `EADDRINUSE`).
   */
  static async start(options: ManagerOptions): Promise<Manager> {
    const pool = options.pool && options.pool.size !== 0 ? options.pool : undefined;
    if (pool && (!Number.isSafeInteger(pool.size) || pool.size < 1 || pool.size > 256)) {
      throw new ConfigError(`pool size must be an integer from 0 to 256, not ${options.pool!.size}`);
    }
    if (pool && pool.specs.length === 0) throw new ConfigError('a pool needs at least one spec');
    if (options.token !== undefined && options.token.length < 8) throw new ConfigError('a manager token must have at least 8 characters');
    const names = pool ? pool.specs : options.specs;
    const unknown = names?.filter((name) => !SPEC_NAMES.includes(name));
    if (unknown?.length) throw new ConfigError(`unknown spec "${unknown[0]}"; shipped specs: ${SPEC_NAMES.join(', ')}`);
    const specs = names ? await Promise.all([...new Set(names)].map((name) => loadSpec(name))) : [];
    const manager = new Manager(options, names ? new Set(specs.map((s) => s.name)) : undefined);
    for (const spec of specs) manager.#specs.set(spec.name, spec);
    try {
      await manager.#listen();
      if (pool) {
        const starts: Promise<ManagedWorker>[] = [];
        for (const spec of specs) {
          const slots: Slot[] = Array.from({ length: pool.size }, () => ({ worker: undefined, starting: undefined }));
          manager.#pools.set(spec.name, slots);
          for (const slot of slots) starts.push(manager.#fillSlot(spec.name, slot, undefined, false));
        }
        await Promise.all(starts);
      }
    } catch (error) {
      await manager.close();
      throw error;
    }
    return manager;
  }

  /** The bound address (a tcp port 0 becomes the real port). */
  get address(): Address {
    return this.#address;
  }

  /** The workers running now. */
  get workers(): readonly ManagedWorkerInfo[] {
    return [...this.#workers].filter((w) => w.alive).map(info);
  }

  /** How many pool workers were replaced after they died. */
  get replacements(): number {
    return this.#replacements;
  }

  /** Worker starts, exits, replacements, assignments and refusals, as they happen; completes on close. */
  get events(): Observable<ManagerEvent> {
    return this.#events.asObservable();
  }

  /** Stops listening, closes open requests, stops every worker. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#closeNow();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------------------------------------ listening

  async #listen(): Promise<void> {
    const { address } = this.#options;
    if (address.kind === 'unix' && existsSync(address.path)) {
      // A socket file somebody still listens on is theirs; a stale one (a manager killed with -9) is removed.
      if (await listened(address.path)) throw new ConfigError(`another process listens on ${address.path}`);
      unlinkSync(address.path);
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const done = (): void => { this.#server.off('error', reject); resolve(); };
      if (address.kind === 'unix') this.#server.listen(address.path, done);
      else this.#server.listen(address.port, address.host, done);
    });
    this.#server.on('error', (error) => this.#log(`listener error: ${error.message}`));
    if (address.kind === 'unix') chmodSync(address.path, 0o600);
    const bound = this.#server.address();
    if (address.kind === 'tcp' && bound && typeof bound === 'object') this.#address = { kind: 'tcp', host: address.host, port: bound.port };
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    const link = new SocketLink(socket, MANAGER_LIMITS);
    let answered = false;
    const refuse = (error: unknown): void => {
      const wire = toWireError(error);
      this.#events.next({ type: 'refused', error: wire });
      link.send({ t: 'error', error: wire });
      link.close();
    };
    const timeoutMs = this.#options.requestTimeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      answered = true;
      refuse(new AvaError('ERR_AVA_HANDSHAKE', `no assign frame within ${timeoutMs} ms`));
    }, timeoutMs);
    link.onClose((error) => {
      clearTimeout(timer);
      // A bad frame (undecodable, too large, wrong version): the link already answered it with an error frame.
      if (error && !answered && AvaError.isAvaError(error)) this.#events.next({ type: 'refused', error: toWireError(error) });
    });
    link.onFrame((frame: Frame) => {
      if (answered) return; // one request per connection
      answered = true;
      clearTimeout(timer);
      if (frame.t !== 'assign') {
        refuse(new AvaError('ERR_AVA_HANDSHAKE', `a manager answers assign frames, not ${frame.t} frames`));
        return;
      }
      this.#assign(frame, socket).then(
        (assigned) => { link.send(assigned); link.close(); },
        refuse,
      );
    });
  }

  // ------------------------------------------------------------------------------------------------ requests

  async #assign(frame: AssignFrame, socket: Socket): Promise<AssignedFrame> {
    if (this.#closing) throw new ClosedError('manager');
    if (frame.v !== PROTOCOL_VERSION) {
      throw new WireFormatError('ERR_AVA_PROTOCOL_VERSION', `protocol version ${frame.v} is not supported (this side speaks ${PROTOCOL_VERSION})`);
    }
    const expected = this.#options.token;
    if (expected !== undefined && (typeof frame.token !== 'string' || !tokensEqual(frame.token, expected))) {
      throw new AvaError('ERR_AVA_AUTH', 'this manager needs a valid token (AVA_TOKEN)');
    }
    const spec = await this.#spec(frame.spec);
    if (frame.hash !== spec.hash) {
      throw new AvaError('ERR_AVA_SPEC_MISMATCH', `the manager serves ${spec.name} ${spec.hash.slice(0, 12)}, the guest speaks ${spec.name} ${String(frame.hash).slice(0, 12)}`, {
        details: { spec: spec.name },
      });
    }
    const worker = await this.#place(spec.name);
    worker.sessions++;
    this.#events.next({ type: 'assigned', worker: info(worker), session: frame.session });
    return {
      t: 'assigned', address: formatAddress(this.#advertised(worker.process.address, socket)), worker: worker.id,
      ...(worker.process.token ? { token: worker.process.token } : {}),
    };
  }

  async #spec(name: string): Promise<ApiSpec> {
    const known = this.#specs.get(name);
    if (known) return known;
    if (this.#served) {
      throw new ConfigError(`this manager serves ${[...this.#served].join(', ')}, not "${String(name).slice(0, 64)}"`, { details: { spec: String(name).slice(0, 64) } });
    }
    if (!SPEC_NAMES.includes(name)) throw new ConfigError(`unknown spec "${String(name).slice(0, 64)}"; shipped specs: ${SPEC_NAMES.join(', ')}`);
    const spec = await loadSpec(name);
    this.#specs.set(name, spec);
    return spec;
  }

  /** A worker on a wildcard host is reached at the address the guest reached the manager on. */
  #advertised(address: Address, socket: Socket): Address {
    if (address.kind !== 'tcp' || !WILDCARD_HOSTS.has(address.host) || !socket.localAddress) return address;
    return { kind: 'tcp', host: socket.localAddress.replace(/^::ffff:/, ''), port: address.port };
  }

  async #place(spec: string): Promise<ManagedWorker> {
    const slots = this.#pools.get(spec);
    if (slots) {
      let best: ManagedWorker | undefined;
      for (const slot of slots) {
        const w = slot.worker;
        if (w && w.alive && (!best || w.sessions < best.sessions)) best = w;
      }
      if (best) return best;
      const pending = slots.flatMap((s) => (s.starting ? [s.starting] : []));
      if (pending.length > 0) {
        try {
          return await Promise.any(pending);
        } catch {
          throw new AvaError('ERR_AVA_WORKER_START', `no ${spec} worker could be started`);
        }
      }
      return this.#fillSlot(spec, slots[0]!, undefined, false);
    }
    let slot = this.#onDemand.get(spec);
    if (!slot) this.#onDemand.set(spec, (slot = { worker: undefined, starting: undefined }));
    if (slot.worker?.alive) return slot.worker;
    return slot.starting ?? this.#fillSlot(spec, slot, undefined, false);
  }

  // ------------------------------------------------------------------------------------------------ workers

  /** Starts a worker into `slot`; `replaces` names the dead worker it replaces; `retry` keeps trying on failure. */
  #fillSlot(spec: string, slot: Slot, replaces: ManagedWorker | undefined, retry: boolean, delayMs = this.#options.retryDelayMs ?? 1000): Promise<ManagedWorker> {
    const pool = this.#pools.has(spec);
    const starting = this.#startWorker(spec, pool).then(
      (worker) => {
        slot.worker = worker;
        slot.starting = undefined;
        if (replaces) {
          this.#replacements++;
          this.#log(`worker ${replaces.id} (pid ${replaces.process.pid}) replaced by ${worker.id} (pid ${worker.process.pid})`);
          this.#events.next({ type: 'worker-replaced', old: info(replaces), worker: info(worker) });
        }
        return worker;
      },
      (error: unknown) => {
        slot.starting = undefined;
        if (!this.#closing) {
          const wire = toWireError(error);
          this.#log(`a ${spec} worker did not start: ${wire.code}: ${wire.message}`);
          this.#events.next({ type: 'worker-start-failed', spec, error: wire });
          if (retry) {
            this.#log(`trying again in ${delayMs} ms`);
            const timer = setTimeout(() => {
              this.#retryTimers.delete(timer);
              if (!this.#closing && !slot.starting && !slot.worker?.alive) {
                void this.#fillSlot(spec, slot, replaces, true, Math.min(delayMs * 2, 30_000)).catch(() => undefined);
              }
            }, delayMs);
            this.#retryTimers.add(timer);
          }
        }
        throw error;
      },
    );
    slot.starting = starting;
    return starting;
  }

  /** Starts a worker process; {@link close} waits for starts in flight (and stops what they started). */
  #startWorker(spec: string, pool: boolean): Promise<ManagedWorker> {
    if (this.#closing) return Promise.reject(new ClosedError('manager'));
    const starting = this.#startWorkerNow(spec, pool);
    this.#starting.add(starting);
    void starting.then(() => this.#starting.delete(starting), () => this.#starting.delete(starting));
    return starting;
  }

  async #startWorkerNow(spec: string, pool: boolean): Promise<ManagedWorker> {
    const id = `${spec}-${++this.#seq}`;
    const token = randomBytes(18).toString('base64url');
    const proc = await spawnWorkerProcess({
      spec, listen: this.#workerListenAddress(id), token,
      ...(this.#options.env ? { env: this.#options.env } : {}),
      ...(this.#options.workerStartTimeoutMs !== undefined ? { startTimeoutMs: this.#options.workerStartTimeoutMs } : {}),
    });
    const worker: ManagedWorker = { id, spec, pool, process: proc, sessions: 0, alive: true };
    this.#workers.add(worker);
    void proc.exited.then((exit) => this.#exited(worker, exit));
    if (this.#closing) {
      await proc.stop(this.#options.stopGraceMs ?? 3000);
      throw new ClosedError('manager');
    }
    this.#log(`worker ${id} started: pid ${proc.pid} at ${formatAddress(proc.address)}${pool ? ' (pool)' : ''}`);
    this.#events.next({ type: 'worker-started', worker: info(worker) });
    return worker;
  }

  #workerListenAddress(id: string): Address {
    const { address } = this.#options;
    if (address.kind === 'unix') return { kind: 'unix', path: join(this.#socketDir!, `${id}.sock`) };
    return { kind: 'tcp', host: address.host, port: 0 };
  }

  #exited(worker: ManagedWorker, exit: number | string): void {
    worker.alive = false;
    this.#workers.delete(worker);
    const expected = this.#closing;
    this.#events.next({ type: 'worker-exited', worker: info(worker), exit, expected });
    if (expected) return;
    const slots = this.#pools.get(worker.spec);
    const slot = slots?.find((s) => s.worker === worker);
    if (slot) {
      this.#log(`pool worker ${worker.id} (pid ${worker.process.pid}) exited unexpectedly (${exit}); starting a replacement`);
      slot.worker = undefined;
      if (!slot.starting) void this.#fillSlot(worker.spec, slot, worker, true).catch(() => undefined);
      return;
    }
    const onDemand = this.#onDemand.get(worker.spec);
    if (onDemand?.worker === worker) onDemand.worker = undefined;
    this.#log(`worker ${worker.id} (pid ${worker.process.pid}) exited unexpectedly (${exit}); the next request starts a new one`);
  }

  async #closeNow(): Promise<void> {
    this.#closing = true;
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
    for (const socket of this.#sockets) socket.destroy();
    // Starts in flight end on their own (a worker that listens after close is stopped at once).
    await Promise.allSettled([...this.#starting]);
    const grace = this.#options.stopGraceMs ?? 3000;
    await Promise.all([...this.#workers].map(async (w) => {
      await w.process.stop(grace);
      await w.process.exited;
    }));
    await serverClosed; // (removes a unix socket file)
    if (this.#socketDir) rmSync(this.#socketDir, { recursive: true, force: true });
    this.#log('stopped');
    this.#events.complete();
  }
}
