/**
 * Remote calls over sockets, against the transport's own floor measured in the same run.
 *
 * - `socket-rtt`: the per-call round trip of a cheap toyacc query (tq_get_device_info of a uint32) through the
 *   guestlib to a worker in another process, over unix and tcp; beside a raw Node socket echo (a tiny echo server
 *   process that sends back each length-prefixed frame; the client sends a frame of the call frame's size and waits
 *   for the echo), and the same query over the local channel (same thread, no codec) for scale.
 * - `socket-throughput`: asynchronous batched calls per second (200,000 posted tq_set_kernel_arg, then one waiting
 *   call that returns once the worker ran them all), over unix and tcp.
 *
 * The measured loops take turns round after round (the host may be noisy: other processes, vCPU wake-ups), and each
 * ratio is the median of the ratios within a round. Target (issue): unix and tcp round trip <= 1.3x the raw echo of
 * the same frame size.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TQ } from '../fixtures/toyacc/constants.js';
import { toyaccSpec } from '../src/apis/toyacc/spec.js';
import type { Address } from '../src/config.js';
import type { Handle } from '../src/guest/handle.js';
import { openGuestlib } from '../src/guest/open.js';
import type { Guestlib } from '../src/guest/open.js';
import { connectSocketChannel } from '../src/transport/connect.js';
import { LocalChannel } from '../src/transport/local.js';
import { encodeFrame } from '../src/wire/codec.js';
import { spawnWorkerProcess } from '../src/worker/spawn.js';
import type { WorkerProcess } from '../src/worker/spawn.js';
import { report, rows } from './harness.js';

const RTT_OPS = 3_000;
const POSTED = 200_000;
const TARGET = 1.3;

/**
 * The echo server, as a script for `node -e`: listens on the unix path given as its argument and on a fresh tcp port
 * (printed as one JSON line), and writes back every whole length-prefixed frame it receives.
 */
const ECHO_SERVER = `
const net = require('node:net');
function serve(socket) {
  if (socket.setNoDelay) socket.setNoDelay(true);
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 4) {
      const n = pending.readUInt32BE(at);
      if (pending.length - at < 4 + n) break;
      socket.write(pending.subarray(at, at + 4 + n));
      at += 4 + n;
    }
    pending = pending.subarray(at);
  });
  socket.on('error', () => {});
}
const unix = net.createServer(serve);
unix.listen(process.argv[1], () => {
  const tcp = net.createServer(serve);
  tcp.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: tcp.address().port }) + '\\n'));
});
process.on('SIGTERM', () => process.exit(0));
`;

interface EchoServer {
  readonly child: ChildProcess;
  readonly unix: Address;
  readonly tcp: Address;
}

