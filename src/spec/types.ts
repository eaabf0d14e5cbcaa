/**
 * The data model of a spec: a C API described as plain TypeScript data.
 *
 * A spec names the API's handle kinds, its status-code convention and, for every function, the C
 * signature (as argument roles) and what the call does to state (its {@link RecordClass}). The worker
 * marshals from it, the guest validates from it, the journal decides what to keep from it, and the C
 * front of a later release is generated from it; so everything here is data a C generator can read,
 * except the explicit-state hooks, which run only inside the (TypeScript) worker.
 */

/** C scalar types a spec can name. `size` is `size_t`; `uintptr` a pointer-sized integer. */
export type ScalarType =
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'size' | 'uintptr' | 'float' | 'double';

/** Bytes of each scalar type on the 64-bit hosts we support. */
export const SCALAR_SIZE: Readonly<Record<ScalarType, number>> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, size: 8, uintptr: 8, float: 4, double: 8,
};

/**
 * What a call does to state, which decides what the journal keeps and what replay means
 * (see docs/ARCHITECTURE.md, "The spec: what a call means").
 */
export type RecordClass =
  | 'create' | 'configure' | 'retain' | 'release' | 'global'
  | 'transfer' | 'execute' | 'query' | 'sync';

/** All record classes, in documentation order. */
export const RECORD_CLASSES: readonly RecordClass[] = [
  'create', 'configure', 'retain', 'release', 'global', 'transfer', 'execute', 'query', 'sync',
];

/**
 * A length in bytes or elements, computed from the call's own arguments: a constant; the value of a named argument,
 * or `"arg.field"` for a field of a {@link StructArg}; a product; a named length function (see `src/spec/length.ts`)
 * for shapes such as rectangular host regions, whose arguments are expressions (a name of a `scalars` argument gives
 * the whole array); or an attribute of the handle an argument names (`{ attr: 'elementSize', of: 'image' }`), set
 * when the handle was made (see {@link FunctionSpec.sets}).
 */
export type LengthExpr =
  | number
  | string
  | { readonly mul: readonly LengthExpr[] }
  | { readonly fn: string; readonly args: readonly LengthExpr[] }
  | { readonly attr: string; readonly of: string };

interface ArgBase {
  /** The C parameter name; also the key of the argument's out-value in a reply. */
  readonly name: string;
}

/** A scalar passed by value. `workerValue`, when set, replaces what the guest sent (e.g. forces a read to block). */
export interface ScalarArg extends ArgBase {
  readonly role: 'scalar';
  readonly type: ScalarType;
  readonly workerValue?: number;
  /**
   * Flag rewrite done by the worker: when `(value & ifSet) != 0`, clear `clear` and set `set`
   * (OpenCL's `CL_MEM_USE_HOST_PTR` becomes `CL_MEM_COPY_HOST_PTR`, since the guest's memory is not the worker's).
   */
  readonly rewrite?: { readonly ifSet: number; readonly clear: number; readonly set: number };
}
/** A scalar that counts the elements of an array argument (`num_entries`, `num_events_in_wait_list`). */
export interface CountArg extends ArgBase {
  readonly role: 'count';
  readonly type: ScalarType;
}
/** A handle passed by value. */
export interface HandleArg extends ArgBase {
  readonly role: 'handle';
  readonly kind: string;
  readonly nullable: boolean;
}
/** A `const T*` array of handles, `count` elements long. */
export interface HandlesArg extends ArgBase {
  readonly role: 'handles';
  readonly kind: string;
  readonly count: LengthExpr;
  readonly nullable: boolean;
}
/** A `T*` where the call stores one new handle. `optional`: the caller may pass NULL (an enqueue's `event`). */
export interface HandleOutArg extends ArgBase {
  readonly role: 'handleOut';
  readonly kind: string;
  readonly optional: boolean;
}
/** A `T*` array the call fills with up to `capacity` handles (`clGetPlatformIDs`). */
export interface HandlesOutArg extends ArgBase {
  readonly role: 'handlesOut';
  readonly kind: string;
  readonly capacity: LengthExpr;
  readonly optional: boolean;
}
/** Bytes the callee reads: `const void*` of `length` bytes. */
export interface BufferInArg extends ArgBase {
  readonly role: 'bufferIn';
  readonly length: LengthExpr;
  readonly nullable: boolean;
  /**
   * When `(flags & mask) != 0` the caller's array stays bound to the handle the call creates, and the guest
   * brings it up to date from the device at the sync points of the handle (read, unmap, finish): copy
   * semantics for `CL_MEM_USE_HOST_PTR`.
   */
  readonly mirror?: { readonly flags: string; readonly mask: number };
}
/** Bytes the callee writes: `void*` of `length` bytes, copied back into the caller's array. */
export interface BufferOutArg extends ArgBase {
  readonly role: 'bufferOut';
  readonly length: LengthExpr;
  readonly optional: boolean;
  /**
   * The callee writes only parts of the buffer (a rectangular region): the caller's current bytes travel with the
   * call so that the bytes it does not write are kept.
   */
  readonly preserve?: boolean;
}
/** A NUL-terminated `const char*`. */
export interface StringArg extends ArgBase {
  readonly role: 'string';
  readonly nullable: boolean;
}
/**
 * `const char**` or `const unsigned char**` with `count` entries and an optional parallel `lengths`
 * array argument (absent or NULL entries mean NUL-terminated), as in `clCreateProgramWithSource`.
 */
