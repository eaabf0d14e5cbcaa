/**
 * Moving explicit state from a source worker to a target worker through the guest, in chunks: the next chunk is
 * read from the source while the current one is written (and checked by its checksum) on the target, so that no
 * allocation is the size of an object and the two workers work at the same time.
 */
import { crc32 } from 'node:zlib';
import type { Channel } from '../src/transport/channel.js';

/** Bytes per chunk. */
export const STATE_CHUNK_BYTES = 8 * 1024 * 1024;

/** What a copy did: objects and bytes, and the time spent waiting for the source and for the target. */
export interface CopyStats {
  objects: number;
  bytes: number;
  extractMs: number;
  restoreMs: number;
}

/** Copies the state of `ids` (objects in `held` were released by the application but are held by live ones). */
export async function copyStates(
  source: Channel, target: Channel, ids: Iterable<number>, held: ReadonlySet<number>, chunkBytes = STATE_CHUNK_BYTES,
): Promise<CopyStats> {
  const stats: CopyStats = { objects: 0, bytes: 0, extractMs: 0, restoreMs: 0 };
  for (const id of ids) {
    const isHeld = held.has(id);
    const read = (offset: number): Promise<Uint8Array> => source.extractState(id, isHeld, { offset, length: chunkBytes });
    let offset = 0;
    let next = read(0);
    for (;;) {
      const t0 = performance.now();
      const chunk = await next;
      stats.extractMs += performance.now() - t0;
      if (chunk.byteLength === 0 && offset > 0) break;
      // A full chunk may have a successor: ask for it while this one is written.
      if (chunk.byteLength === chunkBytes) next = read(offset + chunkBytes);
      const t1 = performance.now();
      await target.restoreState(id, chunk, crc32(chunk) >>> 0, isHeld, offset);
      stats.restoreMs += performance.now() - t1;
      offset += chunk.byteLength;
      stats.bytes += chunk.byteLength;
      if (chunk.byteLength !== chunkBytes) break;
    }
    stats.objects++;
  }
  return stats;
}

/** Copies byte ranges of objects' state (regions written since a first copy), merged and in chunks. */
export async function copyRanges(
  source: Channel, target: Channel, objects: Iterable<readonly [number, readonly (readonly [number, number])[]]>, held: ReadonlySet<number>,
  chunkBytes = STATE_CHUNK_BYTES,
): Promise<CopyStats> {
  const stats: CopyStats = { objects: 0, bytes: 0, extractMs: 0, restoreMs: 0 };
  for (const [id, ranges] of objects) {
    const isHeld = held.has(id);
    const merged: [number, number][] = [];
    for (const [offset, size] of [...ranges].sort((a, b) => a[0] - b[0])) {
      const last = merged[merged.length - 1];
      if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + size - last[0]);
      else merged.push([offset, size]);
    }
    for (const [start, size] of merged) {
      for (let offset = start; offset < start + size; offset += chunkBytes) {
        const t0 = performance.now();
        const chunk = await source.extractState(id, isHeld, { offset, length: Math.min(chunkBytes, start + size - offset) });
        const t1 = performance.now();
        stats.extractMs += t1 - t0;
        if (chunk.byteLength === 0) break;
        await target.restoreState(id, chunk, crc32(chunk) >>> 0, isHeld, offset);
        stats.restoreMs += performance.now() - t1;
        stats.bytes += chunk.byteLength;
      }
    }
    stats.objects++;
  }
  return stats;
}
