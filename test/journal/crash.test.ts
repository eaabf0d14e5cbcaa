/**
 * A journal survives kill -9 as a consistent prefix, and damage is reported with its key, never skipped.
 *
 * - A child process (./crash-child.ts) journals a toyacc session with durability `batch`; it is SIGKILLed after a
 *   random 0.2-1.5 s. Every stored record then decodes, the records are exactly the child's calls from seq 0 up to
 *   some last seq with no gap, and that last seq is at least the seq of the last waiting call the child saw return
 *   (`batch`: records are written before a waiting call returns). `ava-journal verify` accepts the journal (when the
 *   CLI exists; else the library reads all records and objects).
 * - A flipped byte in a stored record, object or checkpoint chunk is `ERR_AVA_JOURNAL_CORRUPT` with `details.key`
 *   naming that entry.
 *
 * node --import tsx test/journal/crash.test.ts
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { test as uvuTest } from 'uvu';
import { boundedTest } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { toyaccSpec } from '../../src/apis/toyacc/spec.js';
import { AvaError } from '../../src/errors.js';
import { decodeRecord, decodeValue, formatKey, keys } from '../../journal/format.js';
import { Journal, SessionJournal } from '../../journal/journal.js';
import { expectedCall, SESSION_ID } from './crash-child.js';
import { all, rejectsWith, SAMPLE } from './store-contract.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const CLI = join(ROOT, 'src/cli/run-journal.ts');
const TEST_TIMEOUT_MS = 90_000;
const KILLS = 3;
const MAX_CALLS = 400_000; // ~10 s of calls: the kill always lands while the child writes

const tmp = mkdtempSync(join(tmpdir(), 'ava-journal-crash-'));
const children = new Set<ReturnType<typeof spawn>>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});
let folders = 0;
const folder = (): string => join(tmp, `j${folders++}`);

const test = boundedTest(TEST_TIMEOUT_MS);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the CLI's verify on `path` when the CLI exists: its exit code and output; null when there is no CLI yet. */
function cliVerify(path: string): { status: number | null; output: string } | null {
  if (!existsSync(CLI)) return null;
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'verify', '--journal', path], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface Killed {
  /** Seqs of the waiting calls the child saw return (complete lines only). */
  readonly returned: number[];
  readonly delayMs: number;
  readonly signal: NodeJS.Signals | null;
  readonly done: boolean;
}

/** Starts the child, waits for `ready`, lets it write for `delayMs`, then SIGKILLs it. */
async function runAndKill(path: string, delayMs: number): Promise<Killed> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, path, String(MAX_CALLS), 'batch'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  try {
    const readyBy = Date.now() + 30_000;
    while (!out.includes('ready\n')) {
      if (Date.now() > readyBy || child.exitCode !== null) throw new Error(`the child did not start: ${err}`);
      await sleep(10);
    }
    await sleep(delayMs);
    child.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const signal = await Promise.race([exited, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the killed child did not exit within 10 s')), 10_000);
    })]).finally(() => clearTimeout(timer));
    const lines = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => /^\d+$/.test(l));
    return { returned: lines.map(Number), delayMs, signal, done: out.includes('done\n') };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.delete(child);
  }
}

test(`kill -9 while journaling (batch): ${KILLS} times, the journal is a verified prefix of what was written`, async () => {
  for (let i = 0; i < KILLS; i++) {
    const path = folder();
    const delayMs = 200 + Math.floor(Math.random() * 1300);
    const killed = await runAndKill(path, delayMs);
    const what = `kill ${i} after ${delayMs} ms`;
    assert.is(killed.signal, 'SIGKILL', `${what}: the child died by SIGKILL`);
    assert.not.ok(killed.done, `${what}: the child was still writing`);
    assert.ok(killed.returned.length > 0, `${what}: the child returned from waiting calls before the kill`);
    const lastReturned = killed.returned[killed.returned.length - 1]!;

    const journal = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
    let last = -1;
    try {
      assert.equal((await journal.sessions()).map((s) => s.id), [SESSION_ID]);
      const sj = await journal.session(SESSION_ID); // loads: every record is checked on the way
      const names = toyaccSpec.functions.map((f) => f.name);
      for await (const r of sj.records()) {
        assert.is(r.seq, last + 1, `${what}: records are contiguous (after ${last} comes ${r.seq})`);
        last = r.seq;
        const want = expectedCall(r.seq);
        assert.is(names[r.fn], want.fn, `${what}: record ${r.seq}`);
        if (want.target !== null) assert.is(r.args[0], want.target, `${what}: record ${r.seq} names handle ${want.target}`);
      }
      assert.ok(last >= lastReturned, `${what}: the last record (${last}) is at or after the last waiting call that returned (${lastReturned})`);
      const objects = await all(sj.objects());
      assert.ok(objects.some((o) => o.id === 4 && o.kind === 'buffer'), `${what}: the buffer's object is stored`);
      assert.ok(sj.graph.liveObjects().has(4), `${what}: the buffer is live in the rebuilt graph`);
    } finally {
      await journal.close();
    }
    const cli = cliVerify(path);
    if (cli) assert.is(cli.status, 0, `${what}: ava-journal verify: ${cli.output}`);
    console.log(`  ${what}: ${last + 1} records, last returned waiting call #${lastReturned}${cli ? ', ava-journal verify ok' : ' (no ava-journal CLI yet: checked with the library)'}`);
  }
});

