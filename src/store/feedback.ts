/**
 * Teach it by clicking: the choices the user makes between two continuations of a prompt, kept in
 * the browser (localStorage) and written as TRL's preference format, one JSON object per line with
 * `prompt`, `chosen` and `rejected` (what DPOTrainer and RewardTrainer read).
 *
 * Ties are kept and counted but not written: a tie says neither continuation is better, and the
 * preference format has no way to say so (TRL's trainers would learn a preference that is not there).
 * Skips are not kept.
 */
import { create } from 'zustand';

/** Which continuation the user preferred: the first, the second, or neither (a tie). */
export type Choice = 1 | 2 | 0;

/** Where a continuation came from. */
export type Origin = 'policy' | 'reference';

export interface FeedbackRecord {
  prompt: string;
  /** The continuations as shown, left (1) and right (2); the prompt is not repeated in them. */
  first: string;
  second: string;
  origins: [Origin, Origin];
  choice: Choice;
  /** ISO time of the click. */
  at: string;
}

export const FEEDBACK_KEY = 'rlhf-studio-feedback';

/** The stored records; a corrupt or missing entry reads as none. */
function load(): FeedbackRecord[] {
  try {
    const raw = globalThis.localStorage?.getItem(FEEDBACK_KEY);
    const xs: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(xs) ? (xs as FeedbackRecord[]) : [];
  } catch {
    return [];
  }
}

function store(records: FeedbackRecord[]): void {
  globalThis.localStorage?.setItem(FEEDBACK_KEY, JSON.stringify(records));
}

export interface FeedbackState {
  records: FeedbackRecord[];
  add(r: Omit<FeedbackRecord, 'at'>): void;
  clear(): void;
}

export const useFeedback = create<FeedbackState>()((set, get) => ({
  records: load(),
  add: (r) => {
    const records = [...get().records, { ...r, at: new Date().toISOString() }];
    store(records);
    set({ records });
  },
  clear: () => {
    store([]);
    set({ records: [] });
  },
}));

/** TRL's preference rows of the records: ties are left out (see the file comment). */
export function preferencePairs(
  records: readonly FeedbackRecord[],
): { prompt: string; chosen: string; rejected: string }[] {
  return records
    .filter((r) => r.choice !== 0)
    .map((r) =>
      r.choice === 1
        ? { prompt: r.prompt, chosen: r.first, rejected: r.second }
        : { prompt: r.prompt, chosen: r.second, rejected: r.first },
    );
}

/** The pairs as JSON Lines (prompt, chosen, rejected). */
export function preferenceJsonl(records: readonly FeedbackRecord[]): string {
  return preferencePairs(records)
    .map((p) => JSON.stringify(p) + '\n')
    .join('');
}
