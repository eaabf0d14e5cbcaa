/**
 * The replay planner: from a session's journal, the live closure of records that rebuilds its live objects, in
 * original order: the global records, and every record a live object needs (its creation, its configuration not
 * superseded, its retains and releases), through its dependencies.
 */
import type { JournalRecord } from '../journal/format.js';
import { JournalCorruptError, keys } from '../journal/format.js';
import { ObjectGraph } from '../journal/graph.js';
import type { SessionJournal } from '../journal/journal.js';
import type { ApiSpec } from '../src/spec/types.js';

/** What a replay runs. */
export interface ReplayPlan {
  readonly spec: ApiSpec;
  /** The records to replay, in seq order. */
  readonly records: readonly JournalRecord[];
  /** Ids of the objects the plan makes live. */
  readonly liveObjects: ReadonlySet<number>;
  /** Kinds of the live objects. */
  readonly kinds: ReadonlyMap<number, string>;
  /** Live objects the application released, held by a live object (their state travels with `held`). */
  readonly held: ReadonlySet<number>;
  /** Live objects whose explicit state travels: kinds with state, less held ones whose state is `lostWhenReleased`. */
  readonly withState: ReadonlySet<number>;
  readonly counts: {
    /** Records read. */
    readonly total: number;
    /** Records in the plan. */
    readonly live: number;
    /** Records left out (dead objects, superseded configuration). */
    readonly skipped: number;
  };
}

/** Plans from records already in memory (in seq order). */
export function planFromRecords(spec: ApiSpec, records: Iterable<JournalRecord>): ReplayPlan {
  const graph = new ObjectGraph(spec);
  const all: JournalRecord[] = [];
  for (const r of records) {
    graph.apply(r);
    all.push(r);
  }
  const live = graph.liveObjects();
  const keep = new Set(graph.liveRecords(live));
  const planned = all.filter((r) => keep.has(r.seq));
  const kinds = new Map<number, string>();
  const held = new Set<number>();
  const withState = new Set<number>();
  for (const id of live) {
    const node = graph.nodes.get(id)!;
    kinds.set(id, node.kind);
    if (node.refs === 0) held.add(id);
    const state = spec.kind.get(node.kind)?.state;
    if (state && !(node.refs === 0 && state.lostWhenReleased)) withState.add(id);
  }
  return { spec, records: planned, liveObjects: live, kinds, held, withState, counts: { total: all.length, live: planned.length, skipped: all.length - planned.length } };
}

/**
 * Plans a session's replay from its journal (stored records, checked as they are read). With `before`, only the
 * records of calls before that one (a migration point: later calls are recorded but not sent yet).
 * @throws {JournalCorruptError} for a damaged record.
 */
export async function planReplay(journal: SessionJournal, options: { before?: number } = {}): Promise<ReplayPlan> {
  await journal.flush();
  const records: JournalRecord[] = [];
  const before = options.before ?? Infinity;
  const count = journal.journal.spec.functions.length;
  for await (const r of journal.records()) {
    if (r.seq >= before) break;
    // A record whose checksum holds but whose function the spec lacks was written by something else: corrupt.
    if (!Number.isInteger(r.fn) || r.fn < 0 || r.fn >= count) {
      throw new JournalCorruptError(keys.record(journal.n, r.seq), `names function #${r.fn}, which ${journal.journal.spec.name} does not have`);
    }
    records.push(r);
  }
  return planFromRecords(journal.journal.spec, records);
}
