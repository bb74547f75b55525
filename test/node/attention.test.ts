import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  attentionBackward,
  attentionBackwardCpu,
  attentionForward,
  attentionForwardCpu,
  attentionKernel,
  type AttentionDims,
  type AttentionKernel,
  type MaskedRows,
} from '../../src/ops/attention.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { dot, expectFiniteDiffGrad, randf64 } from '../helpers/gradcheck.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

/**
 * Made by test/fixtures/scripts/make_ops_fixtures.py: a 1-layer HF GPT2Model (B=3, T=7, C=40, NH=5)
 * on a left-padded batch; qkv is c_attn's output, out_* c_proj's input (attention output, heads
 * merged) under attn_implementation eager / sdpa, att eager's attention weights, dqkv_* autograd's
 * gradient for L = sum(out * dout) with dout = 0 at padded queries.
 */
interface AttentionFixture {
  B: number;
  T: number;
  C: number;
  NH: number;
  mask: number[];
  qkv: number[];
  dout: number[];
  att: number[];
  out_eager: number[];
  out_sdpa: number[];
  dqkv_eager: number[];
  dqkv_sdpa: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/ops/attention.json', import.meta.url), 'utf8'),
) as AttentionFixture;

/** Left padding: row b's first pads[b] keys are masked. */
function leftPadMask(B: number, T: number, pads: number[]): Uint32Array {
  return Uint32Array.from({ length: B * T }, (_, i) => (i % T < pads[Math.floor(i / T)] ? 0 : 1));
}

interface Inputs {
  qkv: Float32Array;
  mask: Uint32Array | null;
  dout: Float32Array;
  dqkv0: Float32Array;
}

/** Forward then backward on the GPU; out, att and the dpreatt scratch poisoned, dqkv preset. */
async function runGpu(
  gpu: Gpu,
  x: Inputs,
  dims: AttentionDims,
  maskedRows: MaskedRows,
  kernel: AttentionKernel = attentionKernel(dims),
) {
  const { B, T, C, NH } = dims;
  const out = gpu.createBuffer(B * T * C * 4, 'out');
  const att = gpu.createBuffer(B * NH * T * T * 4, 'att');
  const dpreatt = gpu.createBuffer(B * NH * T * T * 4, 'dpreatt');
  poison(gpu, out, B * T * C * 4);
  poison(gpu, att, B * NH * T * T * 4);
  poison(gpu, dpreatt, B * NH * T * T * 4);
  const qkv = gpu.upload(x.qkv, 'qkv');
  const mask = x.mask && gpu.upload(x.mask, 'mask');
  attentionForward(gpu, { out, att }, { qkv, mask }, dims, maskedRows, kernel);
  const dqkv = gpu.upload(x.dqkv0, 'dqkv');
  const ins = { dout: gpu.upload(x.dout, 'dout'), qkv, att, mask };
  attentionBackward(gpu, { dqkv, dpreatt }, ins, dims, kernel);
  return {
    out: await gpu.readF32(out, B * T * C),
    att: await gpu.readF32(att, B * NH * T * T),
    dqkv: await gpu.readF32(dqkv, B * T * 3 * C),
  };
}

function runCpu(x: Inputs, dims: AttentionDims, maskedRows: MaskedRows) {
  const { B, T, C, NH } = dims;
  const ref = {
    out: new Float32Array(B * T * C),
    att: new Float32Array(B * NH * T * T),
    dqkv: x.dqkv0.slice(),
  };
  attentionForwardCpu(ref, x, dims, maskedRows);
  attentionBackwardCpu(ref, { ...x, att: ref.att }, dims);
  return ref;
}

