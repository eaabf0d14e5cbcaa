/**
 * Host-memory mirrors: copy semantics for memory the application lends to an object (OpenCL's
 * `CL_MEM_USE_HOST_PTR`). The worker cannot use the guest's memory, so it creates the object from a copy
 * (`rewrite` on the flags argument); the guest keeps the application's array bound to the new handle and brings
 * it up to date from the device at the handle's sync points: after any `sync`-class call (finish, wait), and after
 * a `transfer`-class call naming the handle (read, map/unmap, copy). Between those points the array may be stale,
 * as OpenCL allows for host memory of a buffer in use by the device.
 */
import type { FunctionSpec } from '../spec/types.js';
import { planOf } from '../spec/plan.js';
import type { CallResult } from './call-shape.js';
import type { EncodedCall } from './encode.js';
import { Handle } from './handle.js';

/** The mirrors of one guest session. */
export class HostMirrors {
  readonly #arrays = new Map<number, Uint8Array>();
  readonly #extract: (id: number) => Promise<Uint8Array>;

  /** @param extract reads a handle's explicit state from the worker. */
  constructor(extract: (id: number) => Promise<Uint8Array>) {
    this.#extract = extract;
  }

  /** Number of live mirrors. */
  get size(): number {
    return this.#arrays.size;
  }

  /**
   * Call after each successful call: binds new mirrors and refreshes those the call synchronizes. Returns a promise
   * only when there is something to refresh (the common case costs no promise).
   */
  afterCall(f: FunctionSpec, encoded: EncodedCall, result: CallResult): Promise<void> | undefined {
    if (f.record === 'create') this.#bind(f, encoded, result);
    if (this.#arrays.size === 0) return undefined;
    if (f.record === 'sync') return this.#refresh([...this.#arrays.keys()]);
    if (f.record === 'transfer') {
      const ids = f.args.flatMap((a, i) => (a.role === 'handle' && this.#arrays.has(encoded.args[i] as number) ? [encoded.args[i] as number] : []));
      if (ids.length > 0) return this.#refresh(ids);
    }
    return undefined;
  }

  #bind(f: FunctionSpec, encoded: EncodedCall, result: CallResult): void {
    if (!(result.ret instanceof Handle)) return;
    const { indexOf } = planOf(f);
    f.args.forEach((a, i) => {
      if (a.role !== 'bufferIn' || !a.mirror) return;
      const flags = encoded.args[indexOf.get(a.mirror.flags)!];
      const array = encoded.args[i];
      if ((typeof flags === 'number' || typeof flags === 'bigint') && (BigInt(flags) & BigInt(a.mirror.mask)) !== 0n && array instanceof Uint8Array) {
        this.#arrays.set((result.ret as Handle).id, array);
      }
    });
  }

  async #refresh(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const array = this.#arrays.get(id)!;
      try {
        const bytes = await this.#extract(id);
        array.set(bytes.byteLength > array.byteLength ? bytes.subarray(0, array.byteLength) : bytes);
      } catch {
        // Released (or otherwise gone on the worker): the application's array keeps its last contents.
        this.#arrays.delete(id);
      }
    }
  }
}
