/**
 * Host-memory mirrors: the semantics of memory the application lends to an object (OpenCL's `CL_MEM_USE_HOST_PTR`)
 * when the device runs in another process. The worker cannot use the guest's memory, so it creates the object from a
 * copy (`rewrite` on the flags argument); the guest keeps the application's array bound to the new handle, with a
 * shadow copy of what the device was last known to hold, and keeps both sides in step:
 *
 * - before a call that may read or write the object on the device (any `sync` or `execute` call for every mirror, a
 *   `transfer` call naming the handle for that one), the bytes the application changed since (array against shadow)
 *   are written to the device, exactly those bytes, so that a kernel's writes to other parts survive;
 * - after any `sync`-class call (finish, wait), and after a `transfer`-class call naming the handle (read, map/unmap,
 *   copy), the array is brought up to date from the device.
 *
 * So a program that writes into the memory it lent and launches, as CPU runtimes let it do without a map, sees the
 * same results. Between those points the array may be stale, as OpenCL allows for host memory of a buffer in use.
 * The same rules are implemented by the C front (src/cfront/c/ava_front.c) for native programs.
 */
import type { FunctionSpec } from '../spec/types.js';
import { planOf } from '../spec/plan.js';
import type { CallResult } from './call-shape.js';
import type { EncodedCall } from './encode.js';
import { Handle } from './handle.js';

/** How mirrors reach the worker: a handle's explicit state read whole, or written at an offset. */
export interface MirrorAccess {
  readonly extract: (id: number) => Promise<Uint8Array>;
  readonly restore: (id: number, bytes: Uint8Array, offset: number) => Promise<void>;
}

/** The application's array and what the device held when the two last agreed. */
interface Mirror {
  readonly array: Uint8Array;
  readonly shadow: Uint8Array;
}

/** Past this many separate changed runs in one object, the span from the first to the last is written at once. */
export const MAX_PUSHED_RUNS = 1024;
const BLOCK = 4096;

/**
 * The runs of bytes `[start, end)` where `now` differs from `before` (same length), found block by block; more than
 * `maxRuns` become one run from the first change to the last.
 */
export function changedRuns(now: Uint8Array, before: Uint8Array, maxRuns = MAX_PUSHED_RUNS): [number, number][] {
  const runs: [number, number][] = [];
  const a = Buffer.from(now.buffer, now.byteOffset, now.byteLength);
  const b = Buffer.from(before.buffer, before.byteOffset, before.byteLength);
  if (a.equals(b)) return runs;
  let open = -1;
  for (let block = 0; block < a.length; block += BLOCK) {
    const end = Math.min(block + BLOCK, a.length);
    if (open < 0 && a.compare(b, block, end, block, end) === 0) continue;
    for (let i = block; i < end; i++) {
      if (a[i] !== b[i]) {
        if (open < 0) open = i;
      } else if (open >= 0) {
        runs.push([open, i]);
        open = -1;
      }
    }
  }
  if (open >= 0) runs.push([open, a.length]);
  return runs.length > maxRuns ? [[runs[0]![0], runs[runs.length - 1]![1]]] : runs;
}

/** The mirrors of one guest session. */
export class HostMirrors {
  readonly #mirrors = new Map<number, Mirror>();
  readonly #access: MirrorAccess;

  constructor(access: MirrorAccess) {
    this.#access = access;
  }

  /** Number of live mirrors. */
  get size(): number {
    return this.#mirrors.size;
  }

  /**
   * Call before each call is sent: writes the application's changes of the mirrors the call may touch to the device.
   * Returns a promise only when there is something to write.
   */
  beforeCall(f: FunctionSpec, encoded: EncodedCall): Promise<void> | undefined {
    if (this.#mirrors.size === 0) return undefined;
    const ids = f.record === 'sync' || f.record === 'execute' ? [...this.#mirrors.keys()]
      : f.record === 'transfer' ? this.#named(f, encoded) : [];
    const changed = ids.flatMap((id) => {
      const m = this.#mirrors.get(id)!;
      const runs = changedRuns(m.array, m.shadow);
      return runs.length > 0 ? [{ id, m, runs }] : [];
    });
    return changed.length > 0 ? this.#push(changed) : undefined;
  }

  /**
   * Call after each successful call: binds new mirrors and refreshes those the call synchronizes. Returns a promise
   * only when there is something to refresh (the common case costs no promise).
   */
  afterCall(f: FunctionSpec, encoded: EncodedCall, result: CallResult): Promise<void> | undefined {
    if (f.record === 'create') this.#bind(f, encoded, result);
    if (this.#mirrors.size === 0) return undefined;
    if (f.record === 'sync') return this.#refresh([...this.#mirrors.keys()]);
    if (f.record === 'transfer') {
      const ids = this.#named(f, encoded);
      if (ids.length > 0) return this.#refresh(ids);
    }
    return undefined;
  }

  #named(f: FunctionSpec, encoded: EncodedCall): number[] {
    return f.args.flatMap((a, i) => (a.role === 'handle' && this.#mirrors.has(encoded.args[i] as number) ? [encoded.args[i] as number] : []));
  }

  #bind(f: FunctionSpec, encoded: EncodedCall, result: CallResult): void {
    if (!(result.ret instanceof Handle)) return;
    const { indexOf } = planOf(f);
    f.args.forEach((a, i) => {
      if (a.role !== 'bufferIn' || !a.mirror) return;
      const flags = encoded.args[indexOf.get(a.mirror.flags)!];
      const array = encoded.args[i];
      if ((typeof flags === 'number' || typeof flags === 'bigint') && (BigInt(flags) & BigInt(a.mirror.mask)) !== 0n && array instanceof Uint8Array) {
        // The object was made from the array's bytes at the call: that is what the device holds.
        this.#mirrors.set((result.ret as Handle).id, { array, shadow: Uint8Array.from(array) });
      }
    });
  }

  async #push(changed: readonly { id: number; m: Mirror; runs: readonly [number, number][] }[]): Promise<void> {
    for (const { id, m, runs } of changed) {
      try {
        for (const [start, end] of runs) {
          const bytes = m.array.slice(start, end);
          await this.#access.restore(id, bytes, start);
          m.shadow.set(bytes, start);
        }
      } catch {
        // Released (or otherwise gone on the worker): the application's array is its own again.
        this.#mirrors.delete(id);
      }
    }
  }

  async #refresh(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const m = this.#mirrors.get(id);
      if (!m) continue;
      try {
        const bytes = await this.#access.extract(id);
        const fitted = bytes.byteLength > m.array.byteLength ? bytes.subarray(0, m.array.byteLength) : bytes;
        m.array.set(fitted);
        m.shadow.set(fitted);
      } catch {
        this.#mirrors.delete(id);
      }
    }
  }
}
