/**
 * The metrics history as files: CSV (one row per PPO step, one column per TRL stat name) and JSON
 * Lines (one object per step, as `rlhf-studio train --metrics` writes them).
 */
import type { MetricRow } from '../protocol.ts';
import { SCALAR_STAT_NAMES } from '../rl/stats.ts';

const EXTRA = ['step', 'target', 'step_seconds', 'tokens', 'gpu_bytes'] as const;

function extras(r: MetricRow): Record<(typeof EXTRA)[number], string | number> {
  return { step: r.step, target: r.target, step_seconds: r.seconds, tokens: r.tokens, gpu_bytes: r.gpuBytes };
}

/** RFC 4180 quoting where a field needs it. */
function csvField(v: string | number | undefined): string {
  if (v === undefined || (typeof v === 'number' && !Number.isFinite(v)))
    return v === undefined ? '' : String(v);
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function metricsCsv(rows: readonly MetricRow[]): string {
  const header = [...EXTRA, ...SCALAR_STAT_NAMES];
  const lines = rows.map((r) => {
    const e = extras(r);
    return [...EXTRA.map((k) => e[k]), ...SCALAR_STAT_NAMES.map((k) => r.stats[k])].map(csvField).join(',');
  });
  return [header.join(','), ...lines].join('\n') + '\n';
}

export function metricsJsonl(rows: readonly MetricRow[]): string {
  return rows.map((r) => JSON.stringify({ ...extras(r), ...r.stats })).join('\n') + (rows.length ? '\n' : '');
}
