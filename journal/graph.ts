/**
 * The object graph of a session, derived from its journaled records: every object's kind, creating record,
 * reference count and dependencies (parents, and the objects its configuration names, such as a kernel's buffer
 * arguments). It decides which records are still needed:
 *
 * - an object is *live* while the application holds a reference, or while a live object depends on it (a kernel
 *   keeps its program and the buffers set as its arguments); released to zero with live dependents, its records
 *   are kept (AvA deleted them and broke the children);
 * - a record is *live* if it is global, created a live object, or configures/retains/releases a live object and
 *   is not superseded (a configure call with the same target and key, e.g. the same kernel argument set again);
 * - everything else is dead and may be compacted away. Death is final: ids are never reused.
 */
import { MAPPED_KIND } from '../src/spec/plan.js';
import type { ApiSpec, ArgSpec, FunctionSpec } from '../src/spec/types.js';
import type { WireValue } from '../src/wire/frames.js';
import type { JournalRecord } from './format.js';

/** One object. */
export interface GraphNode {
  readonly id: number;
  readonly kind: string;
  /** Seq of the creating record (-1 for objects first seen as arguments, e.g. worker-assigned ids). */
  readonly created: number;
  /** Application-visible references; null where not counted (interned kinds). */
  refs: number | null;
  /** Objects this one depends on through its creation. */
  readonly parents: readonly number[];
  /** Live configure records by supersede key, with the objects each names. */
  readonly configs: Map<string, { seq: number; deps: readonly number[] }>;
  /** Seqs of retain and release records. */
  readonly refRecords: number[];
}

const HANDLE_IN_ROLES = new Set<ArgSpec['role']>(['handle', 'handles', 'argValue', 'properties', 'struct']);

/** Ids of the handles a call's input arguments name. */
export function inputHandles(f: FunctionSpec, args: readonly WireValue[]): number[] {
  const ids: number[] = [];
  // Plain loops, no closures: this runs for every journaled call.
  for (let i = 0; i < f.args.length; i++) {
    const a = f.args[i]!;
    if (!HANDLE_IN_ROLES.has(a.role)) continue;
    const v = args[i];
    if (a.role === 'handle') {
      if (typeof v === 'number') ids.push(v);
    } else if (a.role === 'handles') {
      if (Array.isArray(v)) for (const x of v) if (typeof x === 'number') ids.push(x);
    } else if (a.role === 'argValue') {
      const h = v as { handle?: unknown } | null;
      if (h && typeof h === 'object' && !(h instanceof Uint8Array) && typeof h.handle === 'number') ids.push(h.handle);
    } else if (a.role === 'properties' && Array.isArray(v)) {
      for (let k = 1; k < v.length; k += 2) if (a.handleKeys[String(v[k - 1])] !== undefined && typeof v[k] === 'number') ids.push(v[k] as number);
    } else if (a.role === 'struct' && Array.isArray(v)) {
      for (let k = 0; k < a.fields.length; k++) if (a.fields[k]!.kind !== undefined && typeof v[k] === 'number') ids.push(v[k] as number);
    }
  }
  return ids;
}

/** The handles a call created, with their kinds: its returned handle and its handle out-arguments. */
export function createdHandles(f: FunctionSpec, record: Pick<JournalRecord, 'args' | 'ret' | 'outs'>): { id: number; kind: string }[] {
  const out: { id: number; kind: string }[] = [];
  if (f.returns.role === 'handle' && typeof record.ret === 'number') out.push({ id: record.ret, kind: f.returns.kind });
  for (let i = 0; i < f.args.length; i++) {
    const a = f.args[i]!;
    if (a.role === 'handleOut') {
      const id = record.outs?.[a.name] ?? record.args[i];
      if (typeof id === 'number') out.push({ id, kind: a.kind });
    } else if (a.role === 'handlesOut') {
      const ids = record.outs?.[a.name];
      if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'number') out.push({ id, kind: a.kind });
    }
  }
  return out;
}

/** The mapping id in a mapped return or argument value (`{id, bytes}`), if `f` returns or takes one. */
export function mappedId(f: FunctionSpec, value: WireValue | undefined): number | undefined {
  const id = value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) ? (value as { id?: unknown }).id : undefined;
  return typeof id === 'number' && (f.returns.role === 'mapped' || f.args.some((a) => a.role === 'mapped')) ? id : undefined;
}

