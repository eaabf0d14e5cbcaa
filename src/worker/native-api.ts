/**
 * Direct native use of a spec's library, in the same JavaScript calling convention as the guestlib but with no
 * guest, session, channel or handle ids: handles hold the native pointer values. It is the "native" side of every
 * native-vs-remoted comparison (tests, benchmarks, workloads run natively).
 */
import koffi from 'koffi';
import { BadCallError, toWireError } from '../errors.js';
import { buildApiObject, handleInInfo } from '../guest/api-object.js';
import type { ApiObject } from '../guest/call-shape.js';
import type { HandleCodec } from '../guest/encode.js';
import { HandleCache } from '../guest/handle.js';
import type { Handle } from '../guest/handle.js';
import type { StatusMode } from '../guest/status.js';
import type { ApiSpec } from '../spec/types.js';
import type { ExecutionContext, HandleResolver } from './executor.js';
import { executeCall } from './executor.js';
import { NativeLibrary, callbackType } from './native-library.js';

/** A direct native binding. */
export interface NativeApi extends AsyncDisposable {
  readonly api: ApiObject;
  readonly library: NativeLibrary;
  /** The handle for a pointer found in an info value. */
  handleAt(kind: string, bytes: ArrayBufferView, index?: number): Handle | null;
  close(): Promise<void>;
}

/** Ids are the pointers themselves; kinds are remembered only to type-check untyped kernel arguments. */
class IdentityHandles implements HandleResolver {
  readonly #kinds = new Map<number, string>();
  resolve(id: unknown, kind: string, where: string): number {
    if (typeof id !== 'number') throw new BadCallError(`${where}: not a native handle`);
    return id;
  }
  bind(_id: unknown, kind: string, ptr: number): number {
    this.#kinds.set(ptr, kind);
    return ptr;
  }
  checkNewId(): void {}
  checkNewIds(): void {}
  idOf(kind: string, ptr: number): number {
    if (ptr !== 0) this.#kinds.set(ptr, kind);
    return ptr;
  }
  kindOf(id: number): string | undefined {
    return this.#kinds.get(id);
  }
  retain(): void {}
  release(): boolean { return false; }
  drop(): void {}
  readonly #attributes = new Map<number, Readonly<Record<string, number>>>();
  setAttributes(id: number, values: Readonly<Record<string, number>>): void {
    this.#attributes.set(id, values);
  }
  attribute(id: unknown, name: string): number | undefined {
    return typeof id === 'number' ? this.#attributes.get(id)?.[name] : undefined;
  }
}

/**
 * Loads `spec`'s library for direct calls.
 * @example
 * await using native = await openNativeApi(toyaccSpec);
 * await native.api.tq_get_devices(2, true);
 */
export async function openNativeApi(spec: ApiSpec, options: { statusErrors?: StatusMode } = {}): Promise<NativeApi> {
  const mode = options.statusErrors ?? 'throw';
  const library = await NativeLibrary.open(spec);
  const resolver = new IdentityHandles();
  const cache = new HandleCache();
  const callbacks = new Map<number, { fn: (...args: unknown[]) => void; userData: unknown }>();
  let nextCallback = 1;
  const ctx: ExecutionContext = {
    spec, library, handles: resolver,
    callbacks: {
      register(callbackId, proto) {
        let registered: unknown = null;
        registered = koffi.register((...args: unknown[]) => {
          const entry = callbacks.get(callbackId);
          callbacks.delete(callbackId);
          setImmediate(() => koffi.unregister(registered as never));
          const values = args.slice(0, -1).map((v) => {
            if (typeof v !== 'bigint') return v;
            const kind = resolver.kindOf(Number(v));
            return kind ? cache.get(kind, Number(v)) : Number(v);
          });
          entry?.fn(...values, entry.userData);
        }, callbackType(proto) as never);
        return registered;
      },
    },
  };
  const codec: HandleCodec = {
    idOf: (h) => h.id,
    newId: () => 0,
    handle: (kind, id) => cache.get(kind, id),
    callback: (fn, userData) => {
      const id = nextCallback++;
      callbacks.set(id, { fn, userData });
      return id;
    },
  };
  let seq = 0;
  const api = buildApiObject(spec, codec, mode, async (f, encoded) => {
    try {
      return await executeCall(ctx, { seq: seq++, fn: f.name, args: encoded.args, retId: encoded.retId });
    } catch (error) {
      return { seq, error: toWireError(error) };
    }
  });
  const close = async (): Promise<void> => {};
  return { api, library, close, [Symbol.asyncDispose]: close, handleAt: (kind, bytes, index) => handleInInfo(cache, kind, bytes, index) };
}
