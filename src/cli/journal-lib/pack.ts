/**
 * `ava-journal pack`: a self-contained copy of a journal for another host, compacted on the way: `meta`, and for
 * each session its name, info, live records, live objects and the checkpoint chunks of live objects, copied as stored
 * (byte for byte, checksums included). Stage timings stay behind: they are history, not what replay needs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { Level } from 'level';
import { chunkOfKey, keys, seqOfKey } from '../../../journal/format.js';
import { JournalError } from '../../../journal/journal.js';
import type { Journal, JournalDb, SessionInfo } from '../../../journal/journal.js';
import type { Progress } from './progress.js';

/** What {@link packJournal} copied, per session. */
export interface PackedSession {
  readonly n: number;
  readonly id: string;
  readonly recordsBefore: number;
  readonly records: number;
  readonly objects: number;
  readonly chunks: number;
  readonly bytes: number;
}

function objectIdOfKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset + key.byteLength - 8, 8).getBigUint64(0) - (1n << 63n));
}

/**
 * Writes the packed copy of `sessions` of `journal` into a new LevelDB folder `out`.
 * @throws {JournalError} `ERR_AVA_JOURNAL_EXISTS` when `out` exists and is not an empty folder.
 */
export async function packJournal(journal: Journal, sessions: readonly SessionInfo[], out: string, progress?: Progress): Promise<PackedSession[]> {
  if (existsSync(out) && readdirSync(out).length > 0) {
    throw new JournalError('ERR_AVA_JOURNAL_EXISTS', `${out} exists and is not empty; pack writes a new journal folder`, { details: { path: out } });
  }
  const target = new Level<Uint8Array, Uint8Array>(out, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: true }) as unknown as JournalDb;
  await target.open();
  const result: PackedSession[] = [];
  try {
    let ops: { type: 'put'; key: Uint8Array; value: Uint8Array }[] = [];
    let bytes = 0;
    const put = async (key: Uint8Array, value: Uint8Array): Promise<void> => {
      ops.push({ type: 'put', key, value });
      bytes += key.byteLength + value.byteLength;
      if (ops.length >= 1000) { await target.batch(ops as never); ops = []; }
    };
    const copy = async (key: Uint8Array): Promise<void> => {
      const value = await journal.db.get(key);
      if (value !== undefined) await put(key, value);
    };
    await copy(keys.meta);
    for (const info of sessions) {
      const sj = await journal.session(info.id);
      const live = sj.graph.liveObjects();
      const liveRecords = new Set(sj.graph.liveRecords(live));
      const start = bytes;
      await copy(keys.sessionName(info.id));
      await copy(keys.info(info.n));
      let recordsBefore = 0;
      let records = 0;
      for await (const [key, value] of journal.db.iterator(keys.records(info.n))) {
        recordsBefore++;
        progress?.tick();
        if (!liveRecords.has(seqOfKey(key))) continue;
        records++;
        await put(key, value);
      }
      let objects = 0;
      for await (const [key, value] of journal.db.iterator(keys.objects(info.n))) {
        if (!live.has(objectIdOfKey(key))) continue;
        objects++;
        await put(key, value);
      }
      let chunks = 0;
      for await (const [key, value] of journal.db.iterator(keys.checkpoints(info.n))) {
        if (!live.has(chunkOfKey(key).id)) continue;
        chunks++;
        await put(key, value);
      }
      result.push({ n: info.n, id: info.id, recordsBefore, records, objects, chunks, bytes: bytes - start });
    }
    if (ops.length > 0) await target.batch(ops as never, { sync: true } as never);
  } finally {
    await target.close();
  }
  return result;
}
