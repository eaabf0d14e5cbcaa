/**
 * How the offline journal tools reach a journal: its spec is read from the journal's own `meta` (so a user never
 * names it), the store's failures become coded errors that say what to do, and sessions are picked by number, id or
 * id prefix.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { loadSpec, SPEC_NAMES } from '../../apis/registry.js';
import { AvaError } from '../../errors.js';
import type { ApiSpec } from '../../spec/types.js';
import { decodeValue, keys } from '../../../journal/format.js';
import { Journal, JournalError } from '../../../journal/journal.js';
import type { JournalDb, JournalMeta, SessionInfo } from '../../../journal/journal.js';

function storeCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } };
  return e.cause?.code ?? e.code;
}

/** The coded error for a store another process holds (`ERR_AVA_JOURNAL_LOCKED`). */
export function lockedError(path: string, cause: unknown): JournalError {
  return new JournalError(
    'ERR_AVA_JOURNAL_LOCKED',
    `the journal ${path} is locked by another process (LEVEL_LOCKED): stop the process that writes it, or copy the folder and point --journal at the copy`,
    { cause, details: { path } },
  );
}

/**
 * Checks that `path` holds a LevelDB store before anything opens it (opening would otherwise create one).
 * @throws {JournalError} `ERR_AVA_JOURNAL_MISSING`.
 */
export function assertStoreFolder(path: string): void {
  if (!existsSync(path)) throw new JournalError('ERR_AVA_JOURNAL_MISSING', `no journal at ${path}: the folder does not exist`, { details: { path } });
  if (!statSync(path).isDirectory() || !existsSync(join(path, 'CURRENT'))) {
    throw new JournalError('ERR_AVA_JOURNAL_MISSING', `no journal at ${path}: not a LevelDB folder`, { details: { path } });
  }
}

/**
 * Reads a journal's `meta` without knowing its spec: opens the store, reads `meta`, closes it.
 * @throws {JournalError} `ERR_AVA_JOURNAL_MISSING` (no folder, no store, or a store without `meta`),
 * `ERR_AVA_JOURNAL_LOCKED`, `ERR_AVA_JOURNAL_OPEN`; {@link JournalCorruptError} for a damaged `meta`.
 */
export async function readJournalMeta(path: string): Promise<JournalMeta> {
  assertStoreFolder(path);
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  try {
    await db.open();
  } catch (error) {
    if (storeCode(error) === 'LEVEL_LOCKED') throw lockedError(path, error);
    throw new JournalError('ERR_AVA_JOURNAL_OPEN', `cannot open the journal ${path}: ${(error as Error).message}`, { cause: error, details: { path } });
  }
  try {
    const bytes = await db.get(keys.meta);
    if (bytes === undefined) throw new JournalError('ERR_AVA_JOURNAL_MISSING', `no journal at ${path}: the store has no meta entry`, { details: { path } });
    const meta = decodeValue(keys.meta, bytes) as Partial<JournalMeta> | null;
    if (!meta || typeof meta !== 'object' || typeof meta.spec !== 'string' || typeof meta.hash !== 'string' || typeof meta.format !== 'number') {
      throw new JournalError('ERR_AVA_JOURNAL_FORMAT', `the meta entry of ${path} is not a journal header`, { details: { path } });
    }
    return meta as JournalMeta;
  } finally {
    await db.close();
  }
}

/** The spec a journal records, by the name in its `meta`. @throws {JournalError} `ERR_AVA_JOURNAL_SPEC` for a spec not shipped. */
export async function specOfJournal(meta: JournalMeta): Promise<ApiSpec> {
  if (!SPEC_NAMES.includes(meta.spec)) {
    throw new JournalError('ERR_AVA_JOURNAL_SPEC', `the journal records the spec "${meta.spec}", which this version does not ship (it ships ${SPEC_NAMES.join(', ')})`, {
      details: { recorded: meta.spec, hash: meta.hash },
    });
  }
  return loadSpec(meta.spec);
}

/**
 * Opens an existing journal for a tool, with the spec its `meta` names.
 * @throws {JournalError} see {@link readJournalMeta}, {@link specOfJournal} and `Journal.open`.
 */
export async function openJournalForTool(path: string): Promise<Journal> {
  const spec = await specOfJournal(await readJournalMeta(path));
  try {
    return await Journal.open({ path, spec, mustExist: true });
  } catch (error) {
    if (AvaError.isAvaError(error) && error.code === 'ERR_AVA_JOURNAL_LOCKED') throw lockedError(path, error);
    throw error;
  }
}

/**
 * The sessions `selector` names: all of them when absent; else a session number (`2`), an id, or an unambiguous id
 * prefix.
 * @throws {JournalError} `ERR_AVA_JOURNAL_SESSION` when none or several match.
 */
export async function pickSessions(journal: Journal, selector: string | undefined): Promise<SessionInfo[]> {
  const all = await journal.sessions();
  if (selector === undefined) return all;
  const wanted = selector.trim();
  const byNumber = /^\d+$/.test(wanted) ? all.filter((s) => s.n === Number(wanted)) : [];
  if (byNumber.length === 1) return byNumber;
  const exact = all.filter((s) => s.id === wanted);
  if (exact.length === 1) return exact;
  const prefixed = all.filter((s) => s.id.startsWith(wanted));
  if (prefixed.length === 1) return prefixed;
  const known = all.map((s) => `${s.n} ${s.id}`).join(', ') || 'none';
  throw new JournalError('ERR_AVA_JOURNAL_SESSION', prefixed.length > 1
    ? `--session ${wanted} matches ${prefixed.length} sessions (${prefixed.map((s) => s.id).join(', ')}); give more of the id`
    : `no session ${wanted} in the journal (sessions: ${known})`, { details: { session: wanted } });
}

/** Entries and bytes (keys plus values, as stored) of a key range. */
export interface RangeSize {
  entries: number;
  keyBytes: number;
  valueBytes: number;
}

/** Counts the entries and bytes of a key range. */
export async function rangeSize(db: JournalDb, range: { gte: Uint8Array; lt: Uint8Array }): Promise<RangeSize> {
  const size: RangeSize = { entries: 0, keyBytes: 0, valueBytes: 0 };
  for await (const [key, value] of db.iterator(range)) {
    size.entries++;
    size.keyBytes += key.byteLength;
    size.valueBytes += value.byteLength;
  }
  return size;
}

/** Counts the keys of a range (or of the whole store). */
export async function countKeys(db: JournalDb, range: { gte?: Uint8Array; lt?: Uint8Array } = {}): Promise<number> {
  let n = 0;
  for await (const _ of db.keys(range)) n++;
  return n;
}
