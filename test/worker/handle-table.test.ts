/**
 * HandleTable: guest-issued ids -> native pointers of one session.
 *
 * node --import tsx test/worker/handle-table.test.ts
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AvaError, HandleError } from '../../src/errors.js';
import type { HandleKindSpec } from '../../src/spec/types.js';
import { HandleTable, MAX_HANDLE_ID } from '../../src/worker/handle-table.js';

const KINDS: ReadonlyMap<string, HandleKindSpec> = new Map<string, HandleKindSpec>([
  ['device', { name: 'device', interned: true, invalidStatus: -2 }],
  ['context', { name: 'context', invalidStatus: -3 }],
  ['buffer', { name: 'buffer', invalidStatus: -5 }],
  ['event', { name: 'event', transient: true }],
]);

const table = (): HandleTable => new HandleTable(KINDS);

function codeOf(work: () => unknown): { code: string; error: AvaError } {
  try {
    work();
  } catch (error) {
    assert.ok(AvaError.isAvaError(error), `not an AvaError: ${String(error)}`);
    return { code: (error as AvaError).code, error: error as AvaError };
  }
  assert.unreachable('expected an error');
  throw new Error('unreachable');
}

test('bind then resolve gives the pointer back', () => {
  const t = table();
  assert.is(t.bind(1, 'buffer', 0x1000, true), 1);
  assert.is(t.bind(2, 'context', 0x2000, true), 2);
  assert.is(t.resolve(1, 'buffer', 'test'), 0x1000);
  assert.is(t.resolve(2, 'context', 'test'), 0x2000);
  assert.is(t.kindOf(1), 'buffer');
  assert.is(t.kindOf(3), undefined);
  assert.is(t.refs(1), 1);
});

test('an id never issued is ERR_AVA_UNKNOWN_HANDLE with the kind\'s status', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  const { code, error } = codeOf(() => t.resolve(2, 'buffer', 'test'));
  assert.is(code, 'ERR_AVA_UNKNOWN_HANDLE');
  assert.ok(error instanceof HandleError);
  assert.is(error.details.status, -5);
  assert.is(error.details.id, 2);
  // non-number ids (what a forged frame may hold) are unknown too, never a crash
  for (const id of ['1', null, undefined, { id: 1 }, 1n, Number.NaN]) {
    assert.is(codeOf(() => t.resolve(id, 'buffer', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE', `id ${String(id)}`);
  }
});

test('a kind without invalidStatus gives no status', () => {
  const t = table();
  const { code, error } = codeOf(() => t.resolve(7, 'event', 'test'));
  assert.is(code, 'ERR_AVA_UNKNOWN_HANDLE');
  assert.is(error.details.status, undefined);
});

test('a handle of another kind is ERR_AVA_HANDLE_KIND with the wanted kind\'s status', () => {
  const t = table();
  t.bind(1, 'context', 0x2000, true);
  const { code, error } = codeOf(() => t.resolve(1, 'buffer', 'test'));
  assert.is(code, 'ERR_AVA_HANDLE_KIND');
  assert.is(error.details.status, -5);
  assert.is(error.details.actual, 'context');
});

test('released to zero is ERR_AVA_STALE_HANDLE with details.status = invalidStatus', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  assert.is(t.release(1), true);
  const { code, error } = codeOf(() => t.resolve(1, 'buffer', 'test'));
  assert.is(code, 'ERR_AVA_STALE_HANDLE');
  assert.is(error.details.status, -5);
  assert.is((error as HandleError).status, -5);
  assert.is(t.kindOf(1), 'buffer', 'a tombstone keeps the kind');
  assert.is(t.refs(1), undefined);
  assert.is(t.release(1), false, 'a stale id is not released twice');
});

test('a stale id asked for as another kind is still a kind error (kind is checked first)', () => {
  const t = table();
  t.bind(1, 'context', 0x2000, true);
  t.release(1);
  assert.is(codeOf(() => t.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_HANDLE_KIND');
});

test('retain keeps it alive through one release', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  t.retain(1);
  assert.is(t.refs(1), 2);
  assert.is(t.release(1), false);
  assert.is(t.resolve(1, 'buffer', 'test'), 0x1000);
  assert.is(t.refs(1), 1);
  assert.is(t.release(1), true);
  assert.is(codeOf(() => t.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_STALE_HANDLE');
});

test('retain of a stale or unknown id changes nothing', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  t.release(1);
  t.retain(1);
  t.retain(99);
  assert.is(codeOf(() => t.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_STALE_HANDLE');
  assert.is(codeOf(() => t.resolve(99, 'buffer', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE');
});

test('not refcounted: release never kills it', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, false);
  assert.is(t.refs(1), null);
  assert.is(t.release(1), false);
  assert.is(t.resolve(1, 'buffer', 'test'), 0x1000);
});

test('interned kinds return the existing id for the same pointer', () => {
  const t = table();
  assert.is(t.bind(1, 'device', 0xd0, true), 1);
  assert.is(t.bind(2, 'device', 0xd0, true), 1);
  assert.is(t.bind(3, 'device', 0xd1, true), 3);
  assert.is(t.refs(1), null, 'interned handles are not reference counted');
  assert.is(t.release(1), false);
  assert.is(t.resolve(1, 'device', 'test'), 0xd0);
  assert.is(codeOf(() => t.resolve(2, 'device', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE', 'the proposed id was not bound');
  // even an id that would be invalid is not looked at when the pointer already has one
  assert.is(t.bind(-4, 'device', 0xd1, true), 3);
});

test('a non-interned kind does not merge equal pointers of different kinds', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  t.bind(2, 'context', 0x1000, true);
  assert.is(t.resolve(1, 'buffer', 'test'), 0x1000);
  assert.is(t.resolve(2, 'context', 'test'), 0x1000);
  assert.is(t.idOf('buffer', 0x1000), 1);
  assert.is(t.idOf('context', 0x1000), 2);
});

test('a native pointer re-used after release maps to the new id', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  t.release(1);
  t.bind(2, 'buffer', 0x1000, true);
  assert.is(t.idOf('buffer', 0x1000), 2);
  assert.is(t.resolve(2, 'buffer', 'test'), 0x1000);
  assert.is(codeOf(() => t.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_STALE_HANDLE');
  // releasing the new one leaves the pointer unnamed: idOf assigns a worker id, not the stale 1 or 2
  t.release(2);
  const id = t.idOf('buffer', 0x1000);
  assert.ok(id < 0, `worker id expected, got ${id}`);
});

test('duplicate or non-positive ids are ERR_AVA_BAD_CALL', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, true);
  assert.is(codeOf(() => t.bind(1, 'buffer', 0x3000, true)).code, 'ERR_AVA_BAD_CALL', 'duplicate live id');
  assert.is(codeOf(() => t.bind(1, 'context', 0x3000, true)).code, 'ERR_AVA_BAD_CALL', 'duplicate id of another kind');
  t.release(1);
  assert.is(codeOf(() => t.bind(1, 'buffer', 0x3000, true)).code, 'ERR_AVA_BAD_CALL', 'a released id is never re-used');
  for (const id of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_HANDLE_ID + 1, '7', null, undefined, 7n]) {
    assert.is(codeOf(() => t.bind(id, 'buffer', 0x4000, true)).code, 'ERR_AVA_BAD_CALL', `id ${String(id)}`);
  }
  assert.is(t.bind(MAX_HANDLE_ID, 'buffer', 0x4000, true), MAX_HANDLE_ID);
  // the failed binds left nothing behind
  assert.is(t.idOf('buffer', 0x4000), MAX_HANDLE_ID);
  assert.equal([...t.live()].map((h) => h.id), [MAX_HANDLE_ID]);
});

test('idOf assigns negative worker ids to unknown pointers, once per pointer', () => {
  const t = table();
  t.bind(5, 'context', 0x2000, true);
  assert.is(t.idOf('context', 0x2000), 5, 'a known pointer gives its id');
  assert.is(t.idOf('context', 0), 0, 'NULL stays 0');
  const a = t.idOf('context', 0x2100);
  const b = t.idOf('context', 0x2200);
  assert.is(a, -1);
  assert.is(b, -2);
  assert.is(t.idOf('context', 0x2100), a, 'the same pointer keeps its worker id');
  assert.is(t.resolve(a, 'context', 'test'), 0x2100);
  assert.is(t.kindOf(b), 'context');
  assert.is(t.refs(a), null, 'worker ids are not reference counted');
});

test('interned: idOf before bind gives the worker id, and bind then returns it', () => {
  const t = table();
  const early = t.idOf('device', 0xd0);
  assert.ok(early < 0);
  assert.is(t.bind(1, 'device', 0xd0, true), early);
});

test('drop makes a handle stale', () => {
  const t = table();
  t.bind(1, 'buffer', 0x1000, false);
  t.drop(1);
  assert.is(codeOf(() => t.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_STALE_HANDLE');
  t.drop(42); // unknown: nothing happens
});

test('livePointers and live list live handles in binding order', () => {
  const t = table();
  t.bind(3, 'buffer', 0x3000, true);
  t.bind(1, 'buffer', 0x1000, true);
  t.bind(2, 'context', 0x2000, true);
  t.bind(4, 'buffer', 0x4000, true);
  t.release(1);
  assert.equal(t.livePointers('buffer'), [0x3000, 0x4000]);
  assert.equal(t.livePointers('context'), [0x2000]);
  assert.equal(t.livePointers('device'), []);
  assert.equal([...t.live()], [
    { id: 3, kind: 'buffer', ptr: 0x3000 },
    { id: 2, kind: 'context', ptr: 0x2000 },
    { id: 4, kind: 'buffer', ptr: 0x4000 },
  ]);
});

test('tables are independent', () => {
  const a = table();
  const b = table();
  a.bind(1, 'buffer', 0x1000, true);
  assert.is(codeOf(() => b.resolve(1, 'buffer', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE');
  assert.is(b.bind(1, 'buffer', 0x9000, true), 1);
  assert.is(a.resolve(1, 'buffer', 'test'), 0x1000);
  assert.is(b.resolve(1, 'buffer', 'test'), 0x9000);
});

test('enumerable interned kinds: an object met in an info value gets an id from its place in the list, which another table resolves to its own pointer', () => {
  // Two workers: the same devices at different addresses, listed in the same order.
  const source = new HandleTable(KINDS, (kind) => (kind === 'device' ? [0x1000, 0x2000, 0x3000] : undefined));
  const target = new HandleTable(KINDS, (kind) => (kind === 'device' ? [0x9100, 0x9200, 0x9300] : undefined));
  const id = source.idOf('device', 0x2000);
  assert.ok(id < -(2 ** 32), `an enumerated id, not the worker's counter (${id})`);
  assert.is(source.idOf('device', 0x2000), id, 'the same id every time');
  assert.is(target.resolve(id, 'device', 'test'), 0x9200, 'the second device on the target');
  assert.is(target.idOf('device', 0x9200), id, 'and the target names it the same from then on');
  // A replayed query proposing that id binds the same object under it; a positive id still works as before.
  const replayed = new HandleTable(KINDS, (kind) => (kind === 'device' ? [0x9100, 0x9200, 0x9300] : undefined));
  replayed.checkNewIds([id], 'device');
  assert.is(replayed.bind(id, 'device', 0x9200, false), id);
  assert.is(replayed.bind(7, 'device', 0x9300, false), 7);
  // Not enumerable: the worker's counter, and an id of another kind's range is not a device.
  assert.is(source.idOf('context', 0x5000), -1);
  assert.is(codeOf(() => target.resolve(id - 2 ** 32, 'device', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE');
  assert.is(codeOf(() => target.resolve(-(2 ** 32) * 2 - 9, 'device', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE', 'past the end of the list');
  // A pointer not in the list (a sub-device) falls back to the counter.
  assert.is(source.idOf('device', 0x7777), -2);
});

test('released transient handles (events) are forgotten: the table does not grow with them; recent ones read as stale', () => {
  const t = table();
  const count = 20_000;
  for (let id = 1; id <= count; id++) {
    t.bind(id, 'event', 0x10_0000 + 64 * id, true);
    assert.ok(t.release(id));
  }
  // A released buffer is kept (a kernel may still hold it for a migration); a released event is not.
  t.bind(count + 1, 'buffer', 0x9000, true);
  t.release(count + 1);
  assert.is(codeOf(() => t.resolve(count + 1, 'buffer', 'test')).code, 'ERR_AVA_STALE_HANDLE');
  assert.is(t.resolveHeld(count + 1, 'buffer', 'test'), 0x9000, 'a released buffer can still be read for a migration');
  assert.is(codeOf(() => t.resolve(count, 'event', 'test')).code, 'ERR_AVA_STALE_HANDLE', 'the last event released is reported stale');
  assert.is(t.kindOf(count), 'event');
  assert.is(codeOf(() => t.resolve(1, 'event', 'test')).code, 'ERR_AVA_UNKNOWN_HANDLE', 'the first one is forgotten');
  assert.is(t.kindOf(1), undefined);
  assert.equal([...t.live()], [], 'nothing live');
});

test.run();
