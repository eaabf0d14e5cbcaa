/**
 * `ava-journal`: the offline tools for session journals (see HELP below). The journal's spec is read from its own
 * `meta`; the store must not be open in another process (LevelDB allows one), so a journal being written is read
 * through a copy of its folder.
 */
import { resolve } from 'node:path';
import { journalPath, noColor } from '../config.js';
import { ConfigError } from '../errors.js';
import type { FunctionSpec } from '../spec/types.js';
import { chunkOfKey, keys, seqOfKey } from '../../journal/format.js';
import type { JournalRecord } from '../../journal/format.js';
import { createdHandles, inputHandles } from '../../journal/graph.js';
import { JournalError } from '../../journal/journal.js';
import type { Journal, SessionInfo } from '../../journal/journal.js';
import { parseCli } from './common.js';
import { LineWriter } from './journal-lib/output.js';
import { packJournal } from './journal-lib/pack.js';
import { Progress } from './journal-lib/progress.js';
import { formatRecord, palette, recordJson } from './journal-lib/render.js';
import type { Palette } from './journal-lib/render.js';
import { countKeys, openJournalForTool, pickSessions, rangeSize } from './journal-lib/store.js';
import { TraceBuilder } from './journal-lib/trace.js';
import { verifyJournal } from './journal-lib/verify.js';

const HELP = `Usage: ava-journal <command> [--journal <dir>] [--session <n | id | id prefix>] [options]

Offline tools for session journals. The journal folder defaults to AVA_JOURNAL (else .ava/journal); its spec is read
from the journal itself. A journal that a running process writes is locked: stop it, or copy the folder first.

Commands:
  ls        sessions with their record, object, checkpoint and timing counts and sizes      [--json]
  show      one line per record: seq, function, arguments (#id for handles, <N bytes> for
            byte strings), return value; (dead) marks what compact would delete
                                                                 [--session] [--fn] [--object] [--json]
  stats     records per function, live and dead objects, value bytes per record, what
            compact would delete and save                                          [--session] [--json]
  graph     the live objects as Graphviz DOT (kind#id; edges to parents and configured deps)
                                                                                   [--session] [--out]
  export    records as JSON lines {session, seq, fn, args, ret, outs, t}, byte strings as
            {"$bytes": base64}, big integers as {"$bigint": digits}
                                                         [--session] [--fn] [--object] [--out]
  export --trace
            the calls as a Chrome/Perfetto trace (open it in ui.perfetto.dev), from the stage
            timings journaled with AVA_JOURNAL_TIMINGS=1                    [--session] [--fn] [--out]
  verify    reads every entry: checksums, shapes, and the object graph rebuilt from records
            against the stored objects; exit status 1 when anything is wrong            [--json]
  compact   deletes the records and objects nothing live needs (timings and checkpoints stay)
                                                                                  [--session] [--json]
  pack      copies the live records, live objects, their checkpoints and meta into a new,
            self-contained journal folder for another host (timings stay behind)
                                                                           --out <dir> [--session]

Options:
  --journal, -j   the journal folder (default AVA_JOURNAL)
  --session, -s   one session: its number (as ls prints it), its id, or a unique prefix of its id
  --fn            only records (or trace events) of this function
  --object        only records that name this object id (as an argument, a target or a created handle)
  --json          machine-readable output
  --trace         export a Chrome trace instead of JSON lines
  --out, -o       write to this file (export, graph) or new folder (pack) instead of stdout
  --help, -h      this text

Long work (verify, compact, export, pack over 10,000 records) shows a progress bar on stderr when it is a terminal.
Colours only on a terminal and without NO_COLOR.
`;