export interface StringsArg extends ArgBase {
  readonly role: 'strings';
  readonly count: LengthExpr;
  readonly lengths?: string;
  readonly nullable?: boolean;
}
/** A `const T*` array of scalars, `length` elements long (`global_work_size`, `origin[3]`). */
export interface ScalarsArg extends ArgBase {
  readonly role: 'scalars';
  readonly type: ScalarType;
  readonly length: LengthExpr;
  readonly nullable: boolean;
}
/**
 * A zero-terminated list of (key, value) pairs of `type` (`cl_context_properties`); the values of the
 * keys in `handleKeys` are handles of the named kind.
 */
export interface PropertiesArg extends ArgBase {
  readonly role: 'properties';
  readonly type: ScalarType;
  readonly handleKeys: Readonly<Record<string, string>>;
  readonly nullable: boolean;
}
/** A `T*` the call stores one scalar into (`size_t* param_value_size_ret`, `cl_uint* num_platforms`). */
export interface ScalarOutArg extends ArgBase {
  readonly role: 'scalarOut';
  readonly type: ScalarType;
}
/** A `T*` array the call fills with `length` scalars (`cl_int* binary_status`). */
export interface ScalarsOutArg extends ArgBase {
  readonly role: 'scalarsOut';
  readonly type: ScalarType;
  readonly length: LengthExpr;
}
/** The `errcode_ret` out-argument: a status in the spec's status convention. */
export interface ErrcodeArg extends ArgBase {
  readonly role: 'errcode';
}
/**
 * The value of an info-query triple: `value` of `size` bytes for parameter `param`, with the true size
 * stored through the `sizeRet` argument. A NULL value is the size probe. For the parameters in
 * `handleParams`, the value holds handles (one, or an array) of that kind: the worker rewrites them to
 * handle ids in place, keeping the layout (one 8-byte slot per handle).
 */
export interface InfoValueArg extends ArgBase {
  readonly role: 'info';
  readonly size: string;
  readonly param: string;
  readonly handleParams: Readonly<Record<string, string>>;
  /**
   * Parameters whose value is an array of pointers to caller-allocated blobs (`CL_PROGRAM_BINARIES`), mapped to
   * the parameter that gives the blobs' sizes as a `size_t[]` (`CL_PROGRAM_BINARY_SIZES`). The guest receives
   * the blobs as a list of byte arrays.
   */
  readonly pointerArrays?: Readonly<Record<string, string>>;
  /**
   * Parameters whose value is a zero-terminated list of pointer-sized (key, value) pairs (`CL_CONTEXT_PROPERTIES`),
   * mapped to the keys whose values are handles of a kind: the worker rewrites those values to handle ids in place.
   */
  readonly propertyParams?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}
/**
 * The untyped value of `clSetKernelArg`: a handle of one of `handleKinds` (sent as its id, turned into
 * the worker's pointer), bytes (a scalar or struct), or NULL (local memory of `size` bytes).
 */
