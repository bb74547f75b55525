import type { Gpu } from '../gpu/gpu.ts';
import { matmulForwardCpu, matmulForwardNaive } from '../ops/matmul.ts';

export interface SelfTestResult {
  kernel: string;
  ok: boolean;
  maxAbsErr: number;
  ms: number;
}

/**
 * Runs the matmul kernel on seeded data and compares it with the CPU reference within
 * 1e-4 + 1e-4*|ref|: a check that this adapter computes what the engine expects.
 */
export async function runSelfTest(
  gpu: Gpu,
  { M, K, N }: { M: number; K: number; N: number },
): Promise<SelfTestResult> {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const inp = Float32Array.from({ length: M * K }, rand);
  const weight = Float32Array.from({ length: K * N }, rand);
  const bias = Float32Array.from({ length: N }, rand);
  const bufs = [
    gpu.upload(inp, 'selftest.inp'),
    gpu.upload(weight, 'selftest.w'),
    gpu.upload(bias, 'selftest.b'),
  ];
  const out = gpu.upload(new Float32Array(M * N).fill(NaN), 'selftest.out');
  const t0 = performance.now();
  matmulForwardNaive(gpu, { out }, { inp: bufs[0], weight: bufs[1], bias: bufs[2] }, { BT: M, C: K, OC: N });
  const got = await gpu.readF32(out, M * N);
  const ms = performance.now() - t0;
  const want = matmulForwardCpu(inp, weight, bias, { BT: M, C: K, OC: N });
  let maxAbsErr = 0;
  let ok = true;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 1e-4 + 1e-4 * Math.abs(want[i]))) ok = false;
    maxAbsErr = Number.isNaN(err) ? Infinity : Math.max(maxAbsErr, err);
  }
  for (const b of [...bufs, out]) gpu.destroy(b);
  return { kernel: 'matmul_forward_naive', ok, maxAbsErr, ms };
}
