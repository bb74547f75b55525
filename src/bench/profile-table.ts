/** Rows of a kernel profile from the Gpu's counters: per kernel calls, time, share, throughput. */
import type { GpuCounters } from '../gpu/gpu.ts';

export interface KernelRow {
  name: string;
  calls: number;
  workgroups: number;
  /** GPU time from timestamp queries; null when the adapter could not time. */
  ms: number | null;
  /** ms / the sum of every kernel's ms. */
  share: number | null;
  /** flop / time, where the op states its flop (matmuls). */
  gflops: number | null;
  /** Bytes of the bound storage views / time: a kernel's traffic if it touches each byte once. */
  gbs: number | null;
}

/** One row per kernel, by GPU time (or by calls without timing), longest first. */
export function kernelRows(c: GpuCounters, timed: boolean): KernelRow[] {
  const totalNs = [...c.kernels.values()].reduce((s, k) => s + k.ns, 0);
  const rows = [...c.kernels].map(([name, k]): KernelRow => {
    const ok = timed && k.ns > 0;
    return {
      name,
      calls: k.calls,
      workgroups: k.workgroups,
      ms: timed ? k.ns / 1e6 : null,
      share: timed && totalNs > 0 ? k.ns / totalNs : null,
      gflops: ok && k.flop > 0 ? k.flop / k.ns : null,
      gbs: ok ? k.bytes / k.ns : null,
    };
  });
  return rows.sort((a, b) => (b.ms ?? 0) - (a.ms ?? 0) || b.calls - a.calls);
}

/** The rows as an aligned text table. */
export function formatKernelRows(rows: readonly KernelRow[]): string {
  const num = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));
  const width = Math.max(6, ...rows.map((r) => r.name.length));
  const head = `${'kernel'.padEnd(width)}  ${'calls'.padStart(6)}  ${'ms'.padStart(9)}  ${'share'.padStart(6)}  ${'GFLOP/s'.padStart(8)}  ${'GB/s'.padStart(7)}`;
  const lines = rows.map(
    (r) =>
      `${r.name.padEnd(width)}  ${String(r.calls).padStart(6)}  ${num(r.ms, 3).padStart(9)}  ` +
      `${(r.share === null ? '-' : `${(r.share * 100).toFixed(1)}%`).padStart(6)}  ` +
      `${num(r.gflops, 1).padStart(8)}  ${num(r.gbs, 2).padStart(7)}`,
  );
  return [head, ...lines].join('\n');
}