export interface ArgValueArg extends ArgBase {
  readonly role: 'argValue';
  readonly size: string;
  readonly handleKinds: readonly string[];
  /**
   * The API's status for a value that is not a valid object (`TQ_INVALID_ARG_VALUE`, `CL_INVALID_MEM_OBJECT`): what the
   * worker reports for an unknown, released or wrong-kind id, which it never passes to the library.
   */
  readonly invalidStatus?: number;
}
/** A C function pointer the callee calls later; delivered to the guest as an event. `proto` is its koffi prototype. */
export interface CallbackArg extends ArgBase {
  readonly role: 'callback';
  readonly proto: string;
  readonly userData: string;
  /**
   * True when a non-NULL callback is delivered to the guest as an event; false when only NULL is accepted and a
   * non-NULL one is an `ERR_AVA_UNSUPPORTED` error naming the function.
   */
  readonly delivered: boolean;
  /**
   * With `delivered` false: a non-NULL callback is accepted and never called, instead of refused. For notifications
   * the library may make at any time from its own threads that change no result (a context's error notify): a
   * program that passes one runs as natively, without the messages.
   */
  readonly dropped?: boolean;
}
/** The `void* user_data` of a callback: kept by the guest, never sent. */
export interface UserDataArg extends ArgBase {
  readonly role: 'userData';
}
/** A mapped region returned earlier by a `mapped` return, given back (unmap): its bytes are written back first. */
export interface MappedArg extends ArgBase {
  readonly role: 'mapped';
}
/** One field of a {@link StructArg}: a scalar of `type`, or (with `kind`) a handle in a pointer-sized slot. */
export interface StructField {
  readonly name: string;
  /** Byte offset in the C struct. */
  readonly offset: number;
  /** Scalar type (absent for a handle field). */
  readonly type?: ScalarType;
  /** Handle kind of a pointer-sized handle field (NULL allowed). */
  readonly kind?: string;
}
/**
 * A `const struct *` the callee reads (`cl_image_format`, `cl_image_desc`): `size` bytes laid out as `fields`
 * (bytes not covered by a field are zero). On the wire it is the array of field values in `fields` order, handle
 * fields as ids; a JavaScript caller passes an object keyed by field name (missing fields are 0 / NULL).
 */
export interface StructArg extends ArgBase {
  readonly role: 'struct';
  readonly size: number;
  readonly fields: readonly StructField[];
  readonly nullable: boolean;
}

/** The role of one C argument. */
export type ArgSpec =
  | ScalarArg | CountArg | HandleArg | HandlesArg | HandleOutArg | HandlesOutArg
  | BufferInArg | BufferOutArg | StringArg | StringsArg | ScalarsArg | PropertiesArg
  | ScalarOutArg | ScalarsOutArg | ErrcodeArg | InfoValueArg | ArgValueArg
  | CallbackArg | UserDataArg | MappedArg | StructArg;

/** Role names of {@link ArgSpec}. */
export type ArgRole = ArgSpec['role'];

/** What a function returns. */
export type ReturnSpec =
  | { readonly role: 'void' }
  | { readonly role: 'status' }
  | { readonly role: 'scalar'; readonly type: ScalarType }
  | { readonly role: 'handle'; readonly kind: string }
  /** A pointer to `length` bytes of mapped device memory (`clEnqueueMapBuffer`): the guest gets the bytes. */
  | { readonly role: 'mapped'; readonly length: LengthExpr };

