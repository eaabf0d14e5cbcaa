/**
 * Journals shared within a process: LevelDB lets one process open a store once, so guest sessions of one process
 * that journal to the same folder share one {@link Journal}, closed when the last of them lets go.
 */
import { resolve } from 'node:path';
import type { ApiSpec } from '../src/spec/types.js';
import type { Durability } from './journal.js';
import { Journal, JournalError } from './journal.js';

const open = new Map<string, { journal: Promise<Journal>; users: number }>();

/** A handle on a shared journal; `release()` when done. */
export interface SharedJournal {
  readonly journal: Journal;
  release(): Promise<void>;
}

/** Opens (or joins) the journal at `path`. */
export async function acquireJournal(path: string, spec: ApiSpec, durability: Durability): Promise<SharedJournal> {
  const key = resolve(path);
  let entry = open.get(key);
  if (!entry) {
    entry = { journal: Journal.open({ path: key, spec, durability }), users: 0 };
    open.set(key, entry);
    entry.journal.catch(() => open.delete(key));
  }
  entry.users++;
  const journal = await entry.journal;
  if (journal.spec.hash !== spec.hash) {
    entry.users--;
    throw new JournalError('ERR_AVA_JOURNAL_SPEC', `the journal ${key} is open for ${journal.spec.name}, not ${spec.name}`);
  }
  let released = false;
  return {
    journal,
    async release() {
      if (released) return;
      released = true;
      if (--entry!.users === 0) {
        open.delete(key);
        await journal.close();
      }
    },
  };
}
