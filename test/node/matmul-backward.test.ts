// matmulForward / matmulBackward (llm.c's pair) and the bias-gradient reduction.
// Expected values: the CPU references in src/ops/matmul.ts on the same seeded inputs; the CPU
// backward itself is checked against central finite differences of the CPU forward in float64.
import { describe, expect, test } from 'vitest';
import dbiasWgsl from '../../src/ops/matmul-dbias.wgsl';
import {
  DBIAS_PARAMS,
  matmulBackward,
  matmulBackwardCpu,
  matmulCpu,
  matmulDbias,
  matmulForward,
  matmulForwardCpu,
  matmulGflops,
} from '../../src/ops/matmul.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

describe('matmul backward, CPU reference', () => {
  test('is the gradient of the forward (central differences, float64)', () => {
    // L = sum(out * g) with out = inp @ weight + bias, so dL/dout = g. The forward is linear in each
    // input, so the central difference is exact up to rounding: 1e-8 relative is a tight check.
    const [BT, C, OC] = [3, 4, 5];
    const f64 = (x: Float32Array) => Float64Array.from(x);
    const inp = f64(randn(BT * C, 31));
    const weight = f64(randn(C * OC, 32));
    const bias = f64(randn(OC, 33));
    const g = f64(randn(BT * OC, 34));
    const loss = () => {
      const out = new Float64Array(BT * OC);
      matmulCpu({ out }, { a: inp, b: weight, bias }, { M: BT, N: OC, K: C });
      return out.reduce((s, o, i) => s + o * g[i], 0);
    };
    const dinp = new Float64Array(BT * C);
    const dweight = new Float64Array(C * OC);
    const dbias = new Float64Array(OC);
    matmulBackwardCpu({ dinp, dweight, dbias }, { dout: g, inp, weight }, { BT, C, OC });
    const h = 1e-4;
    for (const [x, dx, name] of [
      [inp, dinp, 'dinp'],
      [weight, dweight, 'dweight'],
      [bias, dbias, 'dbias'],
    ] as const) {
      const fd = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i];
        x[i] = x0 + h;
        const up = loss();
        x[i] = x0 - h;
        const down = loss();
        x[i] = x0;
        fd[i] = (up - down) / (2 * h);
      }
      expectClose(dx, fd, { atol: 1e-9, rtol: 1e-8, what: name });
    }
  });
});

describe('matmulForward / matmulBackward on the GPU vs CPU reference', () => {
  for (const [BT, C, OC] of [
    [7, 40, 5],
    [70, 24, 33],
  ] as const) {
    test(`BT=${BT} C=${C} OC=${OC}`, async () => {
      const gpu = await testGpu();
      const inp = randn(BT * C, 41);
      const weight = randn(C * OC, 42);
      const bias = randn(OC, 43);
      const dout = randn(BT * OC, 44);
      const [inpB, weightB, biasB, doutB] = [inp, weight, bias, dout].map((x, i) => gpu.upload(x, `in${i}`));

      const out = gpu.createBuffer(BT * OC * 4, 'out');
      poison(gpu, out, BT * OC * 4);
      matmulForward(gpu, { out }, { inp: inpB, weight: weightB, bias: biasB }, { BT, C, OC });
      expectClose(await gpu.readF32(out, BT * OC), matmulForwardCpu(inp, weight, bias, { BT, C, OC }), {
        atol: 2e-5,
        rtol: 1e-5,
        what: 'out',
      });

      // Gradients start non-zero: backward must add to them, llm.c style.
      const grads = { dinp: randn(BT * C, 45), dweight: randn(C * OC, 46), dbias: randn(OC, 47) };
      const dinp = gpu.upload(grads.dinp, 'dinp');
      const dweight = gpu.upload(grads.dweight, 'dweight');
      const dbias = gpu.upload(grads.dbias, 'dbias');
      matmulBackward(
        gpu,
        { dinp, dweight, dbias },
        { dout: doutB, inp: inpB, weight: weightB },
        { BT, C, OC },
      );
      matmulBackwardCpu(grads, { dout, inp, weight }, { BT, C, OC });
      const tol = { atol: 5e-5, rtol: 1e-5 };
      expectClose(await gpu.readF32(dinp, BT * C), grads.dinp, { ...tol, what: 'dinp' });
      expectClose(await gpu.readF32(dweight, C * OC), grads.dweight, { ...tol, what: 'dweight' });
      expectClose(await gpu.readF32(dbias, OC), grads.dbias, { ...tol, what: 'dbias' });
    });
  }

  test('matmulDbias sums many rows deterministically, the same with vec4 columns', async () => {
    // 1000 rows over 8 lanes per column. OC 75 (scalar): two 32-column workgroups plus a tail; OC
    // 260 (vec4): two 128-column workgroups plus a tail; and the scalar kernel on 260 as a 65 x 4 view.
    const gpu = await testGpu();
    const BT = 1000;
    for (const OC of [75, 260]) {
      const dout = randn(BT * OC, 51);
      const dbias0 = randn(OC, 52);
      const doutB = gpu.upload(dout, 'dout');
      const runs: Float32Array[] = [];
      for (let r = 0; r < 2; r++) {
        const dbias = gpu.upload(dbias0, 'dbias');
        matmulDbias(gpu, { dbias }, { dout: doutB }, { BT, OC });
        runs.push(await gpu.readF32(dbias, OC));
      }
      const expected = dbias0.slice();
      for (let bt = 0; bt < BT; bt++) for (let o = 0; o < OC; o++) expected[o] += dout[bt * OC + o];
      // Sums of 1000 terms in [-1, 1): float32 error well under 1e-4.
      expectClose(runs[0], expected, { atol: 1e-4, rtol: 1e-5, what: `dbias OC ${OC}` });
      expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
      if (OC % 4 === 0) {
        // The scalar kernel on the same columns gives the same sums bit for bit: same rows per
        // lane, same order.
        const dbias = gpu.upload(dbias0, 'dbias');
        gpu.dispatch(gpu.pipelines.get(dbiasWgsl, 'matmul_dbias'), {
          uniforms: DBIAS_PARAMS.pack({ BT, OC }),
          buffers: [dbias, doutB],
          workgroups: [Math.ceil(OC / 32)],
        });
        expect(Array.from(await gpu.readF32(dbias, OC))).toEqual(Array.from(runs[0]));
      }
    }
  });

  test('matmulGflops measures a positive, finite throughput', async () => {
    const gpu = await testGpu();
    for (const kernel of ['naive', 'register'] as const) {
      const gflops = await matmulGflops(gpu, kernel, { M: 32, N: 32, K: 32 }, 2);
      console.log(`[matmul] ${kernel} 32x32x32: ${gflops.toFixed(3)} GFLOP/s`);
      expect(gflops).toBeGreaterThan(0);
      expect(Number.isFinite(gflops)).toBe(true);
    }
  });
});