/** One C function of the API. */
export interface FunctionSpec {
  readonly name: string;
  readonly returns: ReturnSpec;
  readonly args: readonly ArgSpec[];
  readonly record: RecordClass;
  /** For retain/release/configure: the argument naming the object the call changes. */
  readonly target?: string;
  /** For configure: the arguments whose values, with the target, make a later call supersede an earlier one. */
  readonly supersedeKey?: readonly string[];
  /** The call may block for long (finish, build, blocking transfer): the worker runs it off its event loop. */
  readonly blocking?: boolean;
  /** Set when the function is declared but not supported: every call fails with `ERR_AVA_UNSUPPORTED` and this reason. */
  readonly unsupported?: string;
  /**
   * Failure statuses that still change state (a failed build leaves the program unbuilt, with a log): a call failing
   * with one of them is journaled with its status, and replay runs it again. Other failures changed nothing.
   */
  readonly journalFailures?: readonly number[];
  /**
   * The region of an object's explicit state the call writes (a buffer write): the arguments naming the object, the
   * offset and the size in bytes. Pre-copy migration then recopies only that region instead of the whole object.
   */
  readonly writes?: { readonly target: string; readonly offset: string; readonly size: string };
  /**
   * `opens`: the call makes an object that may hold queued work back until the application completes it (an OpenCL
   * user event); `closes`: the call completes such an object (its `target`). While one is open, a migration waits:
   * reading device state would wait for work that only a later call of the application lets run.
   */
  readonly pending?: 'opens' | 'closes';
  /**
   * A transfer that may complete after the call returns, when its `blocking` argument is 0. A read (OpenCL's
   * clEnqueueReadBuffer with `blocking_read` false) whose caller asks for delivery (`CallFrame.deliver`): the worker
   * enqueues it without blocking, answers at once, and sends the `data` argument's bytes as an event once the `event`
   * argument's event says the read completed (`completion`); a map (no `data`: its mapped return) likewise sends
   * the mapped bytes then. A write: the worker enqueues it without blocking on a copy of the bytes it keeps until then. Without this, the worker runs every transfer blocking: one queued behind
   * work that a later call of the application releases (an OpenCL user event) would never return.
   */
  readonly deferred?: DeferredTransfer;
  /**
   * Attributes of the returned handle, computed from the call's arguments (an image's element size, from its format):
   * every side (guest, worker, C front) keeps them with the handle, so that a later call's length can name them
   * (`{ attr, of }`) without asking the library. Each must be declared in the kind's {@link HandleKindSpec.attributes}.
   */
  readonly sets?: Readonly<Record<string, LengthExpr>>;
  /**
   * The call may be split into calls over consecutive parts of one flat range: `offset` and `size` (bytes) name the
   * range, `data` the host memory (a bufferIn or bufferOut of `size` bytes) that advances with it. A front splits a
   * transfer larger than a frame may carry (a multi-GiB buffer write or read) into parts run in order.
   */
  readonly split?: { readonly offset: string; readonly size: string; readonly data: string };
}

/** What the worker gives explicit-state hooks: direct native calls on the session's real pointers. */
export interface StateContext {
  /**
   * For state that is the answers to info queries (a recreated event's command type, queue and timestamps): makes the
   * worker answer `fn`'s query for parameter `param` of the object being restored or recreated with `value`, not
   * the library. Keyed by the object's handle id, so it dies with the handle.
   */
  remember?(fn: string, param: number, value: Uint8Array): void;
  /** The value {@link remember} stored for the object being extracted, if any. */
  remembered?(fn: string, param: number): Uint8Array | undefined;
  /** Calls a native function of the spec's library with native values (pointers as numbers, Buffers for pointers). */
  callNative(fn: string, ...args: unknown[]): unknown;
  /**
   * The same call on a thread of the worker's pool, off its event loop: for large copies, so that the worker keeps
   * receiving the next chunk of a state stream while this one is written. Buffers passed must stay untouched until
   * it resolves.
   */
  callNativeOffThread(fn: string, ...args: unknown[]): Promise<unknown>;
  /** Native pointers of the session's live handles of `kind`. */
  liveHandles(kind: string): readonly number[];
  /** The API's status convention, to check native results. */
  readonly status: StatusSpec;
}

