/**
 * Error classes of ava-migrate. Every error has a stable `code` string (like Node's `ERR_*`);
 * tests and callers branch on the code, never on the message text.
 *
 * Errors cross threads, processes and the wire as plain data ({@link toWireError}) and are rebuilt
 * on the other side ({@link fromWireError}), so identity is checked with {@link AvaError.isAvaError}
 * (a `Symbol.for` footprint) rather than `instanceof` alone.
 */

const FOOTPRINT = Symbol.for('ava-migrate.error');

/** Options shared by every {@link AvaError}. */
export interface AvaErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** Extra structured details (function name, handle id, ...), sent across the wire with the error. */
  details?: Record<string, unknown>;
}

/**
 * Base class of every error ava-migrate throws.
 * @example
 * try { await cl.clGetDeviceInfo(dev, 0x1000, 4, out) }
 * catch (e) { if (AvaError.isAvaError(e) && e.code === 'ERR_AVA_API_STATUS') ... }
 */
export class AvaError extends Error {
  /** Stable machine-readable code, e.g. `ERR_AVA_STALE_HANDLE`. */
  readonly code: string;
  /** Structured details; always JSON/CBOR-safe. */
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: AvaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    Object.defineProperty(this, FOOTPRINT, { value: true });
  }

  override get name(): string {
    return this.constructor.name;
  }

  /** True for any ava-migrate error, also one made in another realm or rebuilt from the wire. */
  static isAvaError(value: unknown): value is AvaError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[FOOTPRINT] === true;
  }
}

/** A spec failed validation when it was defined (code `ERR_AVA_SPEC_INVALID`). */
export class SpecError extends AvaError {
  constructor(message: string, options?: AvaErrorOptions) {
    super('ERR_AVA_SPEC_INVALID', message, options);
  }
}

/** An argument has the wrong JavaScript type or value; raised before anything is marshalled (`ERR_AVA_ARG_TYPE`). */
export class ArgumentTypeError extends AvaError {
  constructor(message: string, options?: AvaErrorOptions) {
    super('ERR_AVA_ARG_TYPE', message, options);
  }
}

/**
 * A handle id that the worker cannot use: `ERR_AVA_UNKNOWN_HANDLE` (never issued: forged),
 * `ERR_AVA_STALE_HANDLE` (released), `ERR_AVA_HANDLE_KIND` (another kind than the argument needs).
 * `status` is the API's own code for an invalid object of that kind where the spec names one, so that a
 * program sees what the native library would have said.
 */
export class HandleError extends AvaError {
  constructor(
    code: 'ERR_AVA_UNKNOWN_HANDLE' | 'ERR_AVA_STALE_HANDLE' | 'ERR_AVA_HANDLE_KIND',
    message: string,
    options?: AvaErrorOptions,
  ) {
    super(code, message, options);
  }
  /** The API status code the spec maps this handle error to, if any. */
  get status(): number | undefined {
    return this.details.status as number | undefined;
  }
}

/**
 * The native API reported failure, through its return value or an `errcode_ret` out-argument
 * (`ERR_AVA_API_STATUS`). `status` is the numeric code, `statusName` its name (e.g. `CL_INVALID_ARG_INDEX`).
 */
export class ApiStatusError extends AvaError {
  constructor(fn: string, status: number, statusName: string, options: AvaErrorOptions = {}) {
    super('ERR_AVA_API_STATUS', `${fn} failed with ${statusName} (${status})`, {
      ...options,
      details: { ...options.details, fn, status, statusName },
    });
  }
  /** Numeric status code returned by the API. */
  get status(): number {
    return this.details.status as number;
  }
  /** Symbolic name of {@link status}, or `UNKNOWN_STATUS_<n>`. */
  get statusName(): string {
    return this.details.statusName as string;
  }
  /** The function that failed. */
  get fn(): string {
    return this.details.fn as string;
  }
}

/** A function the spec declares but does not support, or a feature of a call it cannot carry (`ERR_AVA_UNSUPPORTED`). */
export class UnsupportedError extends AvaError {
  constructor(fn: string, reason: string, options: AvaErrorOptions = {}) {
    super('ERR_AVA_UNSUPPORTED', `${fn} is not supported: ${reason}`, {
      ...options,
      details: { ...options.details, fn },
    });
  }
}

/** A capability that a later release brings (`ERR_AVA_NOT_YET_AVAILABLE`). */
export class NotYetAvailableError extends AvaError {
  constructor(what: string, options?: AvaErrorOptions) {
    super('ERR_AVA_NOT_YET_AVAILABLE', `${what} is not yet available in this version of ava-migrate`, options);
  }
}

/** A native library could not be found, built or loaded (`ERR_AVA_NATIVE_LOAD`, `ERR_AVA_NO_COMPILER`, `ERR_AVA_BUILD_FAILED`). */
export class NativeLibraryError extends AvaError {
  constructor(code: 'ERR_AVA_NATIVE_LOAD' | 'ERR_AVA_NO_COMPILER' | 'ERR_AVA_BUILD_FAILED', message: string, options?: AvaErrorOptions) {
    super(code, message, options);
  }
}

/** A call record or frame is malformed (`ERR_AVA_BAD_CALL`): unknown function, wrong argument count, bad value shape. */
export class BadCallError extends AvaError {
  constructor(message: string, options?: AvaErrorOptions) {
    super('ERR_AVA_BAD_CALL', message, options);
  }
}

/** A session, channel or worker was used after `close()` (`ERR_AVA_CLOSED`). */
export class ClosedError extends AvaError {
  constructor(what: string, options?: AvaErrorOptions) {
    super('ERR_AVA_CLOSED', `${what} is closed`, options);
  }
}

/** A bad value in an `AVA_*` environment variable or a CLI flag (`ERR_AVA_CONFIG`). */
export class ConfigError extends AvaError {
  constructor(message: string, options?: AvaErrorOptions) {
    super('ERR_AVA_CONFIG', message, options);
  }
}

/** The plain-data form of an error, as it crosses the wire. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Turns any thrown value into its wire form; non-ava errors become `ERR_AVA_INTERNAL`. */
export function toWireError(error: unknown): WireError {
  if (AvaError.isAvaError(error)) {
    return { name: error.name, code: error.code, message: error.message, details: error.details };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { name: 'AvaError', code: 'ERR_AVA_INTERNAL', message };
}

const REBUILDERS: Record<string, (w: WireError) => AvaError> = {
  ApiStatusError: (w) =>
    new ApiStatusError(String(w.details?.fn), Number(w.details?.status), String(w.details?.statusName), { details: w.details }),
  HandleError: (w) => new HandleError(w.code as 'ERR_AVA_UNKNOWN_HANDLE', w.message, { details: w.details }),
  UnsupportedError: (w) => {
    const e = new AvaError(w.code, w.message, { details: w.details });
    Object.setPrototypeOf(e, UnsupportedError.prototype);
    return e;
  },
};

/** Rebuilds an error received from the wire, keeping its class where it is one of ours. */
export function fromWireError(wire: WireError): AvaError {
  const rebuild = REBUILDERS[wire.name];
  if (rebuild) return rebuild(wire);
  const error = new AvaError(wire.code, wire.message, { details: wire.details });
  return error;
}
