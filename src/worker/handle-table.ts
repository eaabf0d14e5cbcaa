/**
 * The worker's handle table of one session: guest-issued ids -> native pointers.
 *
 * Ids are chosen by the guest (so creating calls can be sent without waiting, and an id never changes when a
 * session moves); the worker only binds them. Released objects stay as tombstones so that a stale id is told
 * apart from a forged one. Interned kinds (platforms, devices) map one pointer to one id; where the spec lists a kind's
 * objects, one the worker meets first in an info value gets an id from its place in that list (below -2^32), which
 * every worker resolves to its own pointer for the same object.
 */
import { BadCallError, HandleError } from '../errors.js';
import type { HandleKindSpec } from '../spec/types.js';

interface Entry {
  readonly kind: string;
  readonly ptr: number;
  /** Application-visible reference count; null where the API does not count references (interned handles). */
  refs: number | null;
  live: boolean;
  /** Attributes the call that made it set (`FunctionSpec.sets`). */
  attributes?: Readonly<Record<string, number>>;
}

/** What callers learn about the handle a call refers to. */
export interface HandleRef {
  readonly id: number;
  readonly kind: string;
  readonly ptr: number;
}

/** Largest id a guest may issue: ids travel as CBOR integers and JavaScript numbers. */
export const MAX_HANDLE_ID = Number.MAX_SAFE_INTEGER;

/** How many released transient ids (events) a table remembers after forgetting them (see HandleTable.#kill). */
const RELEASED_TRANSIENTS_KEPT = 4096;

/** Span of the ids of one enumerable kind (below the worker's own counter, which never gets near it). */
const ENUMERATED_SPAN = 2 ** 32;

/**
 * Lists every object of an interned kind the library offers, in a stable order (`HandleKindSpec.enumerate`), or
 * undefined for a kind without such a list.
 */
export type KindEnumerator = (kind: string) => readonly number[] | undefined;

