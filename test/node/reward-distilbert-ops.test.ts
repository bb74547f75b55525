// The ops the WebGPU DistilBERT reward path adds: exact (erf) GELU, ReLU, bidirectional attention
// with a key padding mask, and layernorm with DistilBERT's eps 1e-12.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  attentionBidirForward,
  attentionBidirForwardCpu,
  attentionBidirKernel,
  type AttentionBidirDims,
  type AttentionBidirKernel,
} from '../../src/ops/attention-bidir.ts';
import { erf64, geluErfForward, geluErfForwardCpu } from '../../src/ops/gelu-erf.ts';
import { layernormForward, layernormForwardCpu, layernormForwardNaive } from '../../src/ops/layernorm.ts';
import { reluForward, reluForwardCpu } from '../../src/ops/relu.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

/** Made by test/fixtures/scripts/make_gelu_erf_fixture.py: torch F.gelu in float32 and float64. */
interface GeluErfFixture {
  N: number;
  inp: number[];
  out_f32: number[];
  out_f64: number[];
}
const geluFixture = JSON.parse(
  readFileSync(new URL('../fixtures/ops/gelu_erf.json', import.meta.url), 'utf8'),
) as GeluErfFixture;

describe('erf64 (CPU reference)', () => {
  test('values of Python math.erf', () => {
    // math.erf from Python 3 (correctly rounded libm), printed with repr().
    const want: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.4999, 0.9995928300996666],
      [2.5, 0.999593047982555],
      [3, 0.9999779095030014],
      [4.5, 0.9999999998033839],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, e] of want) expect(Math.abs(erf64(x) - e)).toBeLessThan(1e-14);
    expect(erf64(0)).toBe(0);
    expect(erf64(7)).toBe(1);
    expect(erf64(-Infinity)).toBe(-1);
  });
});

describe('gelu_erf', () => {
  test('GPU vs PyTorch F.gelu and vs the CPU reference', async () => {
    const gpu = await testGpu();
    const { N } = geluFixture;
    const inp = Float32Array.from(geluFixture.inp);
    const inpBuf = gpu.upload(inp, 'inp');
    const out = gpu.createBuffer(N * 4, 'out');
    poison(gpu, out, N * 4);
    geluErfForward(gpu, { out }, { inp: inpBuf }, { N });
    const got = await gpu.readF32(out, N);
    const cpu = new Float64Array(N);
    geluErfForwardCpu({ out: cpu }, { inp }, { N });
    // The f32 rational erf is within ~4e-7 of erf, so |err| <= 0.5|x| * 4e-7 + f32 rounding.
    const vsTorch = expectClose(got, geluFixture.out_f32, {
      atol: 1e-6,
      rtol: 1e-6,
      what: 'gelu_erf vs torch f32',
    });
    expectClose(cpu, geluFixture.out_f64, { atol: 1e-12, rtol: 1e-7, what: 'CPU gelu_erf vs torch f64' });
    expectClose(got, cpu, { atol: 1e-6, rtol: 1e-6, what: 'gelu_erf vs CPU' });
    console.log(`gelu_erf: max |gpu - torch| = ${vsTorch.maxAbsErr.toExponential(2)}`);
    // Large |x|: x itself, and 0 (sign aside) for x << 0.
    const at = (x: number) => got[geluFixture.inp.indexOf(x)];
    expect(at(1e4)).toBe(1e4);
    expect(at(-1e4) + 0).toBe(0);
  });
});

describe('relu', () => {
  test('GPU vs CPU, NaN passes through', async () => {
    const gpu = await testGpu();
    const inp = new Float32Array([...randn(300, 5, -3, 3), 0, -0, NaN, Infinity, -Infinity]);
    const N = inp.length;
    const out = gpu.createBuffer(N * 4, 'out');
    poison(gpu, out, N * 4);
    reluForward(gpu, { out }, { inp: gpu.upload(inp, 'inp') }, { N });
    const got = await gpu.readF32(out, N);
    const want = new Float32Array(N);
    reluForwardCpu({ out: want }, { inp }, { N });
    expectClose(got.subarray(0, N - 3), want.subarray(0, N - 3), { atol: 0, rtol: 0, what: 'relu' });
    expect(Number.isNaN(got[N - 3])).toBe(true);
    expect([got[N - 2], got[N - 1]]).toEqual([Infinity, 0]);
  });
});

/** Right padding: row b has lens[b] real tokens, then pads. */
function rightPadMask(T: number, lens: number[]): Uint32Array {
  return Uint32Array.from({ length: lens.length * T }, (_, i) => (i % T < lens[Math.floor(i / T)] ? 1 : 0));
}

async function runAttention(
  dims: AttentionBidirDims,
  qkv: Float32Array,
  mask: Uint32Array | null,
  kernel: AttentionBidirKernel,
): Promise<Float32Array> {
  const gpu = await testGpu();
  const { B, T, C } = dims;
  const out = gpu.createBuffer(B * T * C * 4, 'out');
  poison(gpu, out, B * T * C * 4);
  attentionBidirForward(
    gpu,
    { out },
    { qkv: gpu.upload(qkv, 'qkv'), mask: mask ? gpu.upload(mask, 'mask') : null },
    dims,
    kernel,
  );
  return gpu.readF32(out, B * T * C);
}

