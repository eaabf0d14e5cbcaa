/**
 * How much of an API a spec covers: implemented, declared unsupported (with reasons), and missing against a
 * reference list of the API's functions (e.g. every entry point of OpenCL 1.2's cl.h).
 */
import type { ApiSpec } from './types.js';

/** A coverage report. */
export interface Coverage {
  readonly api: string;
  readonly total: number;
  readonly implemented: readonly string[];
  readonly unsupported: readonly { readonly name: string; readonly reason: string }[];
  /** In the reference list but not in the spec at all. */
  readonly missing: readonly string[];
  /** In the spec but not in the reference list. */
  readonly extra: readonly string[];
}

/** Computes the coverage of `spec` against `reference` (default: the spec's own function list). */
export function coverageOf(spec: ApiSpec, reference: readonly string[] = [...spec.fn.keys()]): Coverage {
  const ref = new Set(reference);
  const implemented: string[] = [];
  const unsupported: { name: string; reason: string }[] = [];
  for (const f of spec.functions) {
    if (!ref.has(f.name)) continue;
    if (f.unsupported === undefined) implemented.push(f.name);
    else unsupported.push({ name: f.name, reason: f.unsupported });
  }
  return {
    api: `${spec.name} ${spec.version}`,
    total: ref.size,
    implemented,
    unsupported,
    missing: reference.filter((name) => !spec.fn.has(name)),
    extra: spec.functions.map((f) => f.name).filter((name) => !ref.has(name)),
  };
}
