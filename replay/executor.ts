/**
 * The replay executor: runs a plan on a target worker through a channel, binding the same guest-issued ids to the
 * target's new native objects, checks that every replayed call answers as it did when recorded, then restores
 * explicit state (from a checkpoint, or streamed from the source worker).
 *
 * Calls whose outcome is known in advance (see `planOf(...).asyncEligible`) are posted in batches; the worker
 * reports only failures, which become {@link ReplayMismatchError}s naming the record. The others wait for their reply,
 * which is compared field by field (status, returned handle id, ids of handle outs).
 */
import type { JournalRecord } from '../journal/format.js';
import { createdHandles, inputHandles, mappedId } from '../journal/graph.js';
import { AvaError } from '../src/errors.js';
import { callFailed } from '../src/spec/outcome.js';
import { planOf } from '../src/spec/plan.js';
import type { FunctionSpec } from '../src/spec/types.js';
import type { Channel } from '../src/transport/channel.js';
import type { CallFrame, ReplyFrame, WireValue } from '../src/wire/frames.js';
import type { CallDiff } from './errors.js';
import { ReplayMismatchError, ReplayTargetError } from './errors.js';
import type { ReplayPlan } from './plan.js';

/** Progress of a replay. */
export interface ReplayProgress {
  readonly phase: 'replay' | 'restore';
  readonly done: number;
  readonly total: number;
}

/** Options of {@link replayOnto}. */
export interface ReplayOptions {
  /** Explicit state to restore after the calls, by handle id. */
  readonly states?: ReadonlyMap<number, Uint8Array> | AsyncIterable<readonly [number, Uint8Array]>;
  /** Called now and then on long replays. */
  readonly onProgress?: (progress: ReplayProgress) => void;
  /** Most calls posted before waiting for the worker to catch up. @defaultValue 512 */
  readonly batch?: number;
  /**
   * Records of transfers and launches stand for the transient objects they made (events): recreate those completed
   * instead of running the call again. False replays them as calls (failover's work since the last checkpoint).
   * @defaultValue true
   */
  readonly recreateTransients?: boolean;
}

/** What a replay did. */
export interface ReplayResult {
  readonly calls: number;
  readonly restored: number;
  readonly restoredBytes: number;
  readonly ms: number;
}

/** The id the guest issued for a record's returned handle. */
function retIdOf(f: FunctionSpec, record: JournalRecord): number | null {
  if (f.returns.role === 'mapped') return mappedId(f, record.ret) ?? null;
  return f.returns.role === 'handle' && typeof record.ret === 'number' ? record.ret : null;
}

/**
 * A mapping call made again on the target (the region was still mapped): without its wait list and event, whose
 * transient objects are recreated (or dead) on their own. The unmap writes the guest's bytes back in full, so what
 * the new mapping holds first does not matter.
 */
function remapArgs(spec: ReplayPlan['spec'], f: FunctionSpec, record: JournalRecord): WireValue[] {
  const args = [...record.args];
  const { indexOf } = planOf(f);
  f.args.forEach((a, i) => {
    if (a.role === 'handles' && spec.kind.get(a.kind)?.transient) {
      args[i] = null;
      if (typeof a.count === 'string') args[indexOf.get(a.count)!] = 0;
    } else if (a.role === 'handleOut' && a.optional && spec.kind.get(a.kind)?.transient) args[i] = null;
  });
  return args;
}

/** The record's arguments, with handle-array outs proposing the ids actually bound when recorded. */
function argsOf(f: FunctionSpec, record: JournalRecord): WireValue[] {
  const args = [...record.args];
  f.args.forEach((a, i) => {
    if (a.role !== 'handlesOut') return;
    const bound = record.outs?.[a.name];
    const proposed = args[i];
    if (Array.isArray(bound) && Array.isArray(proposed)) {
      const merged = [...proposed];
      bound.forEach((id, k) => { merged[k] = id; });
      args[i] = merged;
    }
  });
  return args;
}

/** Field-level difference between a record and a replayed reply. */
export function diffReply(f: FunctionSpec, record: JournalRecord, reply: ReplyFrame, success: number): CallDiff[] {
  const diff: CallDiff[] = [];
  if (reply.error) diff.push({ field: 'error', recorded: null, attempted: `${reply.error.code}: ${reply.error.message}` });
  if (f.returns.role !== 'void' && f.returns.role !== 'mapped' && reply.ret !== record.ret && !reply.error) {
    diff.push({ field: 'ret', recorded: record.ret, attempted: reply.ret });
  }
  for (const a of f.args) {
    if (a.role === 'errcode') {
      const v = reply.outs?.[a.name];
      if (v !== undefined && v !== success) diff.push({ field: a.name, recorded: success, attempted: v });
    } else if ((a.role === 'handleOut' || a.role === 'handlesOut') && record.outs?.[a.name] !== undefined) {
      const want = JSON.stringify(record.outs[a.name]);
      const got = JSON.stringify(reply.outs?.[a.name]);
      if (want !== got) diff.push({ field: a.name, recorded: record.outs[a.name], attempted: reply.outs?.[a.name] });
    }
  }
  return diff;
}