const OPTIONS = {
  journal: { type: 'string', short: 'j' },
  session: { type: 'string', short: 's' },
  fn: { type: 'string' },
  object: { type: 'string' },
  json: { type: 'boolean' },
  trace: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flag = Exclude<keyof typeof OPTIONS, 'help'>;
type Command = 'ls' | 'show' | 'stats' | 'graph' | 'export' | 'verify' | 'compact' | 'pack';

/** The flags each command takes; any other is a usage error. */
const ACCEPTS: Readonly<Record<Command, readonly Flag[]>> = {
  ls: ['journal', 'session', 'json'],
  show: ['journal', 'session', 'fn', 'object', 'json'],
  stats: ['journal', 'session', 'json'],
  graph: ['journal', 'session', 'out'],
  export: ['journal', 'session', 'fn', 'object', 'trace', 'out'],
  verify: ['journal', 'json'],
  compact: ['journal', 'session', 'json'],
  pack: ['journal', 'session', 'out'],
};

interface Context {
  readonly journal: Journal;
  readonly path: string;
  readonly sessions: SessionInfo[];
  readonly values: Partial<Record<Flag, string | boolean | undefined>>;
  readonly p: Palette;
}

/** Bytes for people: `512 B`, `4.1 KiB`, `3.2 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

function parseObjectId(text: string): number {
  const m = /^#?(-?\d{1,15})$/.exec(text.trim());
  if (!m) throw new ConfigError(`--object: "${text}" is not an object id (a number, e.g. 12 or #12)`);
  return Number(m[1]);
}

/** The record filter of --fn and --object. */
function recordFilter(ctx: Context): (f: FunctionSpec, r: JournalRecord) => boolean {
  const fnName = ctx.values.fn as string | undefined;
  if (fnName !== undefined && !ctx.journal.spec.fn.has(fnName)) {
    throw new ConfigError(`--fn: ${ctx.journal.spec.name} has no function "${fnName}"`);
  }
  const object = ctx.values.object === undefined ? undefined : parseObjectId(ctx.values.object as string);
  return (f, r) => {
    if (fnName !== undefined && f.name !== fnName) return false;
    if (object === undefined) return true;
    return inputHandles(f, r.args).includes(object) || createdHandles(f, r).some((c) => c.id === object);
  };
}

async function progressFor(ctx: Context, range: (n: number) => { gte: Uint8Array; lt: Uint8Array }, unit = 'records'): Promise<Progress | undefined> {
  if (!Progress.wanted()) return undefined;
  let total = 0;
  for (const s of ctx.sessions) total += await countKeys(ctx.journal.db, range(s.n));
  return new Progress(total, process.stderr, { unit });
}

async function ls(ctx: Context): Promise<void> {
  const db = ctx.journal.db;
  const rows = [];
  for (const s of ctx.sessions) {
    const checkpoints = new Set<number>();
    for await (const key of db.keys(keys.checkpoints(s.n))) checkpoints.add(chunkOfKey(key).checkpoint);
    const size = await rangeSize(db, keys.session(s.n));
    rows.push({
      n: s.n, id: s.id, started: new Date(s.started).toISOString(),
      records: await countKeys(db, keys.records(s.n)), objects: await countKeys(db, keys.objects(s.n)),
      checkpoints: checkpoints.size, timings: await countKeys(db, keys.timings(s.n)), bytes: size.keyBytes + size.valueBytes,
    });
  }
  const meta = ctx.journal.meta;
  if (ctx.values.json) {
    process.stdout.write(`${JSON.stringify({ journal: ctx.path, spec: meta.spec, hash: meta.hash, format: meta.format, sessions: rows }, null, 2)}\n`);
    return;
  }
  const lines = [ctx.p.title(`journal ${ctx.path}: ${meta.spec} ${meta.hash.slice(0, 12)}, format ${meta.format}, ${rows.length} session${rows.length === 1 ? '' : 's'}`)];
  const idWidth = Math.max(7, ...rows.map((r) => r.id.length));
  lines.push(`${'n'.padStart(4)}  ${'session'.padEnd(idWidth)}  ${'started'.padEnd(24)}  ${'records'.padStart(8)}  ${'objects'.padStart(8)}  ${'checkpoints'.padStart(11)}  ${'timings'.padStart(8)}  ${'bytes'.padStart(10)}`);
  for (const r of rows) {
    lines.push(`${String(r.n).padStart(4)}  ${r.id.padEnd(idWidth)}  ${r.started.padEnd(24)}  ${String(r.records).padStart(8)}  ${String(r.objects).padStart(8)}  ${String(r.checkpoints).padStart(11)}  ${String(r.timings).padStart(8)}  ${formatBytes(r.bytes).padStart(10)}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function show(ctx: Context): Promise<void> {
  const keep = recordFilter(ctx);
  const out = LineWriter.open();
  const spec = ctx.journal.spec;
  for (const info of ctx.sessions) {
    const sj = await ctx.journal.session(info.id);
    const dead = new Set(sj.graph.deadRecords(sj.seqs));
    if (!ctx.values.json) await out.line(ctx.p.title(`session ${info.n} ${info.id}`));
    let shown = 0;
    for await (const r of sj.records()) {
      const f = sj.graph.functionOf(r);
      if (!keep(f, r)) continue;
      shown++;
      await out.line(ctx.values.json ? JSON.stringify(recordJson(spec, info.n, r)) : formatRecord(f, r, ctx.p, dead.has(r.seq)));
    }
    if (!ctx.values.json) await out.line(ctx.p.dim(`(${shown} of ${sj.seqs.size} records)`));
  }
  await out.end();
}

async function stats(ctx: Context): Promise<void> {
  const db = ctx.journal.db;
  const rows = [];
  for (const info of ctx.sessions) {
    const sj = await ctx.journal.session(info.id);
    const live = sj.graph.liveObjects();
    const deadRecords = new Set(sj.graph.deadRecords(sj.seqs));
    const deadObjects = [...sj.graph.nodes.keys()].filter((id) => !live.has(id));
    const functions: Record<string, number> = {};
    let valueBytes = 0;
    let storedBytes = 0;
    let savings = 0;
    for await (const r of sj.records()) {
      const name = sj.graph.functionOf(r).name;
      functions[name] = (functions[name] ?? 0) + 1;
    }
    for await (const [key, value] of db.iterator(keys.records(info.n))) {
      valueBytes += value.byteLength;
      storedBytes += key.byteLength + value.byteLength;
      if (deadRecords.has(seqOfKey(key))) savings += key.byteLength + value.byteLength;
    }
    const objects = await rangeSize(db, keys.objects(info.n));
    for (const id of deadObjects) {
      const key = keys.object(info.n, id);
      const value = await db.get(key);
      if (value) savings += key.byteLength + value.byteLength;
    }
    const records = sj.seqs.size;
    const base = storedBytes + objects.keyBytes + objects.valueBytes;
    rows.push({
      n: info.n, id: info.id, records,
      functions: Object.fromEntries(Object.entries(functions).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
      objects: { total: sj.graph.nodes.size, live: live.size, dead: deadObjects.length },
      valueBytes: { total: valueBytes, perRecord: records === 0 ? 0 : Math.round((valueBytes / records) * 10) / 10 },
      compaction: { deadRecords: deadRecords.size, deadObjects: deadObjects.length, bytes: savings, ratio: base === 0 ? 0 : Math.round((savings / base) * 1000) / 1000 },
      timings: await countKeys(db, keys.timings(info.n)),
      checkpoints: (await sj.checkpoints()).length,
    });
  }
  if (ctx.values.json) {
    process.stdout.write(`${JSON.stringify({ journal: ctx.path, spec: ctx.journal.meta.spec, sessions: rows }, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(ctx.p.title(`session ${r.n} ${r.id}`));
    lines.push(`  records: ${r.records}, value bytes ${r.valueBytes.total} (${r.valueBytes.perRecord} per record on average)`);
    const width = Math.max(0, ...Object.keys(r.functions).map((k) => k.length));
    for (const [name, count] of Object.entries(r.functions)) lines.push(`    ${ctx.p.fn(name.padEnd(width))}  ${String(count).padStart(7)}`);
    lines.push(`  objects: ${r.objects.total} (${ctx.p.good(`${r.objects.live} live`)}, ${r.objects.dead} dead)`);
    lines.push(`  compact would delete ${r.compaction.deadRecords} records and ${r.compaction.deadObjects} objects, saving about ${formatBytes(r.compaction.bytes)} (${Math.round(r.compaction.ratio * 100)}% of records and objects)`);
    lines.push(`  timings: ${r.timings} calls; checkpoints: ${r.checkpoints}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

const dotId = (n: number, id: number): string => `"s${n}_${id}"`;
const dotText = (s: string): string => s.replace(/["\\]/g, (c) => `\\${c}`);

async function graph(ctx: Context): Promise<void> {
  const out = LineWriter.open(ctx.values.out as string | undefined);
  await out.line('digraph journal {');
  await out.line('  rankdir=BT;');
  await out.line('  node [shape=box, fontname="monospace"];');
  for (const info of ctx.sessions) {
    const sj = await ctx.journal.session(info.id);
    const live = sj.graph.liveObjects();
    await out.line(`  subgraph "cluster_s${info.n}" {`);
    await out.line(`    label="${dotText(`session ${info.n} ${info.id}`)}";`);
    const nodes = [...live].sort((a, b) => a - b).map((id) => sj.graph.nodes.get(id)!);
    for (const node of nodes) await out.line(`    ${dotId(info.n, node.id)} [label="${dotText(`${node.kind}#${node.id}`)}"];`);
    await out.line('  }');
    for (const node of nodes) {
      for (const parent of node.parents) if (live.has(parent)) await out.line(`  ${dotId(info.n, node.id)} -> ${dotId(info.n, parent)} [label="parent"];`);
      for (const [key, config] of node.configs) {
        for (const dep of config.deps) if (live.has(dep)) await out.line(`  ${dotId(info.n, node.id)} -> ${dotId(info.n, dep)} [label="${dotText(key)}", style=dashed];`);
      }
    }
  }
  await out.line('}');
  await out.end();
}

async function exportRecords(ctx: Context): Promise<void> {
  const keep = recordFilter(ctx);
  const spec = ctx.journal.spec;
  const out = LineWriter.open(ctx.values.out as string | undefined);
  const progress = await progressFor(ctx, keys.records);
  try {
    for (const info of ctx.sessions) {
      const sj = await ctx.journal.session(info.id);
      for await (const r of sj.records()) {
        progress?.tick();
        if (keep(sj.graph.functionOf(r), r)) await out.line(JSON.stringify(recordJson(spec, info.n, r)));
      }
    }
  } finally {
    progress?.done();
  }
  await out.end();
}

async function exportTrace(ctx: Context): Promise<void> {
  if (ctx.values.object !== undefined) throw new ConfigError('--object does not apply to export --trace (timings do not carry arguments); use --fn or --session');
  const fnName = ctx.values.fn as string | undefined;
  const spec = ctx.journal.spec;
  if (fnName !== undefined && !spec.fn.has(fnName)) throw new ConfigError(`--fn: ${spec.name} has no function "${fnName}"`);
  const fnIndex = fnName === undefined ? undefined : spec.functions.findIndex((f) => f.name === fnName);
  const origin = Math.min(...ctx.sessions.map((s) => s.started));
  const trace = new TraceBuilder(spec, Number.isFinite(origin) ? origin : 0);
  const progress = await progressFor(ctx, keys.timings, 'calls');
  let calls = 0;
  try {
    for (const info of ctx.sessions) {
      const sj = await ctx.journal.session(info.id);
      trace.session(info.n, info.id);
      for await (const t of sj.timings()) {
        progress?.tick();
        calls++;
        if (fnIndex === undefined || t.fn === fnIndex) trace.call(info.n, t);
      }
    }
  } finally {
    progress?.done();
  }
  if (calls === 0) {
    throw new JournalError('ERR_AVA_JOURNAL_NO_TIMINGS', `the journal ${ctx.path} holds no stage timings${ctx.values.session ? ' for that session' : ''}; record with AVA_JOURNAL_TIMINGS=1 to have them`);
  }
  const out = LineWriter.open(ctx.values.out as string | undefined);
  await out.line(JSON.stringify(trace));
  await out.end();
}

async function verify(ctx: Context): Promise<void> {
  const progress = Progress.wanted() ? new Progress(await countKeys(ctx.journal.db), process.stderr, { unit: 'entries' }) : undefined;
  let report;
  try {
    report = await verifyJournal(ctx.journal, progress);
  } finally {
    progress?.done();
  }
  if (ctx.values.json) process.stdout.write(`${JSON.stringify({ journal: ctx.path, ...report }, null, 2)}\n`);
  else {
    const lines: string[] = [];
    for (const p of report.problems) lines.push(`${ctx.p.bad('problem')} ${p.key ?? `session ${p.session ?? '?'}`}: ${p.code}: ${p.message}`);
    for (const w of report.warnings) lines.push(`${ctx.p.dim('warning')} ${w.code}: ${w.message}`);
    const summary = `${report.entries} entries, ${report.sessions.length} session${report.sessions.length === 1 ? '' : 's'}, ${report.sessions.reduce((n, s) => n + s.records, 0)} records`;
    lines.push(report.ok ? `${ctx.p.good('ok')}: ${summary}` : `${ctx.p.bad('FAILED')}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${summary}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (!report.ok) {
    const first = report.problems[0]!;
    throw new JournalError('ERR_AVA_JOURNAL_VERIFY', `${report.problems.length} problem(s); first: ${first.key ?? `session ${first.session}`}: ${first.message}`, {
      details: { problems: report.problems.length, ...(first.key ? { key: first.key } : {}) },
    });
  }
}

async function compact(ctx: Context): Promise<void> {
  const db = ctx.journal.db;
  const progress = await progressFor(ctx, keys.records);
  const rows = [];
  try {
    for (const info of ctx.sessions) {
      const sj = await ctx.journal.session(info.id);
      const sizeOf = async (): Promise<{ records: number; objects: number; bytes: number }> => {
        const r = await rangeSize(db, keys.records(info.n));
        const o = await rangeSize(db, keys.objects(info.n));
        return { records: r.entries, objects: o.entries, bytes: r.keyBytes + r.valueBytes + o.keyBytes + o.valueBytes };
      };
      const before = await sizeOf();
      const result = await sj.compact();
      const after = await sizeOf();
      progress?.tick(result.recordsBefore);
      rows.push({ n: info.n, id: info.id, before, after, recordsDeleted: result.recordsDeleted, objectsDeleted: result.objectsDeleted, diskBytesBefore: result.bytesBefore, diskBytesAfter: result.bytesAfter });
    }
  } finally {
    progress?.done();
  }
  if (ctx.values.json) {
    process.stdout.write(`${JSON.stringify({ journal: ctx.path, sessions: rows }, null, 2)}\n`);
    return;
  }
  const lines = rows.map((r) => {
    const saved = r.before.bytes === 0 ? 0 : Math.round((1 - r.after.bytes / r.before.bytes) * 100);
    return `session ${r.n} ${r.id}: records ${r.before.records} -> ${r.after.records} (${r.recordsDeleted} deleted), objects ${r.before.objects} -> ${r.after.objects}, bytes ${r.before.bytes} -> ${r.after.bytes} (${saved}% saved)`;
  });
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function pack(ctx: Context): Promise<void> {
  const out = resolve(ctx.values.out as string);
  const progress = await progressFor(ctx, keys.records);
  let packed;
  try {
    packed = await packJournal(ctx.journal, ctx.sessions, out, progress);
  } finally {
    progress?.done();
  }
  const lines = packed.map((s) => `session ${s.n} ${s.id}: ${s.records} of ${s.recordsBefore} records, ${s.objects} objects, ${s.chunks} checkpoint chunks, ${formatBytes(s.bytes)}`);
  const total = packed.reduce((n, s) => n + s.bytes, 0);
  lines.push(`packed ${packed.length} session${packed.length === 1 ? '' : 's'} into ${out} (${formatBytes(total)}, no timings)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const COMMANDS: Readonly<Record<Command, (ctx: Context) => Promise<void>>> = {
  ls, show, stats, graph, export: (ctx) => (ctx.values.trace ? exportTrace(ctx) : exportRecords(ctx)), verify, compact, pack,
};

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCli(argv, OPTIONS, true);
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return;
  }
  const [name, ...extra] = positionals;
  if (!Object.hasOwn(COMMANDS, name!)) throw new ConfigError(`unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')} (see ava-journal --help)`);
  const command = name as Command;
  if (extra.length > 0) throw new ConfigError(`unexpected argument "${extra[0]}" after ${command}; see ava-journal --help`);
  for (const flag of Object.keys(values) as (keyof typeof OPTIONS)[]) {
    if (flag !== 'help' && values[flag] !== undefined && !ACCEPTS[command].includes(flag)) {
      throw new ConfigError(`--${flag} does not apply to ${command} (it takes ${ACCEPTS[command].map((f) => `--${f}`).join(', ')})`);
    }
  }
  if (command === 'pack' && typeof values.out !== 'string') throw new ConfigError('pack needs --out <dir>, the new journal folder');
  const path = typeof values.journal === 'string' ? resolve(values.journal) : journalPath();
  const journal = await openJournalForTool(path);
  try {
    const sessions = await pickSessions(journal, values.session as string | undefined);
    const p = palette(process.stdout.isTTY === true && !noColor());
    await COMMANDS[command]({ journal, path, sessions, values, p });
  } finally {
    await journal.close();
  }
}
