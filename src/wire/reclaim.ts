/**
 * Gives the memory of large buffers that nothing references any more back to the allocator before another large one
 * is made, so that the new one reuses pages already backed instead of fresh ones.
 *
 * Why: a transfer's bytes (a frame's body read in place, a read's destination in the worker) are Node buffers whose
 * memory is freed only when V8 collects them, and V8 collects on its own schedule. Until then every 64 MiB transfer
 * takes fresh memory, which the kernel (and, on a VM, the hypervisor) faults in page by page. A young-generation
 * collection is enough for buffers made since the last one (a transfer's own) and costs well under a millisecond.
 * Measured with fixtures/opencl-c/transfers.c (8 rounds of 64 MiB blocking writes then reads through the ICD, 6
 * alternating runs each on a 2-core VM): medians about the same (writes 2.2 -> 2.5 GB/s, reads 2.4 -> 2.5), but the
 * slow runs are gone: the slowest went from 1.3 to 2.0 GB/s for writes and from 0.95 to 2.4 GB/s for reads.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Buffers from this size up are worth a collection before they are made (a collection costs ~0.5 ms here). */
export const RECLAIM_MIN_BYTES = 16 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major' }) => void;
let collect: Collect | null | undefined;
let allowed = false;

/**
 * Lets {@link reclaimBefore} collect in this process. Only processes of ours call it (ava-guestd, worker processes):
 * exposing the collector sets a V8 flag for the whole process (contexts made afterwards get a `gc` global), which a
 * program that embeds the guestlib did not ask for.
 */
export function allowReclaim(): void {
  allowed = true;
}

/**
 * Runs a young-generation collection when `bytes` is at least {@link RECLAIM_MIN_BYTES} (call it right before
 * allocating that many), in a process that {@link allowReclaim allowed it}. V8's collector is exposed once, in a
 * context of its own (the program's global object stays unchanged). Where that is not possible this does nothing:
 * the buffers are still freed, later.
 */
export function reclaimBefore(bytes: number): void {
  if (!allowed || bytes < RECLAIM_MIN_BYTES) return;
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  collect?.({ type: 'minor' });
}