/** Writes a small journal (SAMPLE, plus a checkpoint) and returns where. */
async function smallJournal(): Promise<{ path: string; n: number }> {
  const path = folder();
  const j = await Journal.open({ path, spec: toyaccSpec, durability: 'sync' });
  const s = await j.session('s');
  for (const r of SAMPLE) s.append(r);
  await s.writeCheckpoint(new Map([[5, new Uint8Array(3000).fill(7)]]), 1024);
  const n = s.n;
  await j.close();
  return { path, n };
}

/** Flips one bit of the value at `key` (byte `at`, counted from the end when negative) in the store at `path`. */
async function damage(path: string, key: Uint8Array, at: number): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const value = await db.get(key);
    if (value === undefined) throw new Error(`no entry ${formatKey(key)}`);
    const copy = Uint8Array.from(value);
    const i = at < 0 ? copy.byteLength + at : at;
    copy[i] = copy[i]! ^ 0x10;
    await db.put(key, copy);
  } finally {
    await db.close();
  }
}

test('a flipped byte in a record: reading the session rejects with ERR_AVA_JOURNAL_CORRUPT naming the key', async () => {
  for (const at of [0, 6, -1]) { // in the checksum, in the CBOR body, at the end
    const { path, n } = await smallJournal();
    const key = keys.record(n, 6);
    await damage(path, key, at);
    const journal = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
    try {
      const e = await rejectsWith(journal.session('s'), 'ERR_AVA_JOURNAL_CORRUPT');
      assert.is(e.details.key, formatKey(key), `byte ${at}: the error names the damaged record`);
      const records = new SessionJournal(journal, 's', n).records();
      const e2 = await rejectsWith(all(records), 'ERR_AVA_JOURNAL_CORRUPT');
      assert.is(e2.details.key, formatKey(key));
    } finally {
      await journal.close();
    }
    const cli = cliVerify(path);
    if (cli) {
      assert.is.not(cli.status, 0, `ava-journal verify must fail on a damaged record: ${cli.output}`);
      assert.ok(cli.output.includes(formatKey(key)) || cli.output.includes('ERR_AVA_JOURNAL_CORRUPT'), `verify names the damage: ${cli.output}`);
    }
  }
});

test('a flipped byte in a stored object or a checkpoint chunk is reported with its key', async () => {
  const { path, n } = await smallJournal();
  const objectKey = keys.object(n, 8);
  const chunkKey = keys.chunk(n, 1, 5, 1);
  await damage(path, objectKey, 5);
  await damage(path, chunkKey, -3);
  const journal = await Journal.open({ path, spec: toyaccSpec, mustExist: true });
  try {
    const s = await journal.session('s');
    const e = await rejectsWith(all(s.objects()), 'ERR_AVA_JOURNAL_CORRUPT');
    assert.is(e.details.key, formatKey(objectKey));
    const e2 = await rejectsWith(s.readCheckpoint(1), 'ERR_AVA_JOURNAL_CORRUPT');
    assert.is(e2.details.key, formatKey(chunkKey));
  } finally {
    await journal.close();
  }
});

test('every single-bit flip of a record value is detected (checksum), and a record under another seq\'s key too', async () => {
  const { path, n } = await smallJournal();
  const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const key = keys.record(n, 9);
    const value = (await db.get(key))!;
    assert.is(decodeRecord(key, value).seq, 9);
    for (let i = 0; i < value.byteLength; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Uint8Array.from(value);
        copy[i] = copy[i]! ^ (1 << bit);
        try {
          decodeRecord(key, copy);
        } catch (error) {
          assert.ok(AvaError.isAvaError(error) && error.code === 'ERR_AVA_JOURNAL_CORRUPT', String(error));
          continue;
        }
        assert.unreachable(`byte ${i} bit ${bit} flipped went unnoticed`);
      }
    }
    // A whole, valid value moved under another key (a misdirected write) is caught by the seq inside.
    const other = keys.record(n, 10);
    const e = await rejectsWith(() => decodeRecord(other, value), 'ERR_AVA_JOURNAL_CORRUPT');
    assert.is(e.details.key, formatKey(other));
    assert.throws(() => decodeValue(key, value.subarray(0, 4)));
  } finally {
    await db.close();
  }
});

uvuTest.run();
