/**
 * dropout on the GPU against its CPU twin (same counter-based mask), and one LoRA layer with dropout
 * against a plain-loop CPU computation of peft's formula y += scaling * dropout(x) A^T B^T and its
 * gradients (derived by hand in src/model/lora.ts's header). Tolerances: float32 sums of a few
 * hundred terms, 1e-5 absolute + relative.
 */
import { describe, expect, test } from 'vitest';
import { GPT2_SMALL } from '../../src/model/config.ts';
import { Lora } from '../../src/model/lora.ts';
import { loraTable, type LoraConfig } from '../../src/model/lora-table.ts';
import { paramSlice } from '../../src/model/param-table.ts';
import {
  dropoutBackward,
  dropoutBackwardCpu,
  dropoutForward,
  dropoutForwardCpu,
} from '../../src/ops/dropout.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

describe('dropout', () => {
  test('forward and backward equal the CPU twin; about p of the elements are dropped', async () => {
    const gpu = await testGpu();
    const N = 70_001;
    const mask = { seed: 1234, stream: 7, p: 0.25 };
    const x = randn(N, 1);
    const inp = gpu.upload(x, 'inp');
    const out = gpu.createBuffer(N * 4, 'out');
    poison(gpu, out, N * 4);
    dropoutForward(gpu, { out }, { inp }, mask, { N });
    const want = dropoutForwardCpu(x, mask, { N });
    expectClose(await gpu.readF32(out, N), want, { what: 'forward' });
    const dropped = want.filter((v, i) => v === 0 && x[i] !== 0).length / N;
    // Binomial(N, 0.25): standard deviation sqrt(0.25 * 0.75 / N) = 0.0016; 5 of them.
    expect(Math.abs(dropped - 0.25)).toBeLessThan(0.008);

    const dout = randn(N, 2);
    const dinp0 = randn(N, 3);
    const dinp = gpu.upload(dinp0, 'dinp');
    dropoutBackward(gpu, { dinp }, { dout: gpu.upload(dout, 'dout') }, mask, { N });
    const wantD = dinp0.slice();
    dropoutBackwardCpu({ dinp: wantD }, { dout }, mask, { N });
    expectClose(await gpu.readF32(dinp, N), wantD, { what: 'backward' });
  });

  test('another seed or stream gives another mask', () => {
    const x = new Float32Array(1000).fill(1);
    const a = dropoutForwardCpu(x, { seed: 1, stream: 0, p: 0.5 }, { N: 1000 });
    const b = dropoutForwardCpu(x, { seed: 2, stream: 0, p: 0.5 }, { N: 1000 });
    const c = dropoutForwardCpu(x, { seed: 1, stream: 1, p: 0.5 }, { N: 1000 });
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
  });
});

describe('one LoRA layer with dropout', () => {
  test('y += scaling dropout(x) A^T B^T; dA, dB, dx as derived', async () => {
    const gpu = await testGpu();
    const cfg = { ...GPT2_SMALL, n_embd: 16, n_layer: 1, n_head: 2, vocab_size: 11 };
    const lc: LoraConfig = { r: 4, alpha: 12, dropout: 0.3, targetModules: ['c_fc'], useRslora: false };
    const table = loraTable(cfg, lc);
    const block = randn(table.total, 5);
    const lora = new Lora(gpu, cfg, lc, block);
    const slot = lora.slot(0, 'fc')!;
    const { inF, outF } = slot;
    const { r } = lc;
    const s = lora.scaling;
    expect(s).toBe(3);
    const N = 9;
    const x = randn(N * inF, 6);
    const y0 = randn(N * outF, 7);
    const dy = randn(N * outF, 8);
    const pass = { dropoutSeed: 99 };
    const inp = gpu.upload(x, 'x');
    const out = gpu.upload(y0, 'y');
    lora.forward(0, 'fc', { out }, { inp }, N, pass);
    const dinp = gpu.upload(new Float32Array(N * inF), 'dx');
    lora.zeroGrads();
    lora.backward(0, 'fc', { dinp }, { dout: gpu.upload(dy, 'dy'), inp }, N, pass);

    // The CPU side: the same mask (stream = layer * 4 + module index 2), plain loops.
    const xd = dropoutForwardCpu(x, { seed: 99, stream: 2, p: 0.3 }, { N: N * inF });
    expect(xd.some((v) => v === 0)).toBe(true);
    const A = paramSlice(block, slot.A);
    const B = paramSlice(block, slot.B);
    const h = new Float64Array(N * r);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < r; k++)
        for (let i = 0; i < inF; i++) h[n * r + k] += xd[n * inF + i] * A[k * inF + i];
    const y = Float64Array.from(y0);
    const dB = new Float64Array(outF * r);
    const dh = new Float64Array(N * r);
    for (let n = 0; n < N; n++)
      for (let o = 0; o < outF; o++)
        for (let k = 0; k < r; k++) {
          y[n * outF + o] += s * h[n * r + k] * B[o * r + k];
          dB[o * r + k] += s * dy[n * outF + o] * h[n * r + k];
          dh[n * r + k] += s * dy[n * outF + o] * B[o * r + k];
        }
    const dA = new Float64Array(r * inF);
    const dxd = new Float32Array(N * inF);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < r; k++)
        for (let i = 0; i < inF; i++) {
          dA[k * inF + i] += dh[n * r + k] * xd[n * inF + i];
          dxd[n * inF + i] += dh[n * r + k] * A[k * inF + i];
        }
    const dx = new Float32Array(N * inF);
    dropoutBackwardCpu({ dinp: dx }, { dout: dxd }, { seed: 99, stream: 2, p: 0.3 }, { N: N * inF });
    const tol = { atol: 1e-5, rtol: 1e-5 };
    expectClose(await gpu.readF32(out, N * outF), y, { ...tol, what: 'y' });
    const g = await gpu.readF32(lora.grads!, table.total);
    expectClose(paramSlice(g, slot.A), dA, { ...tol, what: 'dA' });
    expectClose(paramSlice(g, slot.B), dB, { ...tol, what: 'dB' });
    expectClose(await gpu.readF32(dinp, N * inF), dx, { ...tol, what: 'dx' });
    lora.dispose();
  });
});
