/**
 * `ava-journal verify`: reads every entry of the store, checks its checksum and shape, rebuilds each session's object
 * graph from its records and compares it with the stored objects. Problems name the key they were found at.
 */
import { AvaError } from '../../errors.js';
import type { StoredObject } from '../../../journal/format.js';
import { STAGES, chunkOfKey, decodeRecord, decodeTimings, decodeValue, formatKey, keys, text } from '../../../journal/format.js';
import { ObjectGraph } from '../../../journal/graph.js';
import type { Journal } from '../../../journal/journal.js';
import type { Progress } from './progress.js';

/** One thing wrong. */
export interface VerifyProblem {
  /** The key, in readable form, when the problem is one entry. */
  readonly key?: string;
  readonly session?: number;
  readonly code: string;
  readonly message: string;
}

/** What {@link verifyJournal} found. */
export interface VerifyReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly sessions: { n: number; id: string | null; records: number; objects: number; chunks: number; timings: number }[];
  readonly problems: VerifyProblem[];
  /** Not wrong, worth knowing (a checkpoint cut short by a crash). */
  readonly warnings: VerifyProblem[];
}

interface SessionScan {
  n: number;
  id: string | null;
  info: boolean;
  graph: ObjectGraph;
  records: number;
  damaged: boolean;
  objects: Map<number, { key: Uint8Array; object: StoredObject }>;
  chunks: Map<string, { total: number; seen: number }>;
  timings: number;
}

const ASCII_BANG = 0x21;

function idOfObjectKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset + key.byteLength - 8, 8).getBigUint64(0) - (1n << 63n));
}

function isStoredObject(v: unknown): v is StoredObject {
  const o = v as StoredObject;
  return typeof o === 'object' && o !== null && typeof o.id === 'number' && typeof o.kind === 'string' && typeof o.created === 'number' &&
    (o.refs === null || typeof o.refs === 'number') && Array.isArray(o.deps);
}

