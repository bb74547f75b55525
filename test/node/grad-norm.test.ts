// Gradient-norm clipping and the non-finite detector. Expected values: the CPU references in
// src/ops/grad-norm.ts (float64 sum of squares), and torch.nn.utils.clip_grad_norm_ via
// test/fixtures/adamw/clip_grad_norm.json (made by test/fixtures/scripts/make_adamw.py).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import {
  clipGradNorm,
  clipGradNormCpu,
  findNonFinite,
  gradNorm,
  gradNormCpu,
  gradNormPartialCount,
  hasNonFiniteCpu,
  readGradNorm,
  resetNonFiniteFlag,
} from '../../src/ops/grad-norm.ts';
import { expectClose, randn, testGpu } from '../helpers/gpu.ts';

interface TorchClip {
  name: string;
  maxNorm: number;
  grads: number[];
  totalNorm: number;
  clipped: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/adamw/clip_grad_norm.json', import.meta.url), 'utf8'),
) as { cases: TorchClip[] };

function scratch(gpu: Gpu, N: number) {
  return {
    out: gpu.createBuffer(2 * 4, 'norm out'),
    partials: gpu.createBuffer(gradNormPartialCount(N) * 4, 'partials'),
  };
}

describe('global gradient norm', () => {
  // 1 and 72: one partial; 70,000: 274 partials; 300,000: the 1024-partial cap, so each thread
  // strides over several elements.
  for (const N of [1, 72, 70_000, 300_000]) {
    test(`N=${N}: norm vs CPU, and the same bits on a second run`, async () => {
      const gpu = await testGpu();
      const g = randn(N, 61);
      const grads = gpu.upload(g, 'grads');
      const { out, partials } = scratch(gpu, N);
      gradNorm(gpu, { out, partials }, { grads }, { N });
      const [norm, coef] = await gpu.readF32(out, 2);
      // float32 partial sums of up to 300,000 squares: relative error well under 1e-5.
      expectClose([norm], [gradNormCpu(g)], { atol: 0, rtol: 1e-5, what: 'norm' });
      expect(coef).toBe(1);
      gradNorm(gpu, { out, partials }, { grads }, { N });
      expect(await readGradNorm(gpu, out)).toBe(norm);
    });
  }

  test('clipGradNorm vs CPU reference, clipping and not', async () => {
    const gpu = await testGpu();
    const N = 5000; // norm ~ sqrt(5000/3) ~ 41
    for (const maxNorm of [1, 1000]) {
      const g = randn(N, 62);
      const grads = gpu.upload(g, 'grads');
      const { out, partials } = scratch(gpu, N);
      clipGradNorm(gpu, { grads, out, partials }, { N, maxNorm });
      const want = g.slice();
      const norm = clipGradNormCpu(want, maxNorm);
      expectClose([await readGradNorm(gpu, out)], [norm], { atol: 0, rtol: 1e-6, what: 'norm' });
      expectClose(await gpu.readF32(grads, N), want, { atol: 1e-8, rtol: 1e-6, what: `clipped ${maxNorm}` });
    }
  });

  for (const c of fixture.cases) {
    test(`vs torch clip_grad_norm_: ${c.name}`, async () => {
      const gpu = await testGpu();
      const N = c.grads.length;
      const grads = gpu.upload(Float32Array.from(c.grads), 'grads');
      const { out, partials } = scratch(gpu, N);
      clipGradNorm(gpu, { grads, out, partials }, { N, maxNorm: c.maxNorm });
      // torch sums per tensor then takes the norm of norms: a different order, so ~1e-7 relative.
      expectClose([await readGradNorm(gpu, out)], [c.totalNorm], { atol: 0, rtol: 1e-6, what: 'norm' });
      expectClose(await gpu.readF32(grads, N), c.clipped, { atol: 1e-12, rtol: 1e-6, what: 'clipped grads' });
      const cpu = Float32Array.from(c.grads);
      expectClose([clipGradNormCpu(cpu, c.maxNorm)], [c.totalNorm], {
        atol: 0,
        rtol: 1e-6,
        what: 'cpu norm',
      });
      expectClose(cpu, c.clipped, { atol: 1e-12, rtol: 1e-6, what: 'cpu clipped' });
    });
  }
});

describe('non-finite detector', () => {
  test('flags NaN, +Inf and -Inf anywhere, not large or subnormal finite values', async () => {
    const gpu = await testGpu();
    const N = 1000;
    const flag = gpu.createBuffer(4, 'flag');
    const check = async (x: Float32Array) => {
      resetNonFiniteFlag(gpu, flag);
      findNonFinite(gpu, { flag }, { inp: gpu.upload(x, 'x') }, { N });
      const got = (await gpu.readU32(flag, 1))[0];
      expect(got, `flag for ${Array.from(x.subarray(-2))}`).toBe(hasNonFiniteCpu(x) ? 1 : 0);
    };
    const clean = randn(N, 71);
    clean[0] = 3.4e38;
    clean[1] = -1e-45;
    await check(clean);
    for (const [i, bad] of [
      [N - 1, NaN],
      [0, Infinity],
      [517, -Infinity],
    ] as const) {
      const x = clean.slice();
      x[i] = bad;
      await check(x);
    }
  });

  test('is sticky across buffers until reset, and reads a View', async () => {
    const gpu = await testGpu();
    const flag = gpu.createBuffer(4, 'flag');
    const x = randn(512, 72);
    x[100] = NaN; // in the first 256 floats, outside the View below
    const buf = gpu.upload(x, 'x');
    resetNonFiniteFlag(gpu, flag);
    findNonFinite(gpu, { flag }, { inp: { buffer: buf, offset: 1024, size: 1024 } }, { N: 256 });
    expect((await gpu.readU32(flag, 1))[0]).toBe(0);
    findNonFinite(gpu, { flag }, { inp: buf }, { N: 512 });
    findNonFinite(gpu, { flag }, { inp: { buffer: buf, offset: 1024, size: 1024 } }, { N: 256 });
    expect((await gpu.readU32(flag, 1))[0]).toBe(1);
    resetNonFiniteFlag(gpu, flag);
    expect((await gpu.readU32(flag, 1))[0]).toBe(0);
  });
});
