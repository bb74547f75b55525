import { describe, test } from 'vitest';
import { matmulForwardCpu, matmulForwardNaive } from '../../src/ops/matmul.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

describe('matmul forward, naive kernel vs CPU reference', () => {
  // Odd sizes on purpose: none is a multiple of the 8x8 workgroup.
  for (const [BT, C, OC, withBias] of [
    [7, 40, 120, true],
    [13, 5, 3, false],
    [1, 64, 33, true],
  ] as const) {
    test(`BT=${BT} C=${C} OC=${OC} bias=${withBias}`, async () => {
      const gpu = await testGpu();
      const inp = randn(BT * C, 1);
      const weight = randn(C * OC, 2);
      const bias = withBias ? randn(OC, 3) : null;
      const out = gpu.createBuffer(BT * OC * 4, 'out');
      poison(gpu, out, BT * OC * 4);
      matmulForwardNaive(
        gpu,
        { out },
        { inp: gpu.upload(inp, 'inp'), weight: gpu.upload(weight, 'w'), bias: bias && gpu.upload(bias, 'b') },
        { BT, C, OC },
      );
      const expected = matmulForwardCpu(inp, weight, bias, { BT, C, OC });
      expectClose(await gpu.readF32(out, BT * OC), expected, { atol: 1e-5, rtol: 1e-5, what: 'matmul out' });
    });
  }
});
