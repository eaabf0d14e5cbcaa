/**
 * Loads a spec's native library with koffi and declares its functions from the spec.
 *
 * Native calling convention (also what explicit-state hooks get through `StateContext.callNative`):
 * handles by value and returned handles are `uintptr_t` numbers; every pointer argument is `void *` and takes a
 * Node Buffer (or null); scalars use their C type; a `mapped` return is a `void *` (a BigInt address).
 */
import koffi from 'koffi';
import { NativeLibraryError, UnsupportedError } from '../errors.js';
import type { ApiSpec, ArgSpec, FunctionSpec, ReturnSpec, ScalarType } from '../spec/types.js';

/** koffi's name of each scalar type. */
export const KOFFI_SCALAR: Readonly<Record<ScalarType, string>> = {
  int8: 'int8_t', uint8: 'uint8_t', int16: 'int16_t', uint16: 'uint16_t', int32: 'int32_t', uint32: 'uint32_t',
  int64: 'int64_t', uint64: 'uint64_t', size: 'size_t', uintptr: 'uintptr_t', float: 'float', double: 'double',
};

export { SCALAR_SIZE } from '../spec/types.js';

function koffiArgType(a: ArgSpec): string {
  switch (a.role) {
    case 'scalar': case 'count': return KOFFI_SCALAR[a.type];
    case 'handle': return 'uintptr_t';
    default: return 'void *';
  }
}

function koffiReturnType(r: ReturnSpec, status: ScalarType): string {
  switch (r.role) {
    case 'void': return 'void';
    case 'status': return KOFFI_SCALAR[status];
    case 'scalar': return KOFFI_SCALAR[r.type];
    case 'handle': return 'uintptr_t';
    case 'mapped': return 'void *';
  }
}

const callbackTypes = new Map<string, unknown>();

/**
 * The koffi type of a callback prototype, declared once per process (koffi refuses a second declaration of the same
 * prototype name).
 */
export function callbackType(proto: string): unknown {
  let type = callbackTypes.get(proto);
  if (!type) {
    type = koffi.pointer(koffi.proto(proto));
    callbackTypes.set(proto, type);
  }
  return type;
}

/** A declared native function: call it synchronously, or with `async` off the event loop (koffi's thread pool). */
export interface NativeFunction {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}

/** A loaded library with its functions declared lazily from the spec. */
export class NativeLibrary {
  readonly spec: ApiSpec;
  readonly path: string;
  readonly #lib: ReturnType<typeof koffi.load>;
  readonly #functions = new Map<string, NativeFunction>();

  private constructor(spec: ApiSpec, path: string, lib: ReturnType<typeof koffi.load>) {
    this.spec = spec;
    this.path = path;
    this.#lib = lib;
  }

  /**
   * Resolves (and, for fixtures, builds) the spec's library and loads it.
   * @throws {NativeLibraryError} `ERR_AVA_NATIVE_LOAD` when no candidate loads.
   */
  static async open(spec: ApiSpec): Promise<NativeLibrary> {
    const source = spec.library;
    const candidates = 'names' in source ? [...source.names] : [await source.resolve()];
    const failures: string[] = [];
    for (const path of candidates) {
      try {
        return new NativeLibrary(spec, path, koffi.load(path));
      } catch (error) {
        failures.push(`${path}: ${(error as Error).message}`);
      }
    }
    throw new NativeLibraryError('ERR_AVA_NATIVE_LOAD', `cannot load the ${spec.name} library (${failures.join('; ')})`);
  }

  /**
   * The koffi function for `name`, declared on first use.
   * @throws {UnsupportedError} for functions the spec declares unsupported.
   * @throws {NativeLibraryError} `ERR_AVA_NATIVE_LOAD` when the library lacks the symbol.
   */
  get(name: string): NativeFunction {
    let fn = this.#functions.get(name);
    if (fn) return fn;
    const spec = this.spec.fn.get(name);
    if (!spec) throw new NativeLibraryError('ERR_AVA_NATIVE_LOAD', `${this.spec.name} has no function ${name}`);
    if (spec.unsupported !== undefined) throw new UnsupportedError(name, spec.unsupported);
    fn = this.#declare(spec);
    this.#functions.set(name, fn);
    return fn;
  }

  #declare(spec: FunctionSpec): NativeFunction {
    try {
      return this.#lib.func(spec.name, koffiReturnType(spec.returns, this.spec.status.type), spec.args.map(koffiArgType)) as NativeFunction;
    } catch (error) {
      throw new NativeLibraryError('ERR_AVA_NATIVE_LOAD', `${this.path} does not provide ${spec.name}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Unloads the library. */
  close(): void {
    this.#lib.unload();
  }
}