/**
 * Replays `plan` on the worker session behind `channel`, then restores `options.states`.
 * @throws {ReplayMismatchError} when a replayed call answers differently from its record.
 * @throws {ReplayTargetError} when the target fails (channel closed, state restore refused).
 */
export async function replayOnto(channel: Channel, plan: ReplayPlan, options: ReplayOptions = {}): Promise<ReplayResult> {
  const started = performance.now();
  const spec = plan.spec;
  if (channel.spec.name !== spec.name || channel.spec.hash !== spec.hash) {
    throw new ReplayTargetError(`the target serves ${channel.spec.name} ${channel.spec.hash.slice(0, 12)}, the plan is of ${spec.name} ${spec.hash.slice(0, 12)}`);
  }
  const success = spec.status.success;
  const batchSize = options.batch ?? 512;
  const fns = spec.functions;
  const bySeq = new Map<number, { index: number; record: JournalRecord; f: FunctionSpec }>();
  let failure: ReplyFrame | undefined;
  const stopListening = channel.onAsyncFailure((reply) => { failure ??= reply; });
  const fail = (reply: ReplyFrame): never => {
    const entry = bySeq.get(reply.seq);
    if (!entry) throw new ReplayTargetError(`the target reported a failure for an unknown call ${reply.seq}`);
    throw new ReplayMismatchError(entry.index, entry.record.seq, entry.f.name, diffReply(entry.f, entry.record, reply, success));
  };
  const target = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (error) {
      if (AvaError.isAvaError(error) && error.code === 'ERR_AVA_REPLAY_MISMATCH') throw error;
      throw new ReplayTargetError(`the replay target failed: ${(error as Error).message}`, { cause: error });
    }
  };
  const post = (frames: CallFrame[]): void => {
    try {
      channel.post(frames);
    } catch (error) {
      throw new ReplayTargetError(`the replay target failed: ${(error as Error).message}`, { cause: error });
    }
  };
  try {
    let pending: CallFrame[] = [];
    let seq = 0;
    const total = plan.records.length;
    for (let index = 0; index < total; index++) {
      const record = plan.records[index]!;
      const f = fns[record.fn];
      if (!f) throw new ReplayTargetError(`record ${record.seq} names function #${record.fn}, which the spec does not have`);
      if ((options.recreateTransients ?? true) && (f.record === 'transfer' || f.record === 'execute')) {
        if (pending.length > 0) {
          post(pending);
          pending = [];
        }
        for (const { id, kind } of createdHandles(f, record)) {
          if (spec.kind.get(kind)?.transient) await target(channel.recreateTransient(id, kind, inputHandles(f, record.args)));
        }
        if (mappedId(f, record.ret) !== undefined) {
          const frame: CallFrame = { seq: seq++, fn: f.name, args: remapArgs(spec, f, record), retId: retIdOf(f, record) };
          bySeq.set(frame.seq, { index, record, f });
          const reply = await target(channel.call(frame));
          if (reply.error || callFailed(spec, f.name, reply)) fail(reply);
        }
        continue;
      }
      const frame: CallFrame = { seq: seq++, fn: f.name, args: argsOf(f, record), retId: retIdOf(f, record) };
      bySeq.set(frame.seq, { index, record, f });
      // A record of a call that failed when recorded (a failed build) must fail the same way: wait for its reply.
      const expectsFailure = f.returns.role === 'status' && record.ret !== success;
      if (planOf(f).asyncEligible && !expectsFailure) {
        pending.push({ ...frame, async: true });
        if (pending.length >= batchSize) {
          post(pending);
          pending = [];
        }
        continue;
      }
      if (pending.length > 0) {
        post(pending);
        pending = [];
      }
      const reply = await target(channel.call(frame));
      if (failure) fail(failure);
      // A kept failure may have depended on objects that are dead and not replayed (a rebuild refused while a kernel,
      // since released, existed): it is replayed for the state it changed, and only a refusal by the worker counts.
      if (expectsFailure ? Boolean(reply.error) : callFailed(spec, f.name, reply) || diffReply(f, record, reply, success).length > 0) fail(reply);
      if (index % 1000 === 0) options.onProgress?.({ phase: 'replay', done: index + 1, total });
    }
    if (pending.length > 0) post(pending);
    // After the barrier every posted call has run, and the failures among them have been reported.
    await target(channel.barrier());
    if (failure) fail(failure);
    options.onProgress?.({ phase: 'replay', done: total, total });

    let restored = 0;
    let restoredBytes = 0;
    if (options.states) {
      const entries: AsyncIterable<readonly [number, Uint8Array]> | Iterable<readonly [number, Uint8Array]> =
        Symbol.asyncIterator in options.states ? options.states : (options.states as ReadonlyMap<number, Uint8Array>).entries();
      for await (const [id, bytes] of entries) {
        await target(channel.restoreState(id, bytes));
        restored++;
        restoredBytes += bytes.byteLength;
        options.onProgress?.({ phase: 'restore', done: restored, total: options.states instanceof Map ? options.states.size : restored });
      }
    }
    return { calls: total, restored, restoredBytes, ms: performance.now() - started };
  } finally {
    stopListening();
  }
}
