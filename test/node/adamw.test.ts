// AdamW on the GPU and its CPU reference, both against PyTorch: test/fixtures/adamw/adamw.json, made
// by test/fixtures/scripts/make_adamw.py (torch.optim.AdamW / Adam, float32, 3 steps of 100 params).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { flatGrid } from '../../src/gpu/gpu.ts';
import { adamwCpu, adamwUpdate, type AdamWConfig } from '../../src/ops/adamw.ts';
import { expectClose, testGpu } from '../helpers/gpu.ts';

interface TorchStep {
  grads: number[];
  params: number[];
  m: number[];
  v: number[];
}
interface TorchCase {
  name: string;
  hyper: AdamWConfig;
  params0: number[];
  steps: TorchStep[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/adamw/adamw.json', import.meta.url), 'utf8'),
) as {
  cases: TorchCase[];
};

// The CPU reference rounds like torch's kernels, so it agrees to a few ulp. The GPU kernel may not
// fuse lerp's multiply-add (WGSL's fma may round twice; SwiftShader's does), and
// m + 0.1 * (g - m) cancels when g and m have opposite signs, so m gets an absolute tolerance of a
// few ulp of |g| <= 4 instead. v is ~g^2 (1e-14..10, no cancellation): relative, with a tiny floor.
const CPU_TOL = {
  params: { atol: 1e-7, rtol: 1e-6 },
  m: { atol: 1e-12, rtol: 1e-6 },
  v: { atol: 1e-20, rtol: 1e-6 },
};
const GPU_TOL = { ...CPU_TOL, m: { atol: 2e-7, rtol: 1e-6 } };

describe('AdamW vs torch.optim.AdamW / Adam', () => {
  for (const c of fixture.cases) {
    test(c.name, async () => {
      const gpu = await testGpu();
      const N = c.params0.length;
      const cpu = { params: Float32Array.from(c.params0), m: new Float32Array(N), v: new Float32Array(N) };
      const params = gpu.upload(cpu.params, 'params');
      const m = gpu.createBuffer(N * 4, 'm');
      const v = gpu.createBuffer(N * 4, 'v');
      const grads = gpu.createBuffer(N * 4, 'grads');
      let worst = 0;
      for (const [s, ref] of c.steps.entries()) {
        const step = { ...c.hyper, t: s + 1 };
        const g = Float32Array.from(ref.grads);
        gpu.write(grads, g);
        adamwUpdate(gpu, { params, m, v }, { grads }, { N }, step);
        adamwCpu(cpu, { grads: g }, { N }, step);
        const at = `step ${s + 1}`;
        expectClose(cpu.params, ref.params, { ...CPU_TOL.params, what: `cpu params ${at}` });
        expectClose(cpu.m, ref.m, { ...CPU_TOL.m, what: `cpu m ${at}` });
        expectClose(cpu.v, ref.v, { ...CPU_TOL.v, what: `cpu v ${at}` });
        const gpuParams = await gpu.readF32(params, N);
        const { maxAbsErr } = expectClose(gpuParams, ref.params, {
          ...GPU_TOL.params,
          what: `gpu params ${at}`,
        });
        worst = Math.max(worst, maxAbsErr);
        expectClose(await gpu.readF32(m, N), ref.m, { ...GPU_TOL.m, what: `gpu m ${at}` });
        expectClose(await gpu.readF32(v, N), ref.v, { ...GPU_TOL.v, what: `gpu v ${at}` });
      }
      console.log(`[adamw] ${c.name}: gpu params max |err| vs torch ${worst.toExponential(2)}`);
    });
  }

  test('updates only the View it is given', async () => {
    // The params after 256 untouched floats, bound at byte offset 1024: the first 256 stay as they were.
    const gpu = await testGpu();
    const c = fixture.cases[0];
    const N = c.params0.length;
    const whole = new Float32Array(256 + N).fill(7);
    whole.set(c.params0, 256);
    const params = gpu.upload(whole, 'params');
    const zeros = new Float32Array(256 + N);
    const [m, v] = [gpu.upload(zeros, 'm'), gpu.upload(zeros, 'v')];
    const gWhole = new Float32Array(256 + N).fill(1);
    gWhole.set(c.steps[0].grads, 256);
    const grads = gpu.upload(gWhole, 'grads');
    const view = (buffer: GPUBuffer) => ({ buffer, offset: 1024, size: N * 4 });
    adamwUpdate(
      gpu,
      { params: view(params), m: view(m), v: view(v) },
      { grads: view(grads) },
      { N },
      {
        ...c.hyper,
        t: 1,
      },
    );
    const got = await gpu.readF32(params, 256 + N);
    expect(Array.from(got.subarray(0, 256))).toEqual(Array.from(whole.subarray(0, 256)));
    expectClose(got.subarray(256), c.steps[0].params, { ...GPU_TOL.params, what: 'view params' });
  });
});

describe('flatGrid', () => {
  test('covers every workgroup within the per-dimension limit', () => {
    // GPT-2 small: 124,439,808 parameters / 256 per workgroup = 486,093 workgroups.
    for (const groups of [1, 65535, 65536, 486093, 3 * 65535 + 1]) {
      const [x, y] = flatGrid(groups);
      expect(x).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(groups);
      expect(x * (y - 1)).toBeLessThan(groups); // no row of workgroups entirely past the end
    }
    expect(flatGrid(10, 4)).toEqual([4, 3]);
  });
});