/** One session's table. See the module comment. */
export class HandleTable {
  readonly #entries = new Map<number, Entry>();
  /** Live ids by kind and native pointer (a map per kind: no key string to build per lookup). */
  readonly #byPtr = new Map<string, Map<number, number>>();
  #ptrs(kind: string): Map<number, number> {
    let m = this.#byPtr.get(kind);
    if (!m) this.#byPtr.set(kind, m = new Map());
    return m;
  }
  /** Released transient ids, forgotten by #entries, with their kinds: the most recent RELEASED_TRANSIENTS_KEPT. */
  readonly #releasedTransients = new Map<number, string>();
  /** The same ids in release order, as a ring: the slot at #ringNext holds the oldest. */
  readonly #releasedRing: (number | undefined)[] = new Array(RELEASED_TRANSIENTS_KEPT);
  #ringNext = 0;
  readonly #kinds: ReadonlyMap<string, HandleKindSpec>;
  /** Ids the worker itself assigns (to pointers the guest never saw) count down from -1. */
  #nextWorkerId = -1;

  readonly #enumerate: KindEnumerator | undefined;
  /** The kinds' places in the spec, for enumerated ids. */
  readonly #kindIndex: ReadonlyMap<string, number>;

  /**
   * @param enumerate Lists the objects of interned kinds: such an object met in an info value gets an id derived from
   * its place in that list, the same in every worker, so a migrated session's records still name it.
   */
  constructor(kinds: ReadonlyMap<string, HandleKindSpec>, enumerate?: KindEnumerator) {
    this.#kinds = kinds;
    this.#enumerate = enumerate;
    this.#kindIndex = new Map([...kinds.keys()].map((k, i) => [k, i]));
  }

  /** The enumerated id of `ptr` (an interned object), if its kind has a list and the list holds it. */
  #enumeratedIdOf(kind: string, ptr: number): number | undefined {
    const index = this.#enumerate?.(kind)?.indexOf(ptr) ?? -1;
    return index < 0 ? undefined : -(ENUMERATED_SPAN * (this.#kindIndex.get(kind)! + 1) + index + 1);
  }

  /** The kind whose range an enumerated id falls in, if any. */
  #enumeratedKindOf(id: number): string | undefined {
    if (!Number.isSafeInteger(id) || id >= -ENUMERATED_SPAN) return undefined;
    const index = Math.floor((-id - 1) / ENUMERATED_SPAN) - 1;
    return [...this.#kindIndex].find(([, i]) => i === index)?.[0];
  }

  /** The pointer an enumerated id of `kind` names on this worker's library (binding it), or undefined. */
  #bindEnumerated(id: number, kind: string): number | undefined {
    if (this.#enumeratedKindOf(id) !== kind || this.#kinds.get(kind)?.interned !== true) return undefined;
    const ptr = this.#enumerate?.(kind)?.[(-id - 1) % ENUMERATED_SPAN];
    if (ptr === undefined) return undefined;
    const existing = this.#byPtr.get(kind)?.get(ptr);
    if (existing !== undefined && existing !== id && this.#entries.get(existing)?.live) return undefined;
    this.#internAs(id, kind, ptr);
    return ptr;
  }

  /**
   * Binds `ptr` of `kind` to `id` without a reference count: an interned object (never released), or an object the
   * worker met first in an info value.
   */
  #internAs(id: number, kind: string, ptr: number): number {
    return this.#enter(id, kind, ptr, null);
  }

  /** Enters a live `id` for `ptr` of `kind` with `refs` application references (null: not counted). */
  #enter(id: number, kind: string, ptr: number, refs: number | null): number {
    this.#entries.set(id, { kind, ptr, refs, live: true });
    this.#ptrs(kind).set(ptr, id);
    return id;
  }

  #details(kind: string, extra: Record<string, unknown>): Record<string, unknown> {
    const status = this.#kinds.get(kind)?.invalidStatus;
    return status === undefined ? extra : { ...extra, status };
  }

  /**
   * The native pointer of `id`, which must be a live handle of `kind`.
   * @throws {HandleError} `ERR_AVA_UNKNOWN_HANDLE`, `ERR_AVA_STALE_HANDLE` or `ERR_AVA_HANDLE_KIND`.
   */
  resolve(id: unknown, kind: string, where: string): number {
    const entry = typeof id === 'number' ? this.#entries.get(id) : undefined;
    if (!entry) {
      const found = typeof id === 'number' ? this.#bindEnumerated(id, kind) : undefined;
      if (found !== undefined) return found;
      const released = typeof id === 'number' ? this.#releasedTransients.get(id) : undefined;
      if (released === kind) throw new HandleError('ERR_AVA_STALE_HANDLE', `${where}: ${kind} ${String(id)} was released`, { details: this.#details(kind, { id, kind }) });
      throw new HandleError('ERR_AVA_UNKNOWN_HANDLE', `${where}: ${String(id)} is not a handle of this session`, { details: this.#details(kind, { id, kind }) });
    }
    if (entry.kind !== kind) {
      throw new HandleError('ERR_AVA_HANDLE_KIND', `${where}: handle ${String(id)} is a ${entry.kind}, not a ${kind}`, { details: this.#details(kind, { id, kind, actual: entry.kind }) });
    }
    if (!entry.live) {
      throw new HandleError('ERR_AVA_STALE_HANDLE', `${where}: ${kind} ${String(id)} was released`, { details: this.#details(kind, { id, kind }) });
    }
    return entry.ptr;
  }

  /**
   * The native pointer of `id` even after the application released it: explicit state of an object the application
   * released but a live object still holds (a kernel's buffer argument) must travel with a migration.
   */
  resolveHeld(id: unknown, kind: string, where: string): number {
    const entry = typeof id === 'number' ? this.#entries.get(id) : undefined;
    if (entry && entry.kind === kind && !entry.live && entry.refs === 0) return entry.ptr;
    return this.resolve(id, kind, where);
  }

  /** Records the attributes the call that made `id` set on it. */
  setAttributes(id: number, values: Readonly<Record<string, number>>): void {
    const entry = this.#entries.get(id);
    if (entry) entry.attributes = values;
  }

  /** An attribute of a bound id (undefined for an unknown id or attribute). */
  attribute(id: unknown, name: string): number | undefined {
    return typeof id === 'number' ? this.#entries.get(id)?.attributes?.[name] : undefined;
  }

  /** Kind of a live or released id, if it was ever bound (a released transient one while it is remembered). */
  kindOf(id: number): string | undefined {
    return this.#entries.get(id)?.kind ?? this.#releasedTransients.get(id);
  }

  /**
   * Binds a guest-issued id to a new native object. For interned kinds, a pointer that already has an id keeps it
   * and that id is returned instead.
   * @throws {BadCallError} when the id is not a positive safe integer or is already in use.
   */
  bind(id: unknown, kind: string, ptr: number, refcounted: boolean): number {
    const interned = this.#kinds.get(kind)?.interned === true;
    if (interned) {
      const existing = this.#byPtr.get(kind)?.get(ptr);
      if (existing !== undefined && this.#entries.get(existing)?.live) return existing;
      // A replayed query proposes the id the object had on the source, derived from its place in the kind's list.
      if (typeof id === 'number' && id < 0) {
        const enumerated = this.#enumeratedIdOf(kind, ptr);
        if (enumerated !== undefined) return this.#internAs(enumerated, kind, ptr);
      }
    }
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
      throw new BadCallError(`handle id ${String(id)} is not a positive integer`);
    }
    if (this.#entries.has(id)) throw new BadCallError(`handle id ${id} is already in use in this session`);
    return this.#enter(id, kind, ptr, refcounted && !interned ? 1 : null);
  }

  /**
   * Checks, before the native call that creates it, that `id` can name a new handle of `kind`, so that a bad id never
   * leaves a native object nobody can release.
   * @throws {BadCallError} when the id is not a positive safe integer or is already in use.
   */
  checkNewId(id: unknown, kind: string): void {
    const interned = this.#kinds.get(kind)?.interned === true;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
      if (interned && id === undefined) return;
      // An interned object's enumerated id, as a replayed query proposes it (bind finds the object's own).
      if (interned && typeof id === 'number' && this.#enumeratedKindOf(id) === kind && this.#enumerate?.(kind) !== undefined) return;
      throw new BadCallError(`handle id ${String(id)} is not a positive integer`);
    }
    // Interned objects (devices) keep their id: asking again for one already bound is how queries work. Nothing is
    // created natively for them, so nothing can leak if the id turns out wrong.
    if (interned && this.#entries.get(id)?.kind === kind) return;
    if (this.#entries.has(id)) throw new BadCallError(`handle id ${id} is already in use in this session`);
  }

  /** {@link checkNewId} for each id of an array out-argument, which must also be distinct. */
  checkNewIds(ids: readonly unknown[], kind: string): void {
    if (new Set(ids).size !== ids.length) throw new BadCallError('proposed handle ids repeat');
    for (const id of ids) this.checkNewId(id, kind);
  }

  /** The id of a native pointer of `kind` (info values that hold handles); assigns a worker id to a pointer never seen. */
  idOf(kind: string, ptr: number): number {
    if (ptr === 0) return 0;
    const existing = this.#byPtr.get(kind)?.get(ptr);
    if (existing !== undefined && this.#entries.get(existing)?.live) return existing;
    const id = (this.#kinds.get(kind)?.interned === true ? this.#enumeratedIdOf(kind, ptr) : undefined) ?? this.#nextWorkerId--;
    return this.#internAs(id, kind, ptr);
  }

  /** The live handle of any kind that a native pointer names (callback arguments carry no kind). */
  findLive(ptr: number): HandleRef | undefined {
    for (const kind of this.#kinds.keys()) {
      const id = this.#byPtr.get(kind)?.get(ptr);
      if (id !== undefined && this.#entries.get(id)?.live) return { id, kind, ptr };
    }
    return undefined;
  }

  /** Counts a successful retain of a live handle. */
  retain(id: number): void {
    const entry = this.#entries.get(id);
    if (entry?.live && entry.refs !== null) entry.refs++;
  }

  /** Counts a successful release; at zero the id becomes stale. Returns true when it did. */
  release(id: number): boolean {
    const entry = this.#entries.get(id);
    if (!entry?.live || entry.refs === null) return false;
    entry.refs--;
    if (entry.refs > 0) return false;
    this.#kill(id, entry);
    return true;
  }

  /** Forgets a handle the API consumed (an unmapped region): later use is stale. */
  drop(id: number): void {
    const entry = this.#entries.get(id);
    if (entry?.live) this.#kill(id, entry);
  }

  #kill(id: number, entry: Entry): void {
    entry.live = false;
    // The allocator may hand the same address to a new object: the pointer no longer names this id.
    const ptrs = this.#byPtr.get(entry.kind);
    if (ptrs?.get(entry.ptr) === id) ptrs.delete(entry.ptr);
    // A released transient object (an event) has no state and nothing holds it for a migration: forget it, or a
    // program that makes an event per launch grows the table without end. The last few are remembered, so that a
    // use soon after the release is still reported as stale rather than unknown.
    if (this.#kinds.get(entry.kind)?.transient === true) {
      this.#entries.delete(id);
      // A ring of the last ids, not the map's oldest key: finding that key walks the slots of every id deleted
      // before it until the map rehashes (1.2 us per release, measured with an event released per launch).
      const oldest = this.#releasedRing[this.#ringNext];
      if (oldest !== undefined) this.#releasedTransients.delete(oldest);
      this.#releasedRing[this.#ringNext] = id;
      this.#ringNext = (this.#ringNext + 1) % RELEASED_TRANSIENTS_KEPT;
      this.#releasedTransients.set(id, entry.kind);
    }
  }

  /** Native pointers of the live handles of `kind`, in binding order. */
  livePointers(kind: string): number[] {
    const out: number[] = [];
    for (const entry of this.#entries.values()) if (entry.live && entry.kind === kind) out.push(entry.ptr);
    return out;
  }

  /** Live handles of every kind, in binding order. */
  *live(): IterableIterator<HandleRef> {
    for (const [id, entry] of this.#entries) if (entry.live) yield { id, kind: entry.kind, ptr: entry.ptr };
  }

  /** Application-visible reference count of a live handle (null when not counted). */
  refs(id: number): number | null | undefined {
    const entry = this.#entries.get(id);
    return entry?.live ? entry.refs : undefined;
  }
}