/** See the module comment. */
export class ObjectGraph {
  readonly spec: ApiSpec;
  readonly nodes = new Map<number, GraphNode>();
  /** Every applied record's seq -> what it is, to answer liveness. */
  readonly #records = new Map<number, { kind: 'global' } | { kind: 'create'; ids: number[] } | { kind: 'config'; target: number; key: string } | { kind: 'ref'; target: number }>();
  readonly #fns: readonly FunctionSpec[];
  /** Configure records a newer one superseded, by the newer one's seq: put back if the newer one is retracted. */
  readonly #shadowed = new Map<number, { seq: number; deps: readonly number[] }>();

  constructor(spec: ApiSpec) {
    this.spec = spec;
    this.#fns = spec.functions;
  }

  /** Number of records applied and not dropped. */
  get recordCount(): number {
    return this.#records.size;
  }

  /** The function of a record. */
  functionOf(record: Pick<JournalRecord, 'fn'>): FunctionSpec {
    const f = this.#fns[record.fn];
    if (!f) throw new RangeError(`function index ${record.fn} is not in spec ${this.spec.name}`);
    return f;
  }

  /** Updates the graph with one record (records must come in seq order). */
  apply(record: JournalRecord): void {
    const f = this.functionOf(record);
    switch (f.record) {
      case 'global': {
        this.#records.set(record.seq, { kind: 'global' });
        for (const { id, kind } of createdHandles(f, record)) if (!this.nodes.has(id)) this.#add(id, kind, record.seq, [], false);
        break;
      }
      case 'create': {
        const parents = inputHandles(f, record.args);
        const ids: number[] = [];
        for (const { id, kind } of createdHandles(f, record)) {
          if (this.nodes.has(id)) continue; // an interned object seen again (a sub-device query, say)
          this.#add(id, kind, record.seq, parents, true);
          ids.push(id);
        }
        this.#records.set(record.seq, { kind: 'create', ids });
        break;
      }
      case 'configure': {
        const target = this.#target(f, record);
        const node = target === undefined ? undefined : this.nodes.get(target);
        if (!node) break;
        const keyArgs = f.supersedeKey ?? [];
        const key = keyArgs.length === 0 ? `${f.name}#${record.seq}` : `${f.name}:${keyArgs.map((k) => JSON.stringify(record.args[f.args.findIndex((a) => a.name === k)])).join(',')}`;
        const previous = node.configs.get(key);
        if (previous) {
          this.#records.delete(previous.seq);
          this.#shadowed.set(record.seq, previous);
        }
        node.configs.set(key, { seq: record.seq, deps: inputHandles(f, record.args).filter((id) => id !== target) });
        this.#records.set(record.seq, { kind: 'config', target: node.id, key });
        break;
      }
      case 'retain': case 'release': {
        const target = this.#target(f, record);
        const node = target === undefined ? undefined : this.nodes.get(target);
        if (!node) break;
        if (node.refs !== null) node.refs += f.record === 'retain' ? 1 : -1;
        node.refRecords.push(record.seq);
        this.#records.set(record.seq, { kind: 'ref', target: node.id });
        break;
      }
      case 'transfer': case 'execute': {
        // Journaled for the transient objects they made (an enqueue's event), or as data (failover).
        const ids: number[] = [];
        for (const { id, kind } of createdHandles(f, record)) {
          if (this.spec.kind.get(kind)?.transient !== true || this.nodes.has(id)) continue;
          this.#add(id, kind, record.seq, inputHandles(f, record.args), true);
          ids.push(id);
        }
        // A mapping is live until unmapped: a migration in between maps the region again on the target.
        const mapping = mappedId(f, record.ret);
        if (mapping !== undefined && !this.nodes.has(mapping)) {
          this.#add(mapping, MAPPED_KIND, record.seq, inputHandles(f, record.args), true);
          ids.push(mapping);
        }
        if (ids.length > 0) this.#records.set(record.seq, { kind: 'create', ids });
        f.args.forEach((a, i) => {
          const node = a.role === 'mapped' ? this.nodes.get(mappedId(f, record.args[i]) ?? 0) : undefined;
          if (!node || node.refs === null) return;
          node.refs -= 1;
          node.refRecords.push(record.seq);
          // An unmap that also made an event keeps its `create` entry (one entry per record).
          if (!this.#records.has(record.seq)) this.#records.set(record.seq, { kind: 'ref', target: node.id });
        });
        break;
      }
      default:
        break; // query, sync: not journaled
    }
  }

  /** Forgets a record that turned out to have failed (an asynchronous call reported later): it changed nothing. */
  retract(record: JournalRecord): void {
    const entry = this.#records.get(record.seq);
    if (!entry) return;
    this.#records.delete(record.seq);
    if (entry.kind === 'create') for (const id of entry.ids) this.nodes.delete(id);
    else if (entry.kind === 'config') {
      const node = this.nodes.get(entry.target);
      if (node?.configs.get(entry.key)?.seq === record.seq) {
        // The failed call changed nothing: the configuration it would have replaced still holds.
        const previous = this.#shadowed.get(record.seq);
        if (previous) {
          node.configs.set(entry.key, previous);
          this.#records.set(previous.seq, { kind: 'config', target: entry.target, key: entry.key });
        } else node.configs.delete(entry.key);
      }
      this.#shadowed.delete(record.seq);
    } else if (entry.kind === 'ref') {
      const node = this.nodes.get(entry.target);
      if (node && node.refs !== null) node.refs += this.functionOf(record).record === 'retain' ? -1 : 1;
    }
  }

  #target(f: FunctionSpec, record: JournalRecord): number | undefined {
    const v = record.args[f.args.findIndex((a) => a.name === f.target)];
    return typeof v === 'number' ? v : undefined;
  }