describe('attention_bidir, GPU kernels vs the CPU reference', () => {
  // Row 0 full, row 1 padded, row 2 with no real token at all (uniform weights, as HF eager).
  const cases: {
    name: string;
    dims: AttentionBidirDims;
    lens: number[] | null;
    kernels: AttentionBidirKernel[];
  }[] = [
    {
      name: 'HS 16, T 37 (3 key tiles, ragged)',
      dims: { B: 3, T: 37, C: 32, NH: 2 },
      lens: [37, 20, 0],
      kernels: ['naive', 'tiled'],
    },
    {
      name: 'HS 64, T 70 (2 query blocks)',
      dims: { B: 2, T: 70, C: 128, NH: 2 },
      lens: [5, 70],
      kernels: ['naive', 'tiled'],
    },
    { name: 'HS 4, no mask', dims: { B: 2, T: 9, C: 8, NH: 2 }, lens: null, kernels: ['naive', 'tiled'] },
    { name: 'HS 6 (naive only)', dims: { B: 2, T: 11, C: 12, NH: 2 }, lens: [11, 3], kernels: ['naive'] },
  ];
  for (const { name, dims, lens, kernels } of cases) {
    test(name, async () => {
      const { B, T, C } = dims;
      const qkv = randn(B * T * 3 * C, 7, -2, 2);
      const mask = lens ? rightPadMask(T, lens) : null;
      const want = new Float64Array(B * T * C);
      attentionBidirForwardCpu({ out: want }, { qkv, mask }, dims);
      for (const kernel of kernels) {
        const got = await runAttention(dims, qkv, mask, kernel);
        expectClose(got, want, { atol: 2e-6, rtol: 1e-5, what: `attention_bidir ${kernel}` });
      }
    });
  }

  test('padded keys do not matter: a padded row equals the same text alone', async () => {
    const dims = { B: 1, T: 6, C: 16, NH: 4 };
    const qkv = randn(6 * 48, 8);
    const alone = new Float64Array(4 * 16);
    attentionBidirForwardCpu({ out: alone }, { qkv: qkv.subarray(0, 4 * 48), mask: null }, { ...dims, T: 4 });
    const padded = await runAttention(dims, qkv, rightPadMask(6, [4]), 'tiled');
    expectClose(padded.subarray(0, 4 * 16), alone, { atol: 2e-6, rtol: 1e-5, what: 'padded vs alone' });
  });

  test('the default kernel is tiled for HS 64 and naive for HS 80 or HS 6', () => {
    expect(attentionBidirKernel({ B: 1, T: 1, C: 768, NH: 12 })).toBe('tiled');
    expect(attentionBidirKernel({ B: 1, T: 1, C: 160, NH: 2 })).toBe('naive');
    expect(attentionBidirKernel({ B: 1, T: 1, C: 12, NH: 2 })).toBe('naive');
  });
});

describe('layernorm with eps 1e-12 (DistilBERT)', () => {
  test('rows of tiny variance, where eps 1e-5 would change the result', async () => {
    const gpu = await testGpu();
    const [B, T, C] = [2, 3, 32];
    const inp = randn(B * T * C, 11, -1e-4, 1e-4); // variance ~3e-9
    const weight = randn(C, 12, 0.5, 1.5);
    const bias = randn(C, 13, -0.1, 0.1);
    const dims = { B, T, C, eps: 1e-12 };
    const want = {
      out: new Float64Array(B * T * C),
      mean: new Float64Array(B * T),
      rstd: new Float64Array(B * T),
    };
    layernormForwardCpu(want, { inp, weight, bias }, dims);
    const loose = {
      out: new Float64Array(B * T * C),
      mean: new Float64Array(B * T),
      rstd: new Float64Array(B * T),
    };
    layernormForwardCpu(loose, { inp, weight, bias }, { B, T, C });
    expect(Math.abs(loose.out[0] - want.out[0])).toBeGreaterThan(0.05); // eps matters here
    const ins = { inp: gpu.upload(inp, 'inp'), weight: gpu.upload(weight, 'w'), bias: gpu.upload(bias, 'b') };
    for (const run of [layernormForward, layernormForwardNaive]) {
      const outs = {
        out: gpu.createBuffer(B * T * C * 4, 'out'),
        mean: gpu.createBuffer(B * T * 4, 'mean'),
        rstd: gpu.createBuffer(B * T * 4, 'rstd'),
      };
      run(gpu, outs, ins, dims);
      expectClose(await gpu.readF32(outs.out, B * T * C), want.out, {
        atol: 1e-4,
        rtol: 1e-4,
        what: `${run.name} out`,
      });
      expectClose(await gpu.readF32(outs.rstd, B * T), want.rstd, {
        atol: 0,
        rtol: 1e-4,
        what: `${run.name} rstd`,
      });
    }
  });
});
