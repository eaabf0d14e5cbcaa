/**
 * The format guard: the golden journal of format v1 (test/fixtures/journal/golden-v1, written once by
 * make-golden.ts from a real toyacc session) must read back with the current code exactly as recorded in
 * golden-v1.expected.json, and every stored entry must re-encode to the very bytes stored. A change to the record
 * encoding, the key layout, the checksum or the decoder that would break old journals fails here.
 *
 * node --import tsx test/journal/golden.test.ts
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import type { ApiSpec } from '../../src/spec/types.js';
import type { StoredObject } from '../../journal/format.js';
import {
  FORMAT_VERSION, chunkOfKey, decodeRecord, decodeTimings, decodeValue, encodeRecord, encodeTimings, encodeValue, formatKey, keys, seqOfKey, text,
} from '../../journal/format.js';
import { Journal } from '../../journal/journal.js';
import { decodeJournal } from '../fixtures/journal/golden.js';


const fixtures = fileURLToPath(new URL('../fixtures/journal/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'ava-golden-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh copy of the golden folder (opening a LevelDB store writes to it; the fixture stays untouched). */
function copyOfGolden(name: string): string {
  const path = join(tmp, `${name}-${Math.random().toString(36).slice(2)}`);
  cpSync(join(fixtures, 'golden-v1'), path, { recursive: true });
  return path;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

interface Expected {
  meta: { format: number; spec: string; hash: string };
  sessions: { records: { fn: number; name: string }[]; objects: unknown[]; timings: { fn: number }[] }[];
}
const expected = JSON.parse(readFileSync(join(fixtures, 'golden-v1.expected.json'), 'utf8')) as Expected;

/**
 * The toyacc spec under the hash the golden journal recorded. The spec's hash covers all of its data (a new flag on
 * a function changes it), and a journal of another hash is refused, as it must be in use; but this suite guards the
 * *format*, so it reads the golden journal with today's toyacc spec as long as the function indices the records
 * carry still name the same functions (checked in the first test).
 */
const recordedSpec: ApiSpec = { ...toyaccSpec, hash: expected.meta.hash };

test('the golden journal is format v1, and its function indices still name the same toyacc functions', () => {
  assert.is(expected.meta.format, 1);
  assert.is(FORMAT_VERSION, 1, 'a new format version needs its own golden journal (make-golden.ts) beside golden-v1');
  assert.is(expected.meta.spec, 'toyacc');
  const records = expected.sessions.flatMap((s) => s.records);
  assert.ok(records.length > 0);
  for (const r of records) assert.is(toyaccSpec.functions[r.fn]?.name, r.name, `function index ${r.fn}`);
  for (const t of expected.sessions.flatMap((s) => s.timings)) assert.ok(toyaccSpec.functions[t.fn], `timings' function index ${t.fn}`);
});

test('the golden journal decodes with the current code exactly as recorded', async () => {
  const decoded = JSON.parse(JSON.stringify(await decodeJournal(copyOfGolden('decode'), recordedSpec))) as unknown;
  assert.equal(decoded, expected);
});

test('the golden journal has what it is meant to guard: live and dead records, a chunked checkpoint, timings', async () => {
  const journal = await Journal.open({ path: copyOfGolden('shape'), spec: recordedSpec, mustExist: true });
  try {
    const [info] = await journal.sessions();
    assert.ok(info, 'one session');
    const sj = await journal.session(info.id);
    const live = sj.graph.liveObjects();
    assert.ok(live.size >= 5, `live objects: ${[...live].join(',')}`);
    assert.ok(sj.graph.deadRecords(sj.seqs).length > 0, 'dead records');
    assert.ok(sj.graph.liveRecords().length > 1, 'live records');
    assert.equal(await sj.checkpoints(), [1]);
    const state = await sj.readCheckpoint(1);
    assert.is(state.size, 1);
    const [[id, bytes]] = [...state];
    assert.ok(live.has(id), 'the checkpointed buffer is live');
    assert.is(bytes.byteLength, 64);
    let chunks = 0;
    for await (const _ of journal.db.keys(keys.checkpoint(sj.n, 1))) chunks++;
    assert.is(chunks, 2, 'the state is stored in two chunks');
    let timings = 0;
    for await (const _ of sj.timings()) timings++;
    assert.ok(timings > sj.seqs.size, `timings of every call (${timings}), not only the journaled ones (${sj.seqs.size})`);
  } finally {
    await journal.close();
  }
});

test('every stored entry re-encodes to the bytes stored, under the key the key builders make', async () => {
  const db = new Level<Uint8Array, Uint8Array>(copyOfGolden('bytes'), { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: false });
  await db.open();
  const counts: Record<string, number> = {};
  const count = (kind: string): void => { counts[kind] = (counts[kind] ?? 0) + 1; };
  try {
    for await (const [key, value] of db.iterator()) {
      const name = formatKey(key);
      if (name === 'meta') {
        assert.ok(same(encodeValue(decodeValue(key, value)), value), 'meta');
        count('meta');
        continue;
      }
      if (name.startsWith('n!')) {
        assert.ok(same(keys.sessionName(text(key.subarray(2))), key));
        assert.ok(same(encodeValue(decodeValue(key, value)), value), name);
        count('name');
        continue;
      }
      const m = /^s!(\d+)!([a-z])/.exec(name);
      assert.ok(m, `unexpected key ${name}`);
      const n = Number(m[1]);
      switch (m[2]) {
        case 'i':
          assert.ok(same(keys.info(n), key));
          assert.ok(same(encodeValue(decodeValue(key, value)), value), name);
          count('info');
          break;
        case 'r': {
          const record = decodeRecord(key, value);
          assert.ok(same(keys.record(n, record.seq), key), name);
          assert.ok(same(encodeRecord(record), value), `record ${record.seq} re-encodes differently`);
          count('record');
          break;
        }
        case 'o': {
          const object = decodeValue(key, value) as StoredObject;
          assert.ok(same(keys.object(n, object.id), key), name);
          assert.ok(same(encodeValue(object), value), `object ${object.id} re-encodes differently`);
          count('object');
          break;
        }
        case 'k': {
          const { checkpoint, id, chunk } = chunkOfKey(key);
          assert.ok(same(keys.chunk(n, checkpoint, id, chunk), key), name);
          assert.ok(same(encodeValue(decodeValue(key, value)), value), `chunk ${name} re-encodes differently`);
          count('chunk');
          break;
        }
        case 't': {
          const t = decodeTimings(key, value);
          assert.is(t.seq, seqOfKey(key));
          assert.ok(same(keys.timing(n, t.seq), key), name);
          assert.ok(same(encodeTimings(t.fn, t.stages), value), `timings ${t.seq} re-encode differently`);
          count('timings');
          break;
        }
        default:
          assert.unreachable(`unexpected key ${name}`);
      }
    }
  } finally {
    await db.close();
  }
  const [s] = expected.sessions;
  assert.equal(counts, { meta: 1, name: 1, info: 1, record: s!.records.length, object: s!.objects.length, chunk: 2, timings: s!.timings.length });
});

test.run();