/** See the module comment. */
export async function verifyJournal(journal: Journal, progress?: Progress): Promise<VerifyReport> {
  const spec = journal.spec;
  const problems: VerifyProblem[] = [];
  const warnings: VerifyProblem[] = [];
  const scans = new Map<number, SessionScan>();
  const names = new Map<number, string>();
  const scan = (n: number): SessionScan => {
    let s = scans.get(n);
    if (!s) {
      s = { n, id: null, info: false, graph: new ObjectGraph(spec), records: 0, damaged: false, objects: new Map(), chunks: new Map(), timings: 0 };
      scans.set(n, s);
    }
    return s;
  };
  const problem = (key: Uint8Array | undefined, code: string, message: string, session?: number): void => {
    problems.push({ ...(key ? { key: formatKey(key) } : {}), ...(session === undefined ? {} : { session }), code, message });
  };
  let entries = 0;
  for await (const [key, value] of journal.db.iterator()) {
    entries++;
    progress?.tick();
    let session: number | undefined;
    try {
      if (formatKey(key) === 'meta') {
        decodeValue(key, value);
        continue;
      }
      if (key[0] === 0x6e && key[1] === ASCII_BANG) { // n!<session id>
        const n = decodeValue(key, value);
        if (typeof n !== 'number' || !Number.isInteger(n)) { problem(key, 'ERR_AVA_JOURNAL_CORRUPT', 'a session name that maps to no session number'); continue; }
        names.set(n, text(key.subarray(2)));
        continue;
      }
      const m = key[0] === 0x73 && key[1] === ASCII_BANG ? /^s!(\d+)!([a-z])/.exec(text(key.subarray(0, Math.min(key.byteLength, 16)))) : null;
      if (!m) { problem(key, 'ERR_AVA_JOURNAL_UNKNOWN_KEY', 'a key this format does not have'); continue; }
      session = Number(m[1]);
      const s = scan(session);
      const head = `s!${m[1]}!${m[2]}`.length;
      const tag = m[2];
      const rest = key.byteLength - head;
      if (tag === 'i' && rest === 0) {
        const info = decodeValue(key, value) as { id?: unknown };
        if (typeof info?.id !== 'string') problem(key, 'ERR_AVA_JOURNAL_CORRUPT', 'session info without an id', session);
        else s.id = info.id;
        s.info = true;
      } else if (tag === 'r' && rest === 9 && key[head] === ASCII_BANG) {
        s.records++;
        let record;
        try {
          record = decodeRecord(key, value);
        } catch (error) {
          s.damaged = true;
          throw error;
        }
        if (!spec.functions[record.fn]) {
          s.damaged = true;
          problem(key, 'ERR_AVA_JOURNAL_CORRUPT', `record names function index ${record.fn}, not in spec ${spec.name}`, session);
        } else if (!s.damaged) s.graph.apply(record);
      } else if (tag === 'o' && rest === 9 && key[head] === ASCII_BANG) {
        const object = decodeValue(key, value);
        if (!isStoredObject(object)) problem(key, 'ERR_AVA_JOURNAL_CORRUPT', 'not an object entry', session);
        else if (object.id !== idOfObjectKey(key)) problem(key, 'ERR_AVA_JOURNAL_CORRUPT', `object entry says id ${object.id}, its key says ${idOfObjectKey(key)}`, session);
        else s.objects.set(object.id, { key, object });
      } else if (tag === 'k' && rest === 1 + 4 + 1 + 8 + 1 + 4) {
        const v = decodeValue(key, value);
        if (!Array.isArray(v) || typeof v[0] !== 'number' || !(v[1] instanceof Uint8Array)) { problem(key, 'ERR_AVA_JOURNAL_CORRUPT', 'not a checkpoint chunk', session); continue; }
        const { checkpoint, id } = chunkOfKey(key);
        const name = `${checkpoint}:${id}`;
        const entry = s.chunks.get(name) ?? { total: v[0], seen: 0 };
        entry.seen++;
        s.chunks.set(name, entry);
      } else if (tag === 't' && rest === 9 && key[head] === ASCII_BANG) {
        const t = decodeTimings(key, value);
        s.timings++;
        if (!spec.functions[t.fn]) problem(key, 'ERR_AVA_JOURNAL_CORRUPT', `timings name function index ${t.fn}, not in spec ${spec.name}`, session);
        else if (t.stages[STAGES[0]] === null && t.stages[STAGES[1]] === null) problem(key, 'ERR_AVA_JOURNAL_CORRUPT', 'timings without a start', session);
      } else {
        problem(key, 'ERR_AVA_JOURNAL_UNKNOWN_KEY', 'a key this format does not have', session);
      }
    } catch (error) {
      if (AvaError.isAvaError(error)) problem(key, error.code, error.message, session);
      else problem(key, 'ERR_AVA_JOURNAL_CORRUPT', (error as Error).message, session);
    }
  }

  for (const [n, id] of names) {
    const s = scans.get(n);
    if (!s?.info) problem(keys.info(n), 'ERR_AVA_JOURNAL_CORRUPT', `session ${n} (${id}) has no info entry`, n);
    else if (s.id !== null && s.id !== id) problem(keys.info(n), 'ERR_AVA_JOURNAL_CORRUPT', `session ${n} is named ${id}, its info says ${s.id}`, n);
  }
  for (const s of scans.values()) {
    if (!names.has(s.n)) problem(undefined, 'ERR_AVA_JOURNAL_CORRUPT', `entries of session ${s.n}, which has no name entry (n!<id>)`, s.n);
    for (const [name, { total, seen }] of s.chunks) {
      if (seen !== total) {
        const [checkpoint, id] = name.split(':');
        warnings.push({ session: s.n, code: 'ERR_AVA_JOURNAL_CHECKPOINT_PARTIAL', message: `checkpoint ${checkpoint} of session ${s.n} has ${seen} of ${total} chunks of object #${id} (cut short; replay leaves that object out)` });
      }
    }
    if (s.damaged) {
      warnings.push({ session: s.n, code: 'ERR_AVA_JOURNAL_GRAPH_UNCHECKED', message: `session ${s.n}: the object graph was not compared, its records are damaged` });
      continue;
    }
    compareGraph(s, problem);
  }
  const sessions = [...scans.values()].sort((a, b) => a.n - b.n).map((s) => ({
    n: s.n, id: s.id ?? names.get(s.n) ?? null, records: s.records, objects: s.objects.size, chunks: [...s.chunks.values()].reduce((x, c) => x + c.seen, 0), timings: s.timings,
  }));
  return { ok: problems.length === 0, entries, sessions, problems, warnings };
}

/**
 * Every stored object must match the rebuilt graph (kind, creating record, reference count), and every live object
 * of the rebuilt graph must be stored. Dead objects of the rebuilt graph may be absent: compaction deletes their
 * entries while keeping a record that also created a live object.
 */
function compareGraph(s: SessionScan, problem: (key: Uint8Array | undefined, code: string, message: string, session?: number) => void): void {
  const code = 'ERR_AVA_JOURNAL_GRAPH';
  const live = s.graph.liveObjects();
  for (const [id, { key, object }] of s.objects) {
    const node = s.graph.nodes.get(id);
    if (!node) { problem(key, code, `object #${id} (${object.kind}) is stored, but no record creates it`, s.n); continue; }
    const diffs: string[] = [];
    if (node.kind !== object.kind) diffs.push(`kind ${object.kind} stored, ${node.kind} from records`);
    if (node.created !== object.created) diffs.push(`created by record ${object.created} stored, ${node.created} from records`);
    if (node.refs !== object.refs) diffs.push(`refs ${object.refs} stored, ${node.refs} from records`);
    if (diffs.length > 0) problem(key, code, `object #${id}: ${diffs.join('; ')}`, s.n);
  }
  for (const id of live) {
    if (!s.objects.has(id)) {
      const node = s.graph.nodes.get(id)!;
      problem(keys.object(s.n, id), code, `live object #${id} (${node.kind}, created by record ${node.created}) has no stored entry`, s.n);
    }
  }
}