/** Explicit state of a handle kind: how to read its contents out and write them into a fresh object. */
export interface ExplicitState {
  /** Reads the object's contents (e.g. a buffer's bytes), after finishing pending work on it. */
  extract(ctx: StateContext, handle: number): Promise<Uint8Array> | Uint8Array;
  /** Writes contents read by {@link extract} into an object of the same shape. */
  restore(ctx: StateContext, handle: number, bytes: Uint8Array): Promise<void> | void;
  /**
   * Optional: reads up to `length` bytes from `offset` (fewer at the end, none past it), so that large state travels
   * in chunks instead of one allocation the size of the object. With `into` (at least `length` bytes), reads into it
   * and returns the filled part: a copy reuses its chunk buffers instead of touching fresh memory for every chunk.
   */
  extractRange?(ctx: StateContext, handle: number, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** Optional: writes `bytes` at `offset` (the counterpart of {@link extractRange}). */
  restoreRange?(ctx: StateContext, handle: number, offset: number, bytes: Uint8Array): Promise<void> | void;
  /**
   * The contents are gone once the application releases the object, even while a live object still names it
   * (OpenCL: a kernel argument does not retain its buffer, which the library frees at its last release). Such a
   * released, held object is rebuilt by replay without its contents; reading them would touch freed memory.
   */
  readonly lostWhenReleased?: boolean;
}

/** See {@link FunctionSpec.deferred}. */
export interface DeferredTransfer {
  /** The scalar argument saying whether the call blocks. */
  readonly blocking: string;
  /** The handleOut argument of the call's completion event (optional for the caller: the worker then makes its own). */
  readonly event: string;
  /** The bufferOut argument a read fills, or the bufferIn argument a write reads; none for a map (its mapped return). */
  readonly data?: string;
  readonly completion: EventCompletion;
}

/** How the worker follows an event of the API until its command completes. */
export interface EventCompletion {
  /** Keeps the event alive for the worker (the application may release its own reference at once). */
  retain(ctx: StateContext, event: number): void;
  release(ctx: StateContext, event: number): void;
  /** `true` once completed, `false` while not, or the failure status the command ended with. */
  completed(ctx: StateContext, event: number): boolean | number;
}

/** A kind of handle (an opaque object pointer of the API). */
export interface HandleKindSpec {
  readonly name: string;
  /**
   * Native identity is stable and not reference counted by the application (platforms, root devices): the same
   * pointer always gets the same id.
   */
  readonly interned?: boolean;
  /** Objects without replayable state (events): replay recreates them completed, with {@link recreate}. */
  readonly transient?: boolean;
  /**
   * Makes a completed object of this kind on a worker that never ran the call that made the original (replay):
   * `related` are the native pointers of that call's handle arguments (an enqueue's queue, kernel...). Returns the
   * new object's native pointer.
   */
  readonly recreate?: (ctx: StateContext, related: readonly number[]) => number | Promise<number>;
  /** The API's status for an invalid object of this kind (e.g. `CL_INVALID_MEM_OBJECT`), reported for bad ids. */
  readonly invalidStatus?: number;
  /** Explicit state, when the object has contents that calls cannot rebuild. */
  readonly state?: ExplicitState;
  /** Names of numeric attributes a creating call may set on objects of this kind ({@link FunctionSpec.sets}). */
  readonly attributes?: readonly string[];
  /**
   * For an interned kind: every object of the kind the library offers (native pointers), in an order that is the same
   * in every process of one machine and on machines alike (OpenCL: platforms, then each platform's devices). An
   * object the worker meets first in an info value (a device named by CL_CONTEXT_DEVICES) gets an id derived from its
   * place in this list, so that a target worker finds the same object again after a migration.
   */
  readonly enumerate?: (ctx: StateContext) => readonly number[];
}

/** The API's convention for status codes. */
export interface StatusSpec {
  readonly type: ScalarType;
  readonly success: number;
  /** Names of status values, e.g. `{ '-49': 'CL_INVALID_ARG_INDEX' }`. */
  readonly names: Readonly<Record<string, string>>;
}

/** Where the worker finds the native library: candidate names, or a resolver that builds/locates it. */
export type LibrarySource =
  | { readonly names: readonly string[] }
  | { readonly resolve: () => string | Promise<string> };

/** The input of `defineSpec`. */
export interface SpecInput {
  readonly name: string;
  readonly version: string;
  readonly library: LibrarySource;
  readonly status: StatusSpec;
  readonly handles: readonly HandleKindSpec[];
  readonly functions: readonly FunctionSpec[];
}

/** A validated, frozen spec with its stable hash. */
export interface ApiSpec extends SpecInput {
  /** sha-256 (hex) of the spec's data (state hooks count by presence only); equal specs hash equal in every process. */
  readonly hash: string;
  /** Functions by name. */
  readonly fn: ReadonlyMap<string, FunctionSpec>;
  /** Handle kinds by name. */
  readonly kind: ReadonlyMap<string, HandleKindSpec>;
}
