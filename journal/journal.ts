/**
 * The journal store: sessions' records, object graphs and checkpoints in LevelDB (`level`; any abstract-level store
 * works, e.g. memory-level for tests), values in CBOR with a checksum (see `format.ts`).
 *
 * Writes are gathered in batches off the call's path. Durability is a choice: `none` (written whenever the batch
 * fills or the event loop turns), `batch` (default: written before the next call that waits for a result returns),
 * `sync` (as `batch`, with an fsync per batch). LevelDB applies a batch atomically, so a journal reopened after
 * kill -9 is a consistent prefix of what was written; a damaged entry is reported with its key
 * (`ERR_AVA_JOURNAL_CORRUPT`), never skipped silently.
 */
import { Level } from 'level';
import type { AbstractLevel } from 'abstract-level';
import { AvaError } from '../src/errors.js';
import { planOf } from '../src/spec/plan.js';
import type { ApiSpec, FunctionSpec } from '../src/spec/types.js';
import type { CallTimings, JournalRecord, Stage, StoredObject } from './format.js';
import { FORMAT_VERSION, JournalCorruptError, chunkOfKey, decodeRecord, decodeTimings, decodeValue, encodeRecord, encodeTimings, encodeValue, keys, text } from './format.js';
import { ObjectGraph, createdHandles } from './graph.js';

/** How hard the journal holds on to what it was given. */
export type Durability = 'none' | 'batch' | 'sync';

/** The journal's store: bytes in, bytes out. */
export type JournalDb = AbstractLevel<Uint8Array, Uint8Array, Uint8Array>;

/** Options of {@link Journal.open}. */
export interface JournalOptions {
  /** The spec the journal records; a journal of another spec (name or hash) is refused. */
  readonly spec: ApiSpec;
  /** Folder of the LevelDB store (ignored when `db` is given). */
  readonly path?: string;
  /** An abstract-level store with view keys and values (e.g. `new MemoryLevel({ keyEncoding: 'view', valueEncoding: 'view' })`). */
  readonly db?: JournalDb;
  /** @defaultValue 'batch' */
  readonly durability?: Durability;
  /** Refuse to create a new journal (offline tools). */
  readonly mustExist?: boolean;
}

/** What `meta` holds. */
export interface JournalMeta {
  readonly format: number;
  readonly spec: string;
  readonly hash: string;
  readonly codec: 'cbor';
  readonly created: number;
}

/** A session of the journal. */
export interface SessionInfo {
  readonly id: string;
  readonly n: number;
  readonly started: number;
}

/** A journal of another spec or format (`ERR_AVA_JOURNAL_SPEC`, `ERR_AVA_JOURNAL_FORMAT`), locked (`ERR_AVA_JOURNAL_LOCKED`) or missing. */
export class JournalError extends AvaError {}

/** See the module comment. */
export class Journal implements AsyncDisposable {
  readonly spec: ApiSpec;
  readonly db: JournalDb;
  readonly durability: Durability;
  readonly meta: JournalMeta;
  readonly #sessions = new Map<string, SessionJournal>();

  private constructor(spec: ApiSpec, db: JournalDb, durability: Durability, meta: JournalMeta) {
    this.spec = spec;
    this.db = db;
    this.durability = durability;
    this.meta = meta;
  }

