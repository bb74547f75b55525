import { readFileSync } from 'node:fs';
import { describe, test } from 'vitest';
import {
  layernormBackward,
  layernormBackwardCpu,
  layernormBackwardNaive,
  layernormBackwardScratchBytes,
  layernormForward,
  layernormForwardCpu,
  layernormForwardNaive,
  type LayernormDims,
} from '../../src/ops/layernorm.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { bestReduction, type Reduction } from '../../src/ops/reduction.ts';
import { dot, expectFiniteDiffGrad, randf64 } from '../helpers/gradcheck.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

/** Made by test/fixtures/scripts/make_ops_fixtures.py: torch F.layer_norm, eps 1e-5, and autograd. */
interface LayernormFixture {
  B: number;
  T: number;
  C: number;
  inp: number[];
  weight: number[];
  bias: number[];
  dout: number[];
  out: number[];
  mean: number[];
  rstd: number[];
  dinp: number[];
  dweight: number[];
  dbias: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/ops/layernorm.json', import.meta.url), 'utf8'),
) as LayernormFixture;

interface Data {
  inp: Float32Array;
  weight: Float32Array;
  bias: Float32Array;
  dout: Float32Array;
  dinp0: Float32Array;
  dweight0: Float32Array;
  dbias0: Float32Array;
}

/** The naive kernels, or the row kernels with one of their reductions. */
type Kernels = 'naive' | Reduction;

/** Runs forward then backward on the GPU with one kernel set; outputs poisoned, grads preset. */
async function runGpu(gpu: Gpu, kernels: Kernels, d: Data, dims: LayernormDims) {
  const naive = kernels === 'naive';
  const { B, T, C } = dims;
  const BTC = B * T * C;
  const out = gpu.createBuffer(BTC * 4, 'out');
  const mean = gpu.createBuffer(B * T * 4, 'mean');
  const rstd = gpu.createBuffer(B * T * 4, 'rstd');
  for (const [buf, n] of [
    [out, BTC],
    [mean, B * T],
    [rstd, B * T],
  ] as const) {
    poison(gpu, buf, n * 4);
  }
  const inp = gpu.upload(d.inp, 'inp');
  const weight = gpu.upload(d.weight, 'weight');
  const ins = { inp, weight, bias: gpu.upload(d.bias, 'bias') };
  if (naive) layernormForwardNaive(gpu, { out, mean, rstd }, ins, dims);
  else layernormForward(gpu, { out, mean, rstd }, ins, dims, kernels);
  const dinp = gpu.upload(d.dinp0, 'dinp');
  const dweight = gpu.upload(d.dweight0, 'dweight');
  const dbias = gpu.upload(d.dbias0, 'dbias');
  const bwdIns = { dout: gpu.upload(d.dout, 'dout'), inp, weight, mean, rstd };
  if (naive) {
    layernormBackwardNaive(gpu, { dinp, dweight, dbias }, bwdIns, dims);
  } else {
    const scratchBytes = layernormBackwardScratchBytes(dims);
    const scratch = gpu.createBuffer(scratchBytes, 'scratch');
    poison(gpu, scratch, scratchBytes);
    layernormBackward(gpu, { dinp, dweight, dbias, scratch }, bwdIns, dims, kernels);
  }
  return {
    out: await gpu.readF32(out, BTC),
    mean: await gpu.readF32(mean, B * T),
    rstd: await gpu.readF32(rstd, B * T),
    dinp: await gpu.readF32(dinp, BTC),
    dweight: await gpu.readF32(dweight, C),
    dbias: await gpu.readF32(dbias, C),
  };
}

