/**
 * The runs list: every finished or stopped run kept in the browser's IndexedDB with its settings
 * (the forms' drafts), metrics (one row of stats per step) and last samples, by name and date, for
 * the runs panel to list, delete, overlay and evaluate side by side. Its trained model is kept by the
 * engine worker in OPFS under the same id (workers/run-weights.ts); the record says what and how big.
 */
import { create } from 'zustand';
import type { KeptWeightsKind } from '../protocol.ts';

export type RunMethod = 'ppo' | 'dpo' | 'reward';

export interface SavedRun {
  id: string;
  name: string;
  /** ISO date of the end of the run. */
  date: string;
  method: RunMethod;
  /** The settings forms' drafts, as they were. */
  settings: unknown;
  /** One row per step: the step and its scalar stats by TRL name. */
  metrics: { step: number; stats: Partial<Record<string, number>> }[];
  /** The last step's samples (PPO) or pairs (DPO, reward model). */
  samples: unknown;
  /** Bytes of the stored record (its JSON). */
  bytes: number;
  /** The trained model kept in OPFS (null: not kept, e.g. its save failed). */
  weights?: {
    kind: KeptWeightsKind;
    bytes: number;
    /** A LoRA policy kept as its adapter: the base (Hub repo or URL) it is merged into to evaluate. */
    base?: string | null;
  } | null;
}

/** The curve a run's overlay shows: PPO's mean reward, else the trainer's loss. */
export function overlayStat(method: RunMethod): string {
  return method === 'ppo' ? 'env/reward_mean' : 'loss';
}

/** (step, value) points of `stat` in a run, skipping steps without it. */
export function curve(run: SavedRun, stat: string): [number, number][] {
  return run.metrics.flatMap((m) => {
    const v = m.stats[stat];
    return v === undefined || !Number.isFinite(v) ? [] : [[m.step, v] as [number, number]];
  });
}

const DB = 'rlhf-studio-runs';
const STORE = 'runs';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('cannot open IndexedDB'));
  });
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const req = f(db.transaction(STORE, mode).objectStore(STORE));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
    });
  } finally {
    db.close();
  }
}

export interface RunsState {
  runs: SavedRun[];
  /** Bytes the origin uses and may use (navigator.storage.estimate()), when known. */
  usage: { used: number; quota: number } | null;
  selected: string[];
  refresh(): Promise<void>;
  /** Stores a new record; returns its id. */
  save(run: Omit<SavedRun, 'id' | 'bytes'>): Promise<string>;
  /** Records what of a run's model is kept. */
  setWeights(id: string, weights: SavedRun['weights']): Promise<void>;
  remove(id: string): Promise<void>;
  toggle(id: string): void;
}

export const useRuns = create<RunsState>()((set, get) => ({
  runs: [],
  usage: null,
  selected: [],
  refresh: async () => {
    const runs = (await tx<SavedRun[]>('readonly', (s) => s.getAll())).sort((a, b) =>
      a.date.localeCompare(b.date),
    );
    const est = await navigator.storage?.estimate?.();
    set({ runs, usage: est ? { used: est.usage ?? 0, quota: est.quota ?? 0 } : null });
  },
  save: async (r) => {
    const id = `${r.date}-${Math.random().toString(36).slice(2, 8)}`;
    const record: SavedRun = { ...r, id, bytes: 0 };
    record.bytes = new TextEncoder().encode(JSON.stringify(record)).length;
    await tx('readwrite', (s) => s.put(record));
    await get().refresh();
    return id;
  },
  setWeights: async (id, weights) => {
    const record = await tx<SavedRun | undefined>('readonly', (s) => s.get(id));
    if (!record) return;
    await tx('readwrite', (s) => s.put({ ...record, weights }));
    await get().refresh();
  },
  remove: async (id) => {
    await tx('readwrite', (s) => s.delete(id));
    set((s) => ({ selected: s.selected.filter((x) => x !== id) }));
    await get().refresh();
  },
  toggle: (id) =>
    set((s) => ({
      selected: s.selected.includes(id) ? s.selected.filter((x) => x !== id) : [...s.selected, id],
    })),
}));
