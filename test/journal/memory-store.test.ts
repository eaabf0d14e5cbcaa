/**
 * The journal store contract (./store-contract.ts) on memory-level: the in-memory store tests and tools use.
 *
 * node --import tsx test/journal/memory-store.test.ts
 */
import { MemoryLevel } from 'memory-level';
import type { JournalDb } from '../../journal/journal.js';
import { journalContract } from './store-contract.js';

journalContract('memory-level', async () => new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }) as unknown as JournalDb);
