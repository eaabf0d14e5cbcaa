/**
 * Tiny benchmark harness: time a loop several times after a warm-up, keep the median, print a table of ratios
 * against the baseline measured in the same run, and write the JSON under bench/results/.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder with package.json), whether run from bench/ or dist/bench/. */
function packageRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** One measured row. */
export interface BenchRow {
  readonly name: string;
  /** Median nanoseconds per operation. */
  readonly nsPerOp: number;
  /** nsPerOp / the baseline row's nsPerOp. */
  readonly ratio: number;
  readonly ops: number;
}

/** Median ns per op of `body` (which runs `ops` operations), over `runs` timed runs after one warm-up run. */
export async function measure(ops: number, body: () => Promise<void> | void, runs = 7): Promise<number> {
  await body();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    await body();
    samples.push(Number(process.hrtime.bigint() - t0) / ops);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

/** Builds rows with ratios against the first entry (the baseline). */
export function rows(entries: readonly { name: string; nsPerOp: number; ops: number }[]): BenchRow[] {
  const base = entries[0]!.nsPerOp;
  return entries.map((e) => ({ ...e, ratio: e.nsPerOp / base }));
}

/** Prints a table and writes `bench/results/<name>.json`. */
export function report(name: string, title: string, table: readonly BenchRow[], extra: Record<string, unknown> = {}): void {
  console.log(`\n${title}`);
  for (const r of table) {
    console.log(`  ${r.name.padEnd(44)} ${r.nsPerOp.toFixed(0).padStart(10)} ns/op  ${r.ratio.toFixed(2).padStart(7)}x`);
  }
  const dir = join(packageRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const host = { platform: platform(), arch: arch(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
  writeFileSync(file, `${JSON.stringify({ name, title, date: new Date().toISOString(), host, rows: table, ...extra }, null, 2)}\n`);
  console.log(`  -> ${file}`);
}
