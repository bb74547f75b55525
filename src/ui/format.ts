/** Number and size formatting for the studio's status line, tables and progress bars. */
import type { AdapterSummary } from '../gpu/device.ts';

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** 42 s, 3 min 05 s, 1 h 02 min. */
export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 60) return seconds < 10 ? `${seconds.toFixed(1)} s` : `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Four significant digits, exponent form for very small or large magnitudes. */
export function fmtNum(x: number | undefined): string {
  if (x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return x.toPrecision(4).replace(/\.?0+$/, '');
}

/** One line naming the adapter, e.g. "google swiftshader (SwiftShader Device (Subzero))". */
export function adapterName(a: AdapterSummary): string {
  const main = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const extra = a.description || a.device;
  return extra ? `${main} (${extra})` : main;
}