describe('layernorm, GPU vs CPU reference', () => {
  // The row kernels take C/4 vec4s over 64 invocations: C=40 leaves most idle, C=1000 strides; C=30
  // is not a multiple of 4, so they fall back to the naive kernels. B*T=45 rows make two 32-row
  // chunks for dweight.
  for (const [B, T, C] of [
    [3, 7, 40],
    [5, 9, 200],
    [2, 3, 1000],
    [3, 7, 30],
  ] as const) {
    for (const kernels of ['naive', 'workgroup', 'subgroups'] as const) {
      test(`${kernels} kernels, B=${B} T=${T} C=${C}`, async (ctx) => {
        const gpu = await testGpu();
        if (kernels === 'subgroups' && bestReduction(gpu) !== 'subgroups') ctx.skip();
        const dims = { B, T, C };
        const N = B * T * C;
        const d: Data = {
          inp: randn(N, 1, -2, 4), // mean ~1: the variance must be centred, not E[x^2] - E[x]^2
          weight: randn(C, 2, 0.5, 1.5),
          bias: randn(C, 3),
          dout: randn(N, 4),
          dinp0: randn(N, 5), // non-zero: backward must accumulate
          dweight0: randn(C, 6),
          dbias0: randn(C, 7),
        };
        const got = await runGpu(gpu, kernels, d, dims);
        const ref = {
          out: new Float32Array(N),
          mean: new Float32Array(B * T),
          rstd: new Float32Array(B * T),
          dinp: d.dinp0.slice(),
          dweight: d.dweight0.slice(),
          dbias: d.dbias0.slice(),
        };
        layernormForwardCpu(ref, d, dims);
        layernormBackwardCpu(ref, { ...d, mean: ref.mean, rstd: ref.rstd }, dims);
        // f32 sums of C or B*T terms in another order than the CPU's: errors of a few ulps.
        for (const key of ['out', 'mean', 'rstd', 'dinp', 'dweight', 'dbias'] as const) {
          expectClose(got[key], ref[key], { atol: 2e-5, rtol: 2e-5, what: `layernorm ${key}` });
        }
      });
    }
  }
});

describe('layernorm vs PyTorch (fixture: F.layer_norm + autograd)', () => {
  test(`B=${fixture.B} T=${fixture.T} C=${fixture.C}, row kernels`, async () => {
    const gpu = await testGpu();
    const { B, T, C } = fixture;
    const f = (xs: number[]) => Float32Array.from(xs);
    const d: Data = {
      inp: f(fixture.inp),
      weight: f(fixture.weight),
      bias: f(fixture.bias),
      dout: f(fixture.dout),
      dinp0: new Float32Array(B * T * C),
      dweight0: new Float32Array(C),
      dbias0: new Float32Array(C),
    };
    const got = await runGpu(gpu, bestReduction(gpu), d, { B, T, C });
    for (const key of ['out', 'mean', 'rstd', 'dinp', 'dweight', 'dbias'] as const) {
      expectClose(got[key], fixture[key], { atol: 2e-5, rtol: 2e-5, what: `layernorm ${key} vs torch` });
    }
  });
});

describe('layernorm, CPU backward vs finite differences (float64)', () => {
  test('dinp, dweight, dbias', () => {
    const dims = { B: 2, T: 3, C: 5 };
    const N = 2 * 3 * 5;
    const next = rng(8);
    const inp = randf64(N, next, -2, 3);
    const weight = randf64(5, next, 0.5, 1.5);
    const bias = randf64(5, next);
    const dout = randf64(N, next);
    const fwd = { out: new Float64Array(N), mean: new Float64Array(6), rstd: new Float64Array(6) };
    const grads = { dinp: new Float64Array(N), dweight: new Float64Array(5), dbias: new Float64Array(5) };
    layernormForwardCpu(fwd, { inp, weight, bias }, dims);
    layernormBackwardCpu(grads, { dout, inp, weight, mean: fwd.mean, rstd: fwd.rstd }, dims);
    const loss = () => (layernormForwardCpu(fwd, { inp, weight, bias }, dims), dot(fwd.out, dout));
    expectFiniteDiffGrad(loss, inp, grads.dinp, { what: 'layernorm dinp' });
    expectFiniteDiffGrad(loss, weight, grads.dweight, { what: 'layernorm dweight' });
    expectFiniteDiffGrad(loss, bias, grads.dbias, { what: 'layernorm dbias' });
  });
});
