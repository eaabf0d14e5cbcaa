/**
 * Handles as the application sees them: opaque objects of a kind with an id. The same id always yields the same
 * object within one API object, so an application can compare handles with `===`.
 */

/** An API object (a context, a buffer, ...) handed to the application. */
export class Handle {
  /** The handle kind of the spec (`context`, `mem`, ...). */
  readonly kind: string;
  /** The id: issued by the guest session (remoted) or the native pointer value (direct native use). */
  readonly id: number;

  constructor(kind: string, id: number) {
    this.kind = kind;
    this.id = id;
    Object.freeze(this);
  }

  toString(): string {
    return `${this.kind}#${this.id}`;
  }
}

/** Attributes set on handles by the calls that made them (an image's element size), kept beside the frozen handles. */
const attributes = new WeakMap<Handle, Readonly<Record<string, number>>>();

/** The attributes the call that made `handle` set on it (`FunctionSpec.sets`), if any. */
export function handleAttributes(handle: Handle): Readonly<Record<string, number>> | undefined {
  return attributes.get(handle);
}

/** Records the attributes of a handle a call just made. */
export function setHandleAttributes(handle: Handle, values: Readonly<Record<string, number>>): void {
  attributes.set(handle, values);
}

/** A region mapped by a `mapped` return (`clEnqueueMapBuffer`): its bytes, written back when it is given back. */
export class Mapping {
  readonly id: number;
  /** The mapped bytes; change them and give the mapping back (unmap) to write them to the device. */
  readonly bytes: Uint8Array;

  constructor(id: number, bytes: Uint8Array) {
    this.id = id;
    this.bytes = bytes;
    Object.freeze(this);
  }
}

/** Interns handles by (kind, id). */
export class HandleCache {
  readonly #byKey = new Map<string, Handle>();

  /** The handle for (kind, id), created on first use. */
  get(kind: string, id: number): Handle {
    const key = `${kind}:${id}`;
    let handle = this.#byKey.get(key);
    if (!handle) {
      handle = new Handle(kind, id);
      this.#byKey.set(key, handle);
    }
    return handle;
  }
}
