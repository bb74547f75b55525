import { describe, expect, test } from 'vitest';
import {
  residualBackward,
  residualBackwardCpu,
  residualForward,
  residualForwardCpu,
} from '../../src/ops/residual.ts';
import { dot, expectFiniteDiffGrad, randf64 } from '../helpers/gradcheck.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

describe('residual, GPU vs CPU reference', () => {
  test('forward and backward, N = 3*7*40', async () => {
    const gpu = await testGpu();
    const N = 3 * 7 * 40;
    const inp1 = randn(N, 1);
    const inp2 = randn(N, 2);
    const dout = randn(N, 3);
    const dinp1Init = randn(N, 4); // non-zero: backward must accumulate
    const dinp2Init = randn(N, 5);
    const out = gpu.createBuffer(N * 4, 'out');
    const dinp1 = gpu.upload(dinp1Init, 'dinp1');
    const dinp2 = gpu.upload(dinp2Init, 'dinp2');
    poison(gpu, out, N * 4);
    residualForward(gpu, { out }, { inp1: gpu.upload(inp1, 'inp1'), inp2: gpu.upload(inp2, 'inp2') }, { N });
    residualBackward(gpu, { dinp1, dinp2 }, { dout: gpu.upload(dout, 'dout') }, { N });

    const outCpu = new Float32Array(N);
    residualForwardCpu({ out: outCpu }, { inp1, inp2 }, { N });
    const dinp1Cpu = dinp1Init.slice();
    const dinp2Cpu = dinp2Init.slice();
    residualBackwardCpu({ dinp1: dinp1Cpu, dinp2: dinp2Cpu }, { dout }, { N });
    // One f32 add of the same operands on both sides: exact.
    expectClose(await gpu.readF32(out, N), outCpu, { atol: 0, rtol: 0, what: 'residual out' });
    expectClose(await gpu.readF32(dinp1, N), dinp1Cpu, { atol: 0, rtol: 0, what: 'residual dinp1' });
    expectClose(await gpu.readF32(dinp2, N), dinp2Cpu, { atol: 0, rtol: 0, what: 'residual dinp2' });
  });

  test('forward past 65535 workgroups (N = 65535*256 + 1000: the grid folds into y)', async () => {
    const gpu = await testGpu();
    const N = 65535 * 256 + 1000;
    // Small integers, so every f32 sum is exact and the check is a plain comparison.
    const inp1 = Float32Array.from({ length: N }, (_, i) => i % 1024);
    const inp2 = new Float32Array(N).fill(0.5);
    const out = gpu.createBuffer(N * 4, 'out');
    poison(gpu, out, N * 4);
    residualForward(gpu, { out }, { inp1: gpu.upload(inp1, 'inp1'), inp2: gpu.upload(inp2, 'inp2') }, { N });
    const got = await gpu.readF32(out, N);
    let bad = -1;
    for (let i = 0; i < N && bad < 0; i++) if (got[i] !== (i % 1024) + 0.5) bad = i;
    expect(bad, `first wrong element (${bad >= 0 ? got[bad] : ''})`).toBe(-1);
  });
});

describe('residual, CPU backward vs finite differences (float64)', () => {
  test('dinp1, dinp2', () => {
    const N = 30;
    const next = rng(6);
    const inp1 = randf64(N, next);
    const inp2 = randf64(N, next);
    const dout = randf64(N, next);
    const out = new Float64Array(N);
    const dinp1 = new Float64Array(N);
    const dinp2 = new Float64Array(N);
    residualBackwardCpu({ dinp1, dinp2 }, { dout }, { N });
    const loss = () => (residualForwardCpu({ out }, { inp1, inp2 }, { N }), dot(out, dout));
    expectFiniteDiffGrad(loss, inp1, dinp1, { what: 'residual dinp1' });
    expectFiniteDiffGrad(loss, inp2, dinp2, { what: 'residual dinp2' });
  });
});