async function startEcho(path: string): Promise<EchoServer> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the echo server did not start within 10 s')), 10_000);
    createInterface({ input: child.stdout! }).once('line', (l) => { clearTimeout(timer); resolve(l); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the echo server exited (${code})`)); });
  });
  const { port } = JSON.parse(line) as { port: number };
  return { child, unix: { kind: 'unix', path }, tcp: { kind: 'tcp', host: '127.0.0.1', port } };
}

function openRaw(address: Address): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = address.kind === 'unix' ? connect(address.path) : connect(address.port, address.host);
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `frame` and resolves when its echo has come back whole. */
function echoRoundTrip(socket: Socket, frame: Buffer): () => Promise<void> {
  let waiting: (() => void) | undefined;
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.byteLength;
    if (received >= frame.byteLength && waiting) {
      received -= frame.byteLength;
      const done = waiting;
      waiting = undefined;
      done();
    }
  });
  return () => new Promise<void>((resolve) => {
    waiting = resolve;
    socket.write(frame);
  });
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * ns per op of each body in each round. The bodies take turns, round after round, so that a noisy host (other
 * processes, a vCPU waking up) weighs on all of them alike, and a ratio within one round compares like with like.
 */
async function interleaved(ops: number, bodies: readonly (() => Promise<void>)[], rounds = 11): Promise<number[][]> {
  for (const body of bodies) await body(); // warm-up
  const samples: number[][] = bodies.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let b = 0; b < bodies.length; b++) {
      const t0 = process.hrtime.bigint();
      await bodies[b]!();
      samples[b]!.push(Number(process.hrtime.bigint() - t0) / ops);
    }
  }
  return samples;
}

/** The median over rounds of `a`'s time over `b`'s. */
const medianRatio = (a: readonly number[], b: readonly number[]): number => median(a.map((x, r) => x / b[r]!));

async function firstDevice(lib: Guestlib): Promise<Handle> {
  return ((await lib.api.tq_get_devices!(1, true)).outs.devices as Handle[])[0]!;
}

/** A loop of RTT_OPS round trips of the cheap query through `lib`. */
async function queryLoop(lib: Guestlib): Promise<() => Promise<void>> {
  const device = await firstDevice(lib);
  const out = new Uint8Array(4);
  return async () => {
    for (let i = 0; i < RTT_OPS; i++) await lib.api.tq_get_device_info!(device, TQ.DEVICE_UNITS, 4, out);
  };
}

/** A loop of POSTED asynchronous tq_set_kernel_arg, then one waiting call (it returns once the worker ran them all). */
async function postedLoop(lib: Guestlib): Promise<() => Promise<void>> {
  const { api } = lib;
  const device = await firstDevice(lib);
  const context = (await api.tq_create_context!(1, [device])).ret as Handle;
  const program = (await api.tq_create_program!(context, 'fill')).ret as Handle;
  await api.tq_build_program!(program, null);
  const kernel = (await api.tq_create_kernel!(program, 'fill')).ret as Handle;
  const value = new Uint8Array(new Float32Array([1.5]).buffer);
  const out = new Uint8Array(4);
  return async () => {
    for (let i = 0; i < POSTED; i++) void api.tq_set_kernel_arg!(kernel, 1, 4, value);
    await api.tq_get_device_info!(device, TQ.DEVICE_UNITS, 4, out);
  };
}

const remoteLib = async (worker: WorkerProcess, sessionId: string): Promise<Guestlib> => openGuestlib(toyaccSpec, {
  channel: await connectSocketChannel({ address: worker.address, spec: toyaccSpec, sessionId, ...(worker.token ? { token: worker.token } : {}) }),
});

/** Runs the benchmark. */
export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ava-bench-sockets-'));
  const started: { stop(): Promise<void> }[] = [];
  const sockets: Socket[] = [];
  let echo: EchoServer | undefined;
  try {
    const unixWorker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'unix', path: join(dir, 'worker.sock') } });
    started.push(unixWorker);
    const tcpWorker = await spawnWorkerProcess({ spec: 'toyacc', listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
    started.push(tcpWorker);
    echo = await startEcho(join(dir, 'echo.sock'));

    // The call frame of the query as the guest sends it (its seq in the range the runs reach).
    const callFrame = encodeFrame({ t: 'call', seq: 100_000, fn: 'tq_get_device_info', args: [1, TQ.DEVICE_UNITS, 4, true, true], retId: null });
    const echoFrame = Buffer.alloc(callFrame.byteLength, 0x5a);
    echoFrame.writeUInt32BE(callFrame.byteLength - 4, 0);

    const echoLoop = async (address: Address): Promise<() => Promise<void>> => {
      const socket = await openRaw(address);
      sockets.push(socket);
      const roundTrip = echoRoundTrip(socket, echoFrame);
      return async () => {
        for (let i = 0; i < RTT_OPS; i++) await roundTrip();
      };
    };

    const unixLib = await remoteLib(unixWorker, 'bench-unix');
    const tcpLib = await remoteLib(tcpWorker, 'bench-tcp');
    const localLib = await openGuestlib(toyaccSpec, { channel: await LocalChannel.open({ spec: toyaccSpec }) });
    // Order: raw unix echo first (the baseline of the ratios), then each guest beside its raw echo.
    const samples = await interleaved(RTT_OPS, [
      await echoLoop(echo.unix), await queryLoop(unixLib), await echoLoop(echo.tcp), await queryLoop(tcpLib), await queryLoop(localLib),
    ]);
    await localLib.close();
    const [rawUnix, unixRtt, rawTcp, tcpRtt, localRtt] = samples.map(median) as [number, number, number, number, number];
    const unixRatio = medianRatio(samples[1]!, samples[0]!);
    const tcpRatio = medianRatio(samples[3]!, samples[2]!);
    report('socket-rtt', `round trip of a cheap query (tq_get_device_info, uint32) vs a raw echo of the ${callFrame.byteLength}-byte call frame`, rows([
      { name: 'raw unix socket echo (baseline)', nsPerOp: rawUnix, ops: RTT_OPS },
      { name: 'guestlib over unix (worker process)', nsPerOp: unixRtt, ops: RTT_OPS },
      { name: 'raw tcp socket echo', nsPerOp: rawTcp, ops: RTT_OPS },
      { name: 'guestlib over tcp (worker process)', nsPerOp: tcpRtt, ops: RTT_OPS },
      { name: 'guestlib over local (same thread, for scale)', nsPerOp: localRtt, ops: RTT_OPS },
    ]), { callFrameBytes: callFrame.byteLength, unixOverRawEcho: unixRatio, tcpOverRawEcho: tcpRatio, target: TARGET });
    console.log(`  unix rtt / raw unix echo = ${unixRatio.toFixed(2)}x, tcp rtt / raw tcp echo = ${tcpRatio.toFixed(2)}x (target <= ${TARGET}x; medians of per-round ratios)`);

    const posted = await interleaved(POSTED, [await postedLoop(unixLib), await postedLoop(tcpLib)], 5);
    const [unixPosted, tcpPosted] = posted.map(median) as [number, number];
    report('socket-throughput', `asynchronous batched calls: ${POSTED} tq_set_kernel_arg posted, then one waiting call`, rows([
      { name: 'posted over unix (baseline)', nsPerOp: unixPosted, ops: POSTED },
      { name: 'posted over tcp', nsPerOp: tcpPosted, ops: POSTED },
    ]), { callsPerSecond: { unix: 1e9 / unixPosted, tcp: 1e9 / tcpPosted } });
    console.log(`  unix: ${(1e9 / unixPosted).toFixed(0)} calls/s, tcp: ${(1e9 / tcpPosted).toFixed(0)} calls/s`);
    await unixLib.close();
    await tcpLib.close();
  } finally {
    for (const socket of sockets) socket.destroy();
    await Promise.allSettled(started.map((w) => w.stop()));
    echo?.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
