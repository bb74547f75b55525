/**
 * The Evaluate panel's state: the last before/after report of the run (reference vs policy on the
 * same queries and sampling keys, src/rl/evaluate.ts) and its CSV.
 */
import { create } from 'zustand';
import type { FromWorker } from '../protocol.ts';
import type { EvalReport } from '../rl/evaluate.ts';

export interface EvaluateState {
  /** The request in flight, if any. */
  pendingId: number | null;
  report: EvalReport | null;
  /** The PPO step the policy was at (-1: kept runs side by side). */
  step: number;
  /** What was evaluated, for kept runs side by side. */
  title: string | null;
}

export const useEvaluate = create<EvaluateState>()(() => ({
  pendingId: null,
  report: null,
  step: 0,
  title: null,
}));

let nextId = 1;

/** Marks a new request as in flight; returns its id. */
export function beginEvaluate(): number {
  const id = 1_000_000 + nextId++;
  useEvaluate.setState({ pendingId: id });
  return id;
}

export function handleEvalMessage(msg: Extract<FromWorker, { type: 'eval-result' }>): void {
  if (msg.id !== useEvaluate.getState().pendingId) return;
  useEvaluate.setState({ pendingId: null, report: msg.report, step: msg.step, title: msg.title ?? null });
}

/** A failed request (an `error` with its requestId) ends its wait. */
export function failEvaluate(requestId: number | undefined): void {
  if (requestId !== undefined && requestId === useEvaluate.getState().pendingId)
    useEvaluate.setState({ pendingId: null });
}

/** A CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
function csvField(x: string | number): string {
  const s = typeof x === 'number' ? String(x) : x;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The report as CSV: one row per query (query, max_new_tokens, then per model its response, reward
 * and KL), then a blank line and the summary (model, mean, median, std, kl, response tokens).
 */
export function evalCsv(report: EvalReport): string {
  const names = report.models.map((m) => m.name);
  const head = [
    'query',
    'max_new_tokens',
    ...names.flatMap((n) => [`${n} response`, `${n} reward`, `${n} kl`]),
  ];
  const rows = report.rows.map((r) => [
    r.query,
    r.maxNewTokens,
    ...r.responses.flatMap((x) => [x.text, x.reward, x.kl]),
  ]);
  const summary = [
    ['model', 'mean', 'median', 'std', 'kl', 'response_tokens'],
    ...report.models.map((m) => [m.name, m.mean, m.median, m.std, m.kl, m.responseTokens]),
  ];
  const lines = [head, ...rows, [], ...summary].map((r) => r.map(csvField).join(','));
  return lines.join('\n') + '\n';
}
