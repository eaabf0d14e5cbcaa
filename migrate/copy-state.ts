/**
 * Moving explicit state from a source worker to a target worker in chunks, each written into the target's object
 * and read back there against the checksum taken at extraction.
 *
 * Where the target worker listens on a socket, the source worker streams the state to it directly (one hop, chunk
 * buffers reused: `src/worker/state-stream.ts`); the guest only hands the source a one-time intake token of the
 * target. Otherwise (an in-process worker as the target, or a source that cannot reach the target's address) the state
 * is relayed through the guest, the next chunk read from the source while the current one is written on the target.
 */
import { crc32 } from 'node:zlib';
import type { Channel } from '../src/transport/channel.js';
import type { StateCopyItem } from '../src/wire/frames.js';
import { DEFAULT_STATE_CHUNK_BYTES, isReleasedError, segmentsOf } from '../src/worker/state-stream.js';
import { AvaError } from '../src/errors.js';

/**
 * What a copy did: objects and bytes, the time spent waiting for the source's reads and the rest of the copy (target
 * writes and checks), and whether it went straight from worker to worker.
 */
export interface CopyStats {
  objects: number;
  bytes: number;
  extractMs: number;
  restoreMs: number;
  direct: boolean;
  /** Objects skipped because the application released them during the copy (with `skipReleased`). */
  skipped: number[];
}

/** Options of {@link moveState}. */
export interface MoveStateOptions {
  readonly chunkBytes?: number;
  /**
   * The application keeps running (pre-copy's live phase): skip objects it releases meanwhile, and name them in
   * `skipped`, instead of failing the copy.
   */
  readonly skipReleased?: boolean;
}

/** Copies the whole state of `ids` (objects in `held` were released by the application but are held by live ones). */
export function copyStates(
  source: Channel, target: Channel, ids: Iterable<number>, held: ReadonlySet<number>, options: MoveStateOptions = {},
): Promise<CopyStats> {
  return moveState(source, target, wholeItems(ids, held), options);
}

/** What to copy of objects copied whole. */
export function wholeItems(ids: Iterable<number>, held: ReadonlySet<number>): StateCopyItem[] {
  return [...ids].map((id) => (held.has(id) ? { id, held: true } : { id }));
}

/** What to copy of objects of which only byte ranges (regions written since a first copy) are copied: merged ranges. */
export function rangeItems(objects: Iterable<readonly [number, readonly (readonly [number, number])[]]>, held: ReadonlySet<number>): StateCopyItem[] {
  const items: StateCopyItem[] = [];
  for (const [id, ranges] of objects) {
    const merged: [number, number][] = [];
    for (const [offset, size] of [...ranges].sort((a, b) => a[0] - b[0])) {
      const last = merged[merged.length - 1];
      if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + size - last[0]);
      else merged.push([offset, size]);
    }
    items.push({ id, ranges: merged, ...(held.has(id) ? { held: true } : {}) });
  }
  return items;
}

/** Moves the state of `items`: straight from worker to worker where the target can be reached, else through here. */
export async function moveState(source: Channel, target: Channel, items: readonly StateCopyItem[], options: MoveStateOptions = {}): Promise<CopyStats> {
  if (items.length === 0) return { objects: 0, bytes: 0, extractMs: 0, restoreMs: 0, direct: false, skipped: [] };
  const chunkBytes = options.chunkBytes ?? DEFAULT_STATE_CHUNK_BYTES;
  const intake = source.sendState ? await target.openStateIntake?.() : undefined;
  if (intake && source.sendState) {
    const t0 = performance.now();
    try {
      const sent = await source.sendState(intake, items, { chunkBytes, skipReleased: options.skipReleased === true });
      return {
        objects: sent.objects, bytes: sent.bytes, extractMs: sent.extractMs, restoreMs: performance.now() - t0 - sent.extractMs, direct: true, skipped: [...sent.skipped],
      };
    } catch (error) {
      // The source cannot reach the target's address (another network): nothing was written, relay instead.
      if (!(AvaError.isAvaError(error) && error.code === 'ERR_AVA_CONNECT')) throw error;
    }
  }
  return relayState(source, target, items, chunkBytes, options.skipReleased === true);
}

/** Relays state through the guest: the next chunk is read from the source while the current one is written. */
async function relayState(source: Channel, target: Channel, items: readonly StateCopyItem[], chunkBytes: number, skipReleased: boolean): Promise<CopyStats> {
  const stats: CopyStats = { objects: 0, bytes: 0, extractMs: 0, restoreMs: 0, direct: false, skipped: [] };
  objects: for (const item of items) {
    const held = item.held === true;
    for (const [start, size] of segmentsOf(item)) {
      const end = start + size;
      const read = (offset: number): Promise<Uint8Array> => source.extractState(item.id, held, { offset, length: Math.min(chunkBytes, end - offset) });
      let offset = start;
      let next = offset < end ? read(offset) : undefined;
      while (next) {
        const want = Math.min(chunkBytes, end - offset);
        const t0 = performance.now();
        let chunk: Uint8Array;
        try {
          chunk = await next;
        } catch (error) {
          if (!skipReleased || !isReleasedError(error)) throw error;
          stats.skipped.push(item.id);
          continue objects;
        }
        stats.extractMs += performance.now() - t0;
        // An object's first chunk is written even when empty, so that the target restores it.
        if (chunk.byteLength === 0 && offset > 0) break;
        // A full chunk may have a successor: ask for it while this one is written.
        next = chunk.byteLength === want && offset + want < end ? read(offset + want) : undefined;
        const t1 = performance.now();
        await target.restoreState(item.id, chunk, crc32(chunk) >>> 0, held, offset);
        stats.restoreMs += performance.now() - t1;
        offset += chunk.byteLength;
        stats.bytes += chunk.byteLength;
      }
    }
    stats.objects++;
  }
  return stats;
}