  /**
   * Opens (or creates) a journal.
   * @throws {JournalError} `ERR_AVA_JOURNAL_SPEC` for another spec, `ERR_AVA_JOURNAL_FORMAT` for an unknown format,
   * `ERR_AVA_JOURNAL_LOCKED` when another process holds the store, `ERR_AVA_JOURNAL_MISSING` with `mustExist`.
   */
  static async open(options: JournalOptions): Promise<Journal> {
    const db: JournalDb = options.db ?? (new Level<Uint8Array, Uint8Array>(options.path ?? '.ava/journal', {
      keyEncoding: 'view', valueEncoding: 'view', createIfMissing: !options.mustExist,
    }) as unknown as JournalDb);
    try {
      await db.open();
    } catch (error) {
      const code = (error as { code?: string; cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
      if (code === 'LEVEL_LOCKED') throw new JournalError('ERR_AVA_JOURNAL_LOCKED', `the journal ${options.path} is open in another process; give each process its own AVA_JOURNAL, or copy it to read it`, { cause: error });
      if (options.mustExist) throw new JournalError('ERR_AVA_JOURNAL_MISSING', `no journal at ${options.path}`, { cause: error });
      throw new JournalError('ERR_AVA_JOURNAL_OPEN', `cannot open the journal ${options.path}: ${(error as Error).message}`, { cause: error });
    }
    const spec = options.spec;
    let meta: JournalMeta;
    const stored = await db.get(keys.meta);
    if (stored === undefined) {
      if (options.mustExist) {
        await db.close();
        throw new JournalError('ERR_AVA_JOURNAL_MISSING', `no journal at ${options.path}`);
      }
      meta = { format: FORMAT_VERSION, spec: spec.name, hash: spec.hash, codec: 'cbor', created: Date.now() };
      await db.put(keys.meta, encodeValue(meta), { sync: true } as never);
    } else {
      try {
        meta = decodeValue(keys.meta, stored) as JournalMeta;
      } catch (error) {
        await db.close();
        throw error;
      }
      if (meta.format !== FORMAT_VERSION) {
        await db.close();
        throw new JournalError('ERR_AVA_JOURNAL_FORMAT', `journal format ${meta.format} is not supported (this version reads ${FORMAT_VERSION})`);
      }
      if (meta.spec !== spec.name || meta.hash !== spec.hash) {
        await db.close();
        // Typically the default journal folder of an earlier version (or of another API): say how to move on.
        throw new JournalError('ERR_AVA_JOURNAL_SPEC',
          `the journal${options.path ? ` ${options.path}` : ''} records ${meta.spec} ${meta.hash.slice(0, 12)}, not ${spec.name} ${spec.hash.slice(0, 12)}: ` +
          'give this session another folder (AVA_JOURNAL or --journal), or remove that one once nothing in it is needed',
          { details: { recorded: meta.spec, hash: meta.hash, path: options.path ?? null } });
      }
    }
    return new Journal(spec, db, options.durability ?? 'batch', meta);
  }

  /** The sessions recorded, in order of their numbers. */
  async sessions(): Promise<SessionInfo[]> {
    const out: SessionInfo[] = [];
    for await (const [key, value] of this.db.iterator({ gte: keys.sessionNamePrefix, lt: new Uint8Array([0x6e, 0x22]) })) {
      const id = text(key.subarray(2));
      const n = decodeValue(key, value) as number;
      const infoBytes = await this.db.get(keys.info(n));
      const info = infoBytes ? (decodeValue(keys.info(n), infoBytes) as { started: number }) : { started: 0 };
      out.push({ id, n, started: info.started });
    }
    return out.sort((a, b) => a.n - b.n);
  }

  /**
   * The journal of one session, created on first use; an existing session is loaded (its graph rebuilt from its
   * records, which are verified on the way).
   */
  session(id: string): Promise<SessionJournal> {
    // Serialized: two sessions opened at once must not take the same number.
    const next = this.#opening.then(() => this.#session(id));
    this.#opening = next.then(() => undefined, () => undefined);
    return next;
  }

  #opening: Promise<void> = Promise.resolve();

  async #session(id: string): Promise<SessionJournal> {
    const open = this.#sessions.get(id);
    if (open) return open;
    const nameKey = keys.sessionName(id);
    const existing = await this.db.get(nameKey);
    let n: number;
    if (existing !== undefined) n = decodeValue(nameKey, existing) as number;
    else {
      n = (await this.sessions()).reduce((max, s) => Math.max(max, s.n), 0) + 1;
      await this.db.batch([
        { type: 'put', key: nameKey, value: encodeValue(n) },
        { type: 'put', key: keys.info(n), value: encodeValue({ id, started: Date.now(), hash: this.spec.hash }) },
      ]);
    }
    const session = new SessionJournal(this, id, n);
    if (existing !== undefined) await session.load();
    this.#sessions.set(id, session);
    return session;
  }

  /** Flushes every session and closes the store. */
  async close(): Promise<void> {
    for (const s of this.#sessions.values()) await s.flush();
    this.#sessions.clear();
    if (this.db.status === 'open') await this.db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Result of {@link SessionJournal.compact}. */
export interface CompactionResult {
  readonly recordsBefore: number;
  readonly recordsDeleted: number;
  readonly objectsDeleted: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

/** One session's records, graph and checkpoints. */
export class SessionJournal {
  readonly journal: Journal;
  readonly id: string;
  /** The session's short number in keys. */
  readonly n: number;
  readonly graph: ObjectGraph;
  /** Operations not written yet; null where an elided record's put was (see #lastTransient). */
  /**
   * Queued writes. A record that may yet be elided stays an object until its batch is written (`type: 'record'`):
   * one elided before then (see {@link append}) costs no encoding at all.
   */
  #ops: ({ type: 'put' | 'del'; key: Uint8Array; value?: Uint8Array } | { type: 'record'; record: JournalRecord } | null)[] = [];
  /** Bumped by every flush: tells whether an index into #ops still names the same operation. */
  #flushes = 0;
  /**
   * The last record appended, when all it did was make one transient object (an enqueue's event): if the next
   * record releases that object, the two are elided (see {@link SessionJournal.append}).
   */
  #lastTransient: { record: JournalRecord; id: number; op: number; flushes: number } | undefined;
  #writing: Promise<void> = Promise.resolve();
  #scheduled = false;
  #dirty = new Set<number>();
  #seqs = new Set<number>();
  #lastSeq = -1;

  /** @internal */
  constructor(journal: Journal, id: string, n: number) {
    this.journal = journal;
    this.id = id;
    this.n = n;
    this.graph = new ObjectGraph(journal.spec);
  }

  /** Seqs of the records present (after compaction, only the live ones). */
  get seqs(): ReadonlySet<number> {
    return this.#seqs;
  }

  /** @internal Rebuilds the graph from the stored records. */
  async load(): Promise<void> {
    for await (const record of this.records()) {
      this.graph.apply(record);
      this.#seqs.add(record.seq);
      this.#lastSeq = record.seq;
      // A transfer or launch that made no transient object is only journaled as data.
      const f = this.graph.functionOf(record);
      if ((f.record === 'transfer' || f.record === 'execute') && createdHandles(f, record).length === 0) this.dataJournaling = true;
    }
    const last = await this.lastCheckpoint();
    if (last) this.#checkpointSeq = last.seq;
  }

  /**
   * Stored records in seq order, checked as they are read.
   * @throws {JournalCorruptError} at the first damaged record, naming its key.
   */
  async *records(): AsyncIterableIterator<JournalRecord> {
    let last: Uint8Array = keys.records(this.n).gte;
    try {
      for await (const [key, value] of this.journal.db.iterator(keys.records(this.n))) {
        last = key;
        yield decodeRecord(key, value);
      }
    } catch (error) {
      // LevelDB's own checks (a damaged table or log) carry the journal's code too, with the last key read.
      const code = (error as { code?: string }).code;
      if (code === 'LEVEL_CORRUPTION' || /corrupt/i.test((error as Error).message)) {
        if ((error as { code?: string }).code === 'ERR_AVA_JOURNAL_CORRUPT') throw error;
        throw new JournalCorruptError(last, `LevelDB reports corruption after this entry: ${(error as Error).message}`);
      }
      throw error;
    }
  }

  /** Transfers and launches are journaled too (set by the recorder): failover replays them after a checkpoint. */
  dataJournaling = false;

  /**
   * Appends a record (queued; see the module comment for when it reaches the store). A release of a transient object
   * (an event) that comes right after the record that made it, with nothing else in between to name it, removes both:
   * neither is needed by anything, and a program that makes and releases an event per launch would otherwise write
   * two records per launch (and keep them in memory until compaction). Returns the seqs of the records so elided
   * (their calls are done with as far as the journal goes), or undefined.
   *
   * Only with `mayElide`, and only for consecutive calls: a replay reads the records before a cut (a migration's
   * first held call, a failover's first unanswered one), and an elided pair must never straddle one, or the release,
   * sent after the cut, would name an event the replay never made. The caller passes false while a task that may
   * cut the session is running (`GuestSession.paused`); a failover cuts at a waiting call, never between two calls
   * that follow each other.
   */
  append(record: JournalRecord, mayElide = false): readonly number[] | undefined {
    if (record.seq <= this.#lastSeq) throw new JournalError('ERR_AVA_JOURNAL_ORDER', `record ${record.seq} after ${this.#lastSeq}`);
    this.#lastSeq = record.seq;
    const f = this.graph.functionOf(record);
    const last = this.#lastTransient;
    this.#lastTransient = undefined;
    if (mayElide && last && last.record.seq + 1 === record.seq && f.record === 'release' && this.#releasesOnlyReference(f, record, last.id)) {
      this.graph.retract(last.record); // forgets the object and the record that made it
      this.#seqs.delete(last.record.seq);
      this.#dirty.delete(last.id);
      if (last.flushes === this.#flushes) this.#ops[last.op] = null;
      else {
        // Already written: delete it, as compaction would.
        this.#ops.push({ type: 'del', key: keys.record(this.n, last.record.seq) }, { type: 'del', key: keys.object(this.n, last.id) });
        this.#queued();
      }
      return [last.record.seq, record.seq];
    }
    this.graph.apply(record);
    this.#seqs.add(record.seq);
    if (f.target !== undefined) {
      const target = record.args[planOf(f).indexOf.get(f.target!)!];
      if (typeof target === 'number') this.#dirty.add(target);
    }
    const made = createdHandles(f, record);
    for (const { id } of made) this.#dirty.add(id);
    if ((f.record === 'transfer' || f.record === 'execute') && !this.dataJournaling && made.length === 1 &&
        this.journal.spec.kind.get(made[0]!.kind)?.transient === true && this.graph.nodes.get(made[0]!.id)?.created === record.seq) {
      // It may be elided with the next call (see above): encoded only if it is still there when written. Only such
      // a record waits: it names no bytes of the caller's (the recorder keeps none without data journaling), while
      // any other record is encoded now, before the caller may change memory its arguments point into.
      this.#ops.push({ type: 'record', record });
      this.#lastTransient = { record, id: made[0]!.id, op: this.#ops.length - 1, flushes: this.#flushes };
    } else {
      this.#ops.push({ type: 'put', key: keys.record(this.n, record.seq), value: encodeRecord(record) });
    }
    this.#queued();
    return undefined;
  }

  /** True when `record` (a release) drops the last reference to `id`, which nothing else names. */
  #releasesOnlyReference(f: FunctionSpec, record: JournalRecord, id: number): boolean {
    const target = record.args[planOf(f).indexOf.get(f.target!)!];
    const node = this.graph.nodes.get(id);
    return target === id && node !== undefined && node.refs === 1 && node.refRecords.length === 0 && node.configs.size === 0;
  }

  /**
   * Appends the stage timings of a call (any call, journaled or not; queued like records). Timings are history:
   * compaction keeps them.
   */
  appendTimings(seq: number, fn: number, stages: { readonly [S in Stage]?: number | null }): void {
    this.#ops.push({ type: 'put', key: keys.timing(this.n, seq), value: encodeTimings(fn, stages) });
    this.#queued();
  }

  /**
   * Stored stage timings in seq order, checked as they are read.
   * @throws {JournalCorruptError} at the first damaged entry, naming its key.
   */
  async *timings(): AsyncIterableIterator<CallTimings> {
    for await (const [key, value] of this.journal.db.iterator(keys.timings(this.n))) yield decodeTimings(key, value);
  }

  #queued(): void {
    if (this.journal.durability === 'none' && this.#ops.length >= 1024) void this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => { void this.flush(); });
    }
  }

  /** Removes a record whose call turned out to have failed (an asynchronous call reported later). */
  retract(seq: number, record?: JournalRecord): void {
    this.#lastTransient = undefined;
    if (record) {
      const f = this.graph.functionOf(record);
      // Objects it would have created never existed; the object it would have changed is back as it was.
      for (const { id } of createdHandles(f, record)) {
        this.#dirty.delete(id);
        this.#ops.push({ type: 'del', key: keys.object(this.n, id) });
      }
      this.graph.retract(record);
      if (f.target !== undefined) {
        const target = record.args[planOf(f).indexOf.get(f.target!)!];
        if (typeof target === 'number') this.#dirty.add(target);
      }
    }
    this.#seqs.delete(seq);
    this.#ops.push({ type: 'del', key: keys.record(this.n, seq) });
  }

  /** Replaces a record (an asynchronous call that failed but changed state, e.g. a failed build: its status). */
  rewrite(record: JournalRecord): void {
    this.#lastTransient = undefined;
    this.#ops.push({ type: 'put', key: keys.record(this.n, record.seq), value: encodeRecord(record) });
  }

  /** Bytes of keys and values the session holds in the store (exact, by a scan). */
  async bytes(): Promise<number> {
    await this.flush();
    let total = 0;
    for await (const [key, value] of this.journal.db.iterator(keys.session(this.n))) total += key.byteLength + value.byteLength;
    return total;
  }

  /** Writes what is queued (with an fsync under `sync` durability). Resolves when it is in the store. */
  flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#ops.length === 0) return this.#writing;
    const ops = this.#ops;
    this.#ops = [];
    this.#flushes++;
    for (const id of this.#dirty) {
      const node = this.graph.nodes.get(id);
      if (!node) continue;
      const stored: StoredObject = { id, kind: node.kind, created: node.created, refs: node.refs, deps: [...node.parents, ...[...node.configs.values()].flatMap((c) => c.deps)] };
      ops.push({ type: 'put', key: keys.object(this.n, id), value: encodeValue(stored) });
    }
    this.#dirty.clear();
    const sync = this.journal.durability === 'sync';
    this.#writing = this.#writing.then(() => {
      // A chained batch: abstract-level's array form clones and re-validates every operation.
      const batch = this.journal.db.batch();
      for (const op of ops) {
        if (op === null) continue;
        if (op.type === 'record') batch.put(keys.record(this.n, op.record.seq), encodeRecord(op.record));
        else if (op.type === 'put') batch.put(op.key, op.value!);
        else batch.del(op.key);
      }
      return batch.write({ sync } as never);
    });
    return this.#writing;
  }

  /** Stored objects of the graph. */
  async *objects(): AsyncIterableIterator<StoredObject> {
    for await (const [key, value] of this.journal.db.iterator(keys.objects(this.n))) yield decodeValue(key, value) as StoredObject;
  }

  /**
   * Deletes dead records (of objects nothing live needs) and superseded configuration, and the dead objects'
   * entries; then asks LevelDB to reclaim the space. Stage timings and checkpoints are kept.
   */
  async compact(): Promise<CompactionResult> {
    await this.flush();
    const range = keys.session(this.n);
    const bytesBefore = await this.bytes();
    const recordsBefore = this.#seqs.size;
    const live = this.graph.liveObjects();
    let dead: number[];
    if (!this.dataJournaling) dead = this.graph.deadRecords(this.#seqs);
    else if (this.#checkpointSeq < 0) dead = []; // failover replays everything from the start
    else {
      // Failover rebuilds the objects live at the newest checkpoint, then replays every record from it on: keep
      // those, judged by the graph as it was at the checkpoint, not as it is now.
      const atCheckpoint = new ObjectGraph(this.journal.spec);
      for await (const r of this.records()) {
        if (r.seq >= this.#checkpointSeq) break;
        atCheckpoint.apply(r);
      }
      const keep = new Set(atCheckpoint.liveRecords());
      dead = [...this.#seqs].filter((seq) => seq < this.#checkpointSeq && !keep.has(seq)).sort((a, b) => a - b);
    }
    const deadObjects = [...this.graph.nodes.keys()].filter((id) => !live.has(id));
    const ops = [
      ...dead.map((seq) => ({ type: 'del' as const, key: keys.record(this.n, seq) })),
      ...deadObjects.map((id) => ({ type: 'del' as const, key: keys.object(this.n, id) })),
    ];
    for (let i = 0; i < ops.length; i += 10_000) await this.journal.db.batch(ops.slice(i, i + 10_000) as never, { sync: this.journal.durability === 'sync' } as never);
    for (const seq of dead) this.#seqs.delete(seq);
    this.graph.forgetDead(live);
    await compactRange(this.journal.db, range.gte, range.lt);
    const bytesAfter = await this.bytes();
    return { recordsBefore, recordsDeleted: dead.length, objectsDeleted: deadObjects.length, bytesBefore, bytesAfter };
  }

  /**
   * Writes a checkpoint: explicit state of objects, in chunks of `chunkBytes`. Returns its number.
   */
  async writeCheckpoint(states: ReadonlyMap<number, Uint8Array>, chunkBytes = 1 << 20, seq?: number): Promise<number> {
    await this.flush();
    const number = (await this.checkpoints()).reduce((max, c) => Math.max(max, c), 0) + 1;
    let ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
    for (const [id, bytes] of states) {
      const chunks = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
      for (let c = 0; c < chunks; c++) {
        ops.push({ type: 'put', key: keys.chunk(this.n, number, id, c), value: encodeValue([chunks, bytes.subarray(c * chunkBytes, (c + 1) * chunkBytes)]) });
        if (ops.length >= 64) { await this.journal.db.batch(ops as never); ops = []; }
      }
    }
    // The info goes last: a checkpoint without it (a crash while writing) is not used for recovery.
    if (seq !== undefined) ops.push({ type: 'put', key: keys.checkpointInfo(this.n, number), value: encodeValue({ seq, objects: states.size }) });
    await this.journal.db.batch(ops as never, { sync: this.journal.durability !== 'none' } as never);
    if (seq !== undefined) this.#checkpointSeq = Math.max(this.#checkpointSeq, seq);
    return number;
  }

  #checkpointSeq = -1;

  /**
   * The newest complete checkpoint taken at a known point of the call stream: its number, the call before which it
   * was taken, and its states. Undefined when there is none.
   */
  async lastCheckpoint(): Promise<{ number: number; seq: number; states: Map<number, Uint8Array> } | undefined> {
    const numbers = await this.checkpoints();
    for (const number of numbers.reverse()) {
      const key = keys.checkpointInfo(this.n, number);
      const info = await this.journal.db.get(key);
      if (info === undefined) continue;
      const { seq } = decodeValue(key, info) as { seq: number };
      return { number, seq, states: await this.readCheckpoint(number) };
    }
    return undefined;
  }

  /** Numbers of the checkpoints written, ascending. */
  async checkpoints(): Promise<number[]> {
    const found = new Set<number>();
    for await (const key of this.journal.db.keys(keys.checkpoints(this.n))) found.add(chunkOfKey(key).checkpoint);
    // A checkpoint of a session without stateful objects has only its info entry.
    for await (const key of this.journal.db.keys(keys.checkpointInfos(this.n))) found.add(new DataView(key.buffer, key.byteOffset + key.byteLength - 4, 4).getUint32(0));
    return [...found].sort((a, b) => a - b);
  }

  /**
   * Reads a checkpoint back. An object whose chunks are incomplete (a crash while writing it) is left out.
   * @throws {JournalCorruptError} for a damaged chunk.
   */
  async readCheckpoint(number: number): Promise<Map<number, Uint8Array>> {
    const parts = new Map<number, { total: number; chunks: Uint8Array[] }>();
    for await (const [key, value] of this.journal.db.iterator(keys.checkpoint(this.n, number))) {
      const { id, chunk } = chunkOfKey(key);
      const [total, bytes] = decodeValue(key, value) as [number, Uint8Array];
      const entry = parts.get(id) ?? { total, chunks: [] };
      entry.chunks[chunk] = bytes;
      parts.set(id, entry);
    }
    const out = new Map<number, Uint8Array>();
    for (const [id, { total, chunks }] of parts) {
      if (chunks.filter(Boolean).length !== total) continue;
      out.set(id, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    }
    return out;
  }
}

async function compactRange(db: JournalDb, gte: Uint8Array, lt: Uint8Array): Promise<void> {
  const fn = (db as unknown as { compactRange?: (a: Uint8Array, b: Uint8Array) => Promise<void> }).compactRange;
  if (typeof fn === 'function') await fn.call(db, gte, lt);
}
