import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { geluBackward, geluBackwardCpu, geluForward, geluForwardCpu } from '../../src/ops/gelu.ts';
import { dot, expectFiniteDiffGrad, randf64 } from '../helpers/gradcheck.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

// Large |x| where a naive tanh (ratio of exps) overflows to NaN; gelu_new(x) -> x for x >> 0 and
// -> 0 for x << 0, with local gradient 1 and 0 (the limits of the formula in gelu.ts).
const EXTREMES = [1e4, -1e4, 50, -50, 10, -10, 1e20, -1e20, 3e38, -3e38, 0];

describe('gelu, GPU vs CPU reference', () => {
  test('forward and backward on B*T*4C = 3*7*160 values plus extremes', async () => {
    const gpu = await testGpu();
    const inp = new Float32Array([...randn(3 * 7 * 160, 1, -6, 6), ...EXTREMES]);
    const N = inp.length;
    const dout = randn(N, 2);
    const dinp0 = randn(N, 3); // non-zero: backward must accumulate
    const out = gpu.createBuffer(N * 4, 'out');
    const dinp = gpu.upload(dinp0, 'dinp');
    const inpBuf = gpu.upload(inp, 'inp');
    poison(gpu, out, N * 4);
    geluForward(gpu, { out }, { inp: inpBuf }, { N });
    geluBackward(gpu, { dinp }, { inp: inpBuf, dout: gpu.upload(dout, 'dout') }, { N });

    const outCpu = new Float32Array(N);
    geluForwardCpu({ out: outCpu }, { inp }, { N });
    const dinpCpu = dinp0.slice();
    geluBackwardCpu({ dinp: dinpCpu }, { inp, dout }, { N });

    const outGpu = await gpu.readF32(out, N);
    expectClose(outGpu, outCpu, { atol: 1e-6, rtol: 1e-5, what: 'gelu out' });
    expectClose(await gpu.readF32(dinp, N), dinpCpu, { atol: 1e-6, rtol: 1e-5, what: 'gelu dinp' });
    // The limits, exactly: x for large positive x, 0 for large negative x.
    const tail = Array.from(outGpu.subarray(N - EXTREMES.length));
    expect(tail.map((v) => v + 0)).toEqual(EXTREMES.map((x) => (x > 0 ? Math.fround(x) : 0)));
  });
});

/** Made by test/fixtures/scripts/make_ops_fixtures.py: transformers' NewGELUActivation, dinp for dout = 1. */
interface GeluFixture {
  N: number;
  inp: number[];
  out: number[];
  dinp: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/ops/gelu.json', import.meta.url), 'utf8'),
) as GeluFixture;

describe('gelu vs PyTorch (fixture: transformers NewGELUActivation + autograd)', () => {
  test(`${fixture.N} values in [-6, 6] and +-10, +-50, +-1e4`, async () => {
    const gpu = await testGpu();
    const { N } = fixture;
    const inp = gpu.upload(Float32Array.from(fixture.inp), 'inp');
    const out = gpu.createBuffer(N * 4, 'out');
    const dinp = gpu.createBuffer(N * 4, 'dinp');
    poison(gpu, out, N * 4);
    geluForward(gpu, { out }, { inp }, { N });
    geluBackward(gpu, { dinp }, { inp, dout: gpu.upload(new Float32Array(N).fill(1), 'dout') }, { N });
    expectClose(await gpu.readF32(out, N), fixture.out, {
      atol: 1e-6,
      rtol: 1e-5,
      what: 'gelu out vs torch',
    });
    expectClose(await gpu.readF32(dinp, N), fixture.dinp, {
      atol: 2e-6,
      rtol: 1e-5,
      what: 'gelu dinp vs torch',
    });
  });
});

describe('gelu, CPU backward vs finite differences (float64)', () => {
  test('dinp', () => {
    const N = 40;
    const next = rng(4);
    const inp = randf64(N, next, -4, 4);
    const dout = randf64(N, next);
    const out = new Float64Array(N);
    const dinp = new Float64Array(N);
    geluBackwardCpu({ dinp }, { inp, dout }, { N });
    const loss = () => (geluForwardCpu({ out }, { inp }, { N }), dot(out, dout));
    expectFiniteDiffGrad(loss, inp, dinp, { what: 'gelu dinp' });
  });
});