  #add(id: number, kind: string, created: number, parents: readonly number[], counted: boolean): void {
    const interned = this.spec.kind.get(kind)?.interned === true;
    this.nodes.set(id, { id, kind, created, refs: counted && !interned ? 1 : null, parents, configs: new Map(), refRecords: [] });
  }

  /** Ids of the live objects (held by the application, or needed by a live object). */
  liveObjects(): Set<number> {
    const live = new Set<number>();
    const stack: number[] = [];
    for (const node of this.nodes.values()) if (node.refs === null || node.refs > 0) stack.push(node.id);
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (live.has(id)) continue;
      const node = this.nodes.get(id);
      if (!node) continue;
      live.add(id);
      for (const p of node.parents) if (!live.has(p)) stack.push(p);
      for (const c of node.configs.values()) for (const d of c.deps) if (!live.has(d)) stack.push(d);
    }
    return live;
  }

  /** Seqs of the records still needed, in order. */
  liveRecords(live: Set<number> = this.liveObjects()): number[] {
    const out: number[] = [];
    for (const [seq, entry] of this.#records) {
      if (entry.kind === 'global') out.push(seq);
      else if (entry.kind === 'create') { if (entry.ids.some((id) => live.has(id))) out.push(seq); }
      else if (live.has(entry.target)) out.push(seq);
    }
    return out.sort((a, b) => a - b);
  }

  /** Seqs of the records no longer needed (dead objects, superseded configuration), in order. */
  deadRecords(all: Iterable<number>): number[] {
    const needed = new Set(this.liveRecords());
    return [...all].filter((seq) => !needed.has(seq)).sort((a, b) => a - b);
  }

  /** Drops dead objects from memory after their records were compacted away. */
  forgetDead(live: Set<number> = this.liveObjects()): void {
    for (const [seq, entry] of this.#records) {
      const keep = entry.kind === 'global' || (entry.kind === 'create' ? entry.ids.some((id) => live.has(id)) : live.has(entry.target));
      if (!keep) this.#records.delete(seq);
    }
    for (const id of [...this.nodes.keys()]) if (!live.has(id)) this.nodes.delete(id);
    // Shadows are only needed until an asynchronous failure can still arrive; after compaction none can.
    this.#shadowed.clear();
  }

  /** Whether `seq` is a record the graph holds (not superseded, not retracted, not compacted away). */
  has(seq: number): boolean {
    return this.#records.has(seq);
  }
}