describe('attention, GPU vs CPU reference', () => {
  // C=40, NH=5: HS=8. T=70 > the 64 invocations striding over keys (workgroup kernels) and > the 64
  // query rows of one workgroup (rows kernels); HS=80 > 64 striding over channels. HS=6 only has the
  // workgroup kernels.
  const cases: [string, AttentionDims, number[] | null, MaskedRows][] = [
    ['no mask', { B: 3, T: 7, C: 40, NH: 5 }, null, 'uniform'],
    ['left padding, uniform rows', { B: 3, T: 7, C: 40, NH: 5 }, [0, 3, 1], 'uniform'],
    ['left padding, zero rows', { B: 3, T: 7, C: 40, NH: 5 }, [0, 3, 1], 'zero'],
    ['T=70, left padding', { B: 1, T: 70, C: 16, NH: 2 }, [5], 'uniform'],
    ['HS=80', { B: 2, T: 3, C: 160, NH: 2 }, [1, 0], 'uniform'],
    ['HS=6', { B: 2, T: 5, C: 18, NH: 3 }, [2, 0], 'uniform'],
  ];
  for (const [name, dims, pads, maskedRows] of cases) {
    const { B, T, C, NH } = dims;
    const kernels: AttentionKernel[] =
      attentionKernel(dims) === 'rows' ? ['rows', 'workgroup'] : ['workgroup'];
    for (const kernel of kernels) {
      test(`${kernel} kernels, ${name}: B=${B} T=${T} C=${C} NH=${NH}`, async () => {
        const gpu = await testGpu();
        const x: Inputs = {
          qkv: randn(B * T * 3 * C, 1, -2, 2),
          mask: pads && leftPadMask(B, T, pads),
          dout: randn(B * T * C, 2),
          dqkv0: randn(B * T * 3 * C, 3), // non-zero: backward must accumulate
        };
        const got = await runGpu(gpu, x, dims, maskedRows, kernel);
        const ref = runCpu(x, dims, maskedRows);
        // f32 dot products and sums of <= T terms vs float64 ones rounded to f32.
        expectClose(got.att, ref.att, { atol: 1e-6, rtol: 1e-5, what: 'att' });
        expectClose(got.out, ref.out, { atol: 1e-5, rtol: 1e-5, what: 'out' });
        expectClose(got.dqkv, ref.dqkv, { atol: 2e-5, rtol: 2e-5, what: 'dqkv' });
      });
    }
  }
});

describe('attention vs HF transformers GPT2Attention (fixture), left padding', () => {
  const { B, T, C, NH } = fixture;
  const dims = { B, T, C, NH };
  for (const [impl, maskedRows] of [
    ['eager', 'uniform'],
    ['sdpa', 'zero'],
  ] as const) {
    test(`${impl} = maskedRows '${maskedRows}'`, async () => {
      const gpu = await testGpu();
      const x: Inputs = {
        qkv: Float32Array.from(fixture.qkv),
        mask: Uint32Array.from(fixture.mask),
        dout: Float32Array.from(fixture.dout),
        dqkv0: new Float32Array(B * T * 3 * C),
      };
      const ref = runCpu(x, dims, maskedRows);
      for (const [what, actual] of [
        ['GPU rows', await runGpu(gpu, x, dims, maskedRows, 'rows')],
        ['GPU workgroup', await runGpu(gpu, x, dims, maskedRows, 'workgroup')],
        ['CPU', ref],
      ] as const) {
        if (impl === 'eager')
          expectClose(actual.att, fixture.att, { atol: 1e-6, rtol: 1e-5, what: `${what} att` });
        expectClose(actual.out, fixture[`out_${impl}`], { atol: 1e-5, rtol: 1e-5, what: `${what} out` });
        expectClose(actual.dqkv, fixture[`dqkv_${impl}`], { atol: 2e-5, rtol: 2e-5, what: `${what} dqkv` });
      }
    });
  }
});

describe('attention, CPU backward vs finite differences (float64)', () => {
  for (const maskedRows of ['uniform', 'zero'] as const) {
    test(`dqkv, left padding, maskedRows '${maskedRows}'`, () => {
      const dims = { B: 2, T: 4, C: 6, NH: 2 };
      const { B, T, C, NH } = dims;
      const next = rng(10);
      const qkv = randf64(B * T * 3 * C, next, -1.5, 1.5);
      const dout = randf64(B * T * C, next); // non-zero at padded queries too
      const mask = leftPadMask(B, T, [2, 0]);
      const fwd = { out: new Float64Array(B * T * C), att: new Float64Array(B * NH * T * T) };
      const dqkv = new Float64Array(B * T * 3 * C);
      attentionForwardCpu(fwd, { qkv, mask }, dims, maskedRows);
      attentionBackwardCpu({ dqkv }, { dout, qkv, att: fwd.att, mask }, dims);
      const loss = () => (attentionForwardCpu(fwd, { qkv, mask }, dims, maskedRows), dot(fwd.out, dout));
      expectFiniteDiffGrad(loss, qkv, dqkv, { what: 'attention dqkv' });
      expect(dqkv.some((g) => g !== 0)).toBe(true);
    });
  }
});
