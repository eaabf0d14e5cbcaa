/**
 * How the journal tools print records: a compact, readable line per record (handle ids as `#id`, byte strings as
 * `<N bytes>`), ANSI colours when wanted, and a JSON form of wire values (bytes as `{"$bytes": base64}`, big integers
 * as `{"$bigint": "digits"}`) for JSON lines.
 */
import type { ApiSpec, ArgSpec, FunctionSpec, ReturnSpec } from '../../spec/types.js';
import type { WireValue } from '../../wire/frames.js';
import type { JournalRecord } from '../../../journal/format.js';

/** Colouring functions; identity when colours are off. */
export interface Palette {
  readonly seq: (s: string) => string;
  readonly fn: (s: string) => string;
  readonly handle: (s: string) => string;
  readonly bytes: (s: string) => string;
  readonly dim: (s: string) => string;
  readonly bad: (s: string) => string;
  readonly good: (s: string) => string;
  readonly title: (s: string) => string;
}

const sgr = (code: string) => (s: string): string => `\x1b[${code}m${s}\x1b[0m`;
const plain = (s: string): string => s;

/** A palette with ANSI colours, or without. */
export function palette(colours: boolean): Palette {
  if (!colours) return { seq: plain, fn: plain, handle: plain, bytes: plain, dim: plain, bad: plain, good: plain, title: plain };
  return { seq: sgr('2'), fn: sgr('1;36'), handle: sgr('33'), bytes: sgr('35'), dim: sgr('2'), bad: sgr('31'), good: sgr('32'), title: sgr('1') };
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/** A wire value in compact form: bytes as `<N bytes>`, strings quoted, arrays in brackets, maps in braces. */
export function formatValue(v: WireValue | undefined, p: Palette): string {
  if (v === undefined || v === null) return 'null';
  if (isBytes(v)) return p.bytes(`<${v.byteLength} bytes>`);
  if (typeof v === 'string') return JSON.stringify(v.length > 48 ? `${v.slice(0, 45)}...` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x, p)).join(', ')}]`;
  return `{${Object.entries(v as Record<string, WireValue>).map(([k, x]) => `${k}: ${formatValue(x, p)}`).join(', ')}}`;
}

const handleId = (v: WireValue | undefined, p: Palette): string => (typeof v === 'number' ? p.handle(`#${v}`) : formatValue(v, p));

/** One argument, knowing its role: handles as `#id`. */
export function formatArg(a: ArgSpec, v: WireValue | undefined, p: Palette): string {
  switch (a.role) {
    case 'handle': case 'handleOut':
      return handleId(v, p);
    case 'handles': case 'handlesOut':
      return Array.isArray(v) ? `[${v.map((x) => handleId(x, p)).join(', ')}]` : formatValue(v, p);
    case 'argValue': {
      const h = v as { handle?: unknown } | null;
      if (h && typeof h === 'object' && !isBytes(h) && !Array.isArray(h) && typeof h.handle === 'number') return p.handle(`#${h.handle}`);
      return formatValue(v, p);
    }
    case 'properties':
      if (!Array.isArray(v)) return formatValue(v, p);
      return `[${v.map((x, i) => (i % 2 === 1 && a.handleKeys[String(v[i - 1])] !== undefined ? handleId(x, p) : formatValue(x, p))).join(', ')}]`;
    case 'struct':
      if (!Array.isArray(v)) return formatValue(v, p);
      return `{${a.fields.map((field, i) => `${field.name}: ${field.kind !== undefined ? handleId(v[i], p) : formatValue(v[i], p)}`).join(', ')}}`;
    default:
      return formatValue(v, p);
  }
}

/** A returned value, knowing the function's return role. */
export function formatReturn(r: ReturnSpec, v: WireValue, p: Palette): string {
  return r.role === 'handle' ? handleId(v, p) : formatValue(v, p);
}

/** One record as a line: `seq  fn(args) -> ret  outs...`, with `dead` marking what compaction would delete. */
export function formatRecord(f: FunctionSpec, r: JournalRecord, p: Palette, dead = false): string {
  const args = f.args.map((a, i) => formatArg(a, r.args[i], p)).join(', ');
  let line = `${p.seq(String(r.seq).padStart(6))}  ${p.fn(f.name)}(${args}) -> ${formatReturn(f.returns, r.ret, p)}`;
  if (r.outs) {
    const outs = Object.entries(r.outs).map(([name, v]) => {
      const a = f.args.find((x) => x.name === name);
      return `${name}=${a ? formatArg(a, v, p) : formatValue(v, p)}`;
    });
    if (outs.length > 0) line += `  ${p.dim('outs')} ${outs.join(' ')}`;
  }
  if (dead) line += `  ${p.dim('(dead)')}`;
  return line;
}

/** A wire value in JSON form: bytes as `{"$bytes": base64}`, bigints as `{"$bigint": "digits"}`. */
export function jsonValue(v: WireValue | undefined): unknown {
  if (v === undefined || v === null) return null;
  if (isBytes(v)) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (Array.isArray(v)) return v.map((x) => jsonValue(x));
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, WireValue>).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

/** A record in the JSON lines form of `ava-journal export`. */
export function recordJson(spec: ApiSpec, session: number, r: JournalRecord): Record<string, unknown> {
  return { session, seq: r.seq, fn: spec.functions[r.fn]?.name ?? `#${r.fn}`, args: jsonValue(r.args), ret: jsonValue(r.ret), outs: jsonValue(r.outs), t: r.t };
}
