/**
 * Helpers of the migration tests (test/migrate/): a uvu `test` that prints AvaErrors, bounded waits, temporary
 * folders that are removed on exit, child processes with bounded runs, and the pid inside a worker id.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test as uvuTest } from 'uvu';
import { AvaError } from '../../src/errors.js';

/** The repository root (tests spawn `node --import tsx <file>` from there). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** uvu cannot print an error whose `details` is an object (every AvaError): turn unexpected ones into plain errors. */
export function test(name: string, body: () => unknown): void {
  uvuTest(name, async () => {
    try {
      await body();
    } catch (error) {
      if (AvaError.isAvaError(error)) {
        const e = new Error(`unexpected ${error.code}: ${error.message} ${JSON.stringify(error.details)}`);
        e.stack = `${e.message}\n${error.stack ?? ''}`;
        throw e;
      }
      throw error;
    }
  });
}

/** Rejects when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 50 ms until it returns true or `ms` pass; returns its last answer. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const folders = new Set<string>();
process.once('exit', () => { for (const dir of folders) rmSync(dir, { recursive: true, force: true }); });

/** A fresh temporary folder, removed by {@link removeTemp} or when the process exits. */
export function tempDir(prefix = 'ava-migrate-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.add(dir);
  return dir;
}

/** Removes a folder made by {@link tempDir}. */
export function removeTemp(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  folders.delete(dir);
}

/** The pid part of a worker id (`<pid>-<suffix>`, see src/worker/worker.ts). */
export function pidOfWorker(workerId: string): number {
  const m = /^(\d+)-/.exec(workerId);
  if (!m) throw new Error(`"${workerId}" is not a worker id of the form <pid>-<suffix>`);
  return Number(m[1]);
}

/** What a finished child process gave. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();
process.once('exit', () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });

/** Runs a command to its end, killed (SIGKILL) after `timeoutMs`. */
export function runCommand(command: string, args: readonly string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => { stderr += `\n[test] killed after ${timeoutMs} ms\n`; child.kill('SIGKILL'); }, timeoutMs);
    child.once('error', (error) => { clearTimeout(timer); children.delete(child); reject(error); });
    child.once('close', (code, signal) => { clearTimeout(timer); children.delete(child); resolve({ code, signal, stdout, stderr }); });
  });
}

/** A long-running child that printed one JSON line on stdout when ready (ava-worker, ava-manager). */
export interface Daemon<T> {
  readonly child: ChildProcess;
  readonly ready: T;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts a daemon and waits (at most `timeoutMs`) for its first stdout line, parsed as JSON. */
export async function startDaemon<T>(command: string, args: readonly string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<Daemon<T>> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], ...options });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve(); }));
  const stop = async (graceMs = 3000): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    const line = await within(new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      void exited.then(() => reject(new Error(`${command} ${args.join(' ')} exited before it was ready: ${stderr}`)));
    }), options.timeoutMs ?? 30_000, `${command} ${args.join(' ')}`);
    return { child, ready: JSON.parse(line) as T, stderr: () => stderr, stop };
  } catch (error) {
    await stop(500);
    throw error;
  }
}
