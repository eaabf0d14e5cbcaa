/**
 * `ava-migrate`: runs a workload with migration armed and prints the per-phase downtime table.
 *
 *   ava-migrate --call r100 --demo                 the built-in toyacc demo, in this process
 *   ava-migrate --call 42 -- node my-workload.js   any program written against the guestlib, as a child process
 *   ava-migrate --call r100 -- ./opencl-program    a compiled OpenCL program, through the ICD (src/cfront)
 *
 * The workload's guest sessions read the AVA_* variables this command sets: AVA_MIGRATION_CALL_ID, AVA_MIGRATION_SEED,
 * AVA_RECORD_REPLAY=1, AVA_JOURNAL, AVA_CHANNEL, AVA_MIGRATION_TARGET, and AVA_MIGRATION_REPORT (where each migration
 * appends its report). Workers are started as the channel needs them (a worker process per session for unix and tcp,
 * a thread for shm); `--target` sends the session to a peer manager instead.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { toyaccSpec } from '../apis/toyacc/spec.js';
import { runToyaccDemo } from '../apis/toyacc/demo.js';
import { journalPath, parseAddress, parseMigrationTrigger } from '../config.js';
import type { ChannelKind } from '../config.js';
import { ConfigError } from '../errors.js';
import { openGuestlib } from '../guest/open.js';
import { icdEnvironment, isNativeProgram } from '../cfront/icd-env.js';
import type { MigrationReport } from '../../migrate/migrate.js';
import { parseCli } from './common.js';

const HELP = `Usage: ava-migrate [options] --demo
       ava-migrate [options] -- <workload command> [args...]

Runs a workload with a live migration armed and prints the per-phase downtime table and the journal location.

Options:
  --call <n|r<limit>>     migrate before call n, or before a random call below limit (default r100)
  --seed <n>              seed of the random choice (printed, so a run can be reproduced)
  --transport <kind>      local | shm | unix | tcp (default unix: guest and workers in separate processes)
  --target <host:port>    migrate to a worker of the peer manager there (default: a new worker like the source's)
  --journal <dir>         journal folder (default AVA_JOURNAL, else .ava/journal; -toyacc for --demo, -opencl for
                          compiled programs, since a folder holds one spec's sessions)
  --precopy               pre-copy (live) migration: state copied while the workload runs, then only what changed
  --icd / --no-icd        run the command through the OpenCL ICD (default: when it is a compiled program, not a script)
  --demo                  run the built-in toyacc demo workload (40 rounds, over 100 calls) instead of a command
  --json                  print one JSON object (chosen call, phases in ms, total, bytes moved, journal path)
  -h, --help              show this help
`;

const PHASES = ['drain', 'extract', 'connect', 'replay', 'restore', 'switch'] as const;

function table(reports: readonly MigrationReport[], exitCode: number): string {
  if (reports.length === 0) {
    return exitCode === 0
      ? 'no migration happened (the workload made fewer calls than the chosen call)\n'
      : `no migration happened: the workload failed (exit status ${exitCode}) before the chosen call; see its output above\n`;
  }
  const rows = reports.map((r) => [
    String(r.call), ...PHASES.map((p) => r.phases[p].toFixed(2)), r.total.toFixed(2), String(r.bytes), r.stateRoute ?? '', String(r.replayed), `${r.from} -> ${r.to}`,
  ]);
  const head = ['call', ...PHASES.map((p) => `${p} ms`), 'total ms', 'state bytes', 'state went', 'replayed', 'workers'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padStart(widths[i]!))).join('  ');
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** The CLI's main function. */
export async function main(argv: string[]): Promise<void> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values } = parseCli(own, {
    call: { type: 'string' }, seed: { type: 'string' }, transport: { type: 'string' }, target: { type: 'string' },
    journal: { type: 'string' }, demo: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    precopy: { type: 'boolean' }, icd: { type: 'boolean' }, 'no-icd': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (!values.demo && command.length === 0) throw new ConfigError('give a workload command after --, or --demo (see --help)');
  if (values.demo && command.length > 0) throw new ConfigError('--demo runs the built-in workload; do not give a command too');
  const callText = (values.call as string | undefined) ?? 'r100';
  parseMigrationTrigger(callText, '--call');
  const seedText = (values.seed as string | undefined) ?? String(Math.floor(Math.random() * 2 ** 31));
  if (!/^\d{1,15}$/.test(seedText)) throw new ConfigError(`--seed "${seedText}" must be a non-negative integer`);
  const transport = ((values.transport as string | undefined) ?? 'unix').toLowerCase();
  if (!['local', 'shm', 'unix', 'tcp'].includes(transport)) throw new ConfigError(`--transport "${transport}" must be local, shm, unix or tcp`);
  if (values.target) parseAddress(values.target as string, '--target');
  // A compiled OpenCL program runs unmodified through the ICD; scripts use the guestlib themselves.
  const throughIcd = command.length > 0 && !values['no-icd'] && (values.icd === true || isNativeProgram(command[0]!));
  // A journal folder holds the sessions of one spec: by default the built-in demo (toyacc) and native OpenCL
  // programs each get their own, so running one after the other never meets ERR_AVA_JOURNAL_SPEC.
  const ownFolder = values.demo ? 'toyacc' : throughIcd ? 'opencl' : undefined;
  const journal = values.journal ? resolve(values.journal as string)
    : process.env.AVA_JOURNAL || !ownFolder ? journalPath() : `${journalPath()}-${ownFolder}`;
  const scratch = mkdtempSync(join(tmpdir(), 'ava-migrate-'));
  const reportPath = join(scratch, 'reports.jsonl');
  const env: Record<string, string> = {
    AVA_MIGRATION_CALL_ID: callText, AVA_MIGRATION_SEED: seedText, AVA_RECORD_REPLAY: '1', AVA_JOURNAL: journal,
    AVA_CHANNEL: transport.toUpperCase(), AVA_MIGRATION_REPORT: reportPath, AVA_MIGRATION_MODE: values.precopy ? 'precopy' : 'stop',
    ...(values.target ? { AVA_MIGRATION_TARGET: values.target as string } : {}),
  };
  if (throughIcd) {
    Object.assign(env, await icdEnvironment({ onProgress: (m) => { if (!values.json) process.stderr.write(`ava-migrate: ${m}\n`); } }));
  }
  let exitCode = 0;
  let demoResult: unknown;
  try {
    if (values.demo) {
      Object.assign(process.env, env);
      // The demo's journal session is its own: a fresh folder per run would lose nothing, but the user asked for this one.
      await using lib = await openGuestlib(toyaccSpec, { transport: transport as ChannelKind });
      // 40 rounds: the demo makes over 100 calls, so the default r100 trigger always falls inside it.
      demoResult = await runToyaccDemo(lib.api, { rounds: 40 });
    } else {
      exitCode = await new Promise<number>((resolveExit, reject) => {
        const child = spawn(command[0]!, command.slice(1), { stdio: values.json ? ['inherit', 'inherit', 'inherit'] : 'inherit', env: { ...process.env, ...env } });
        child.once('error', (error) => reject(new ConfigError(`cannot start ${command[0]}: ${error.message}`, { cause: error })));
        child.once('exit', (code, signal) => resolveExit(code ?? (signal ? 128 : 1)));
      });
    }
    let reports: MigrationReport[] = [];
    try {
      reports = readFileSync(reportPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MigrationReport);
    } catch {
      reports = [];
    }
    if (values.json) {
      const first = reports[0];
      process.stdout.write(`${JSON.stringify({
        call: first?.call ?? null, trigger: callText, seed: Number(seedText), transport, migrations: reports.length,
        phases: first?.phases ?? null, total: first?.total ?? null, bytes: first?.bytes ?? null, reports, journal,
        exitCode, ...(demoResult ? { result: demoResult } : {}),
      })}\n`);
    } else {
      if (demoResult) process.stdout.write(`demo result: ${JSON.stringify(demoResult)}\n`);
      process.stdout.write(table(reports, exitCode));
      process.stdout.write(`journal: ${journal}   (inspect with: ava-journal ls --journal ${journal})\n`);
    }
    if (exitCode !== 0) process.exitCode = exitCode;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
