/**
 * The journal store contract (./store-contract.ts) on LevelDB (`level`, classic-level) in temporary folders, plus
 * what only an on-disk store has: opening by path, a missing journal, a store locked by another open, and the sizes
 * compaction reports.
 *
 * node --import tsx test/journal/level-store.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { Journal } from '../../journal/journal.js';
import type { JournalDb } from '../../journal/journal.js';
import { SAMPLE, SAMPLE_LIVE, all, journalContract, rec, rejectsWith } from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'ava-journal-level-'));
process.once('exit', () => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => join(root, `j${folders++}`);

journalContract('level (LevelDB)', async () => new Level<Uint8Array, Uint8Array>(folder(), { keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb);

test('Journal.open({ path }) creates the store, and reopens it with mustExist', async () => {
  const path = folder();
  const j = await Journal.open({ path, spec: toyaccSpec });
  const s = await j.session('s');
  for (const r of SAMPLE) s.append(r);
  await j.close();
  const again = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
  try {
    assert.equal((await all((await again.session('s')).records())).map((r) => r.seq), SAMPLE.map((r) => r.seq));
  } finally {
    await again.close();
  }
});

test('mustExist on an empty folder is ERR_AVA_JOURNAL_MISSING', async () => {
  await rejectsWith(Journal.open({ path: folder(), spec: toyaccSpec, mustExist: true }), 'ERR_AVA_JOURNAL_MISSING');
});

test('a store already open is ERR_AVA_JOURNAL_LOCKED', async () => {
  const path = folder();
  const j = await Journal.open({ path, spec: toyaccSpec });
  try {
    await rejectsWith(Journal.open({ path, spec: toyaccSpec }), 'ERR_AVA_JOURNAL_LOCKED');
  } finally {
    await j.close();
  }
});

test('compaction of LevelDB reports the bytes before and after, and the journal shrinks', async () => {
  const path = folder();
  const j = await Journal.open({ path, spec: toyaccSpec });
  try {
    const s = await j.session('s');
    for (const r of SAMPLE) s.append(r);
    // Many dead records: retain/release pairs of buffer 4 before its final release, and a long source.
    let seq = SAMPLE.length;
    s.append(rec(seq++, 'tq_create_buffer', [3, 0, 64, null, true], 100));
    for (let i = 0; i < 2000; i++) {
      s.append(rec(seq++, 'tq_retain_buffer', [100]));
      s.append(rec(seq++, 'tq_release_buffer', [100]));
    }
    s.append(rec(seq++, 'tq_release_buffer', [100]));
    const result = await s.compact();
    assert.equal((await all(s.records())).map((r) => r.seq), SAMPLE_LIVE);
    assert.ok(result.bytesBefore > 0, `bytesBefore ${result.bytesBefore} counts the session's records`);
    assert.ok(result.bytesAfter < result.bytesBefore, `bytesAfter ${result.bytesAfter} < bytesBefore ${result.bytesBefore}`);
  } finally {
    await j.close();
  }
});

test.run();
