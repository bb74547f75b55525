import { describe, expect, test } from 'vitest';
import {
  bucketize,
  destroyEncoderBuckets,
  encoderBackward,
  encoderBackwardCpu,
  encoderBuckets,
  encoderForward,
  encoderForwardCpu,
} from '../../src/ops/encoder.ts';
import { dot, expectFiniteDiffGrad, randf64 } from '../helpers/gradcheck.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

/**
 * A left-padded batch: row b has `pad[b]` padding tokens (id V-1, GPT-2's eos used as pad) at
 * position 1 (HF's position_ids.masked_fill(mask == 0, 1)), then tokens at positions 0, 1, ...
 */
function leftPaddedBatch(B: number, T: number, V: number, pad: number[], seed: number) {
  const next = rng(seed);
  const ids = new Int32Array(B * T);
  const pos = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const padded = t < pad[b];
      ids[b * T + t] = padded ? V - 1 : Math.floor(next() * (V - 1));
      pos[b * T + t] = padded ? 1 : t - pad[b];
    }
  }
  return { ids, pos };
}

describe('encoder bucketize (hand-derived)', () => {
  test('groups indices by key, keys ascending, indices increasing', () => {
    // keys 5,2,5,7,2 -> key 2 at {1,4}, key 5 at {0,2}, key 7 at {3}
    const { data, rows } = bucketize(new Int32Array([5, 2, 5, 7, 2]));
    expect(rows).toBe(3);
    expect(Array.from(data)).toEqual([2, 5, 7, 0, 2, 4, 5, 1, 4, 0, 2, 3]);
  });
});

describe('encoder, GPU vs CPU reference', () => {
  // C=100 spans two 64-wide channel groups; C=40 fits one.
  for (const [B, T, C] of [
    [3, 7, 40],
    [2, 5, 100],
  ] as const) {
    test(`forward and backward, left padded, B=${B} T=${T} C=${C}`, async () => {
      const gpu = await testGpu();
      const V = 11;
      const maxT = 9;
      const { ids, pos } = leftPaddedBatch(B, T, V, [0, 3, 1].slice(0, B), 7);
      const wte = randn(V * C, 1);
      const wpe = randn(maxT * C, 2);
      const dout = randn(B * T * C, 3);
      const dwteInit = randn(V * C, 4); // non-zero: backward accumulates; rows that never occur stay as is
      const dwpeInit = randn(maxT * C, 5);

      const out = gpu.createBuffer(B * T * C * 4, 'out');
      poison(gpu, out, B * T * C * 4);
      const idsBuf = gpu.upload(ids, 'ids');
      const posBuf = gpu.upload(pos, 'pos');
      encoderForward(
        gpu,
        { out },
        { ids: idsBuf, pos: posBuf, wte: gpu.upload(wte, 'wte'), wpe: gpu.upload(wpe, 'wpe') },
        { B, T, C },
      );
      const dwte = gpu.upload(dwteInit, 'dwte');
      const dwpe = gpu.upload(dwpeInit, 'dwpe');
      const buckets = encoderBuckets(gpu, { ids, pos });
      encoderBackward(gpu, { dwte, dwpe }, { dout: gpu.upload(dout, 'dout'), buckets }, { B, T, C });

      const outCpu = new Float32Array(B * T * C);
      encoderForwardCpu({ out: outCpu }, { ids, pos, wte, wpe }, { B, T, C });
      const dwteCpu = dwteInit.slice();
      const dwpeCpu = dwpeInit.slice();
      encoderBackwardCpu({ dwte: dwteCpu, dwpe: dwpeCpu }, { dout, ids, pos }, { B, T, C });

      // Forward: one f32 add of the same operands, exact. Backward: sums of up to B*T values of
      // magnitude <= 1 in another order, a few ulps.
      expectClose(await gpu.readF32(out, B * T * C), outCpu, { atol: 0, rtol: 0, what: 'encoder out' });
      expectClose(await gpu.readF32(dwte, V * C), dwteCpu, { atol: 2e-6, rtol: 1e-6, what: 'dwte' });
      expectClose(await gpu.readF32(dwpe, maxT * C), dwpeCpu, { atol: 2e-6, rtol: 1e-6, what: 'dwpe' });
      destroyEncoderBuckets(gpu, buckets);
    });
  }
});

describe('encoder, CPU backward vs finite differences (float64)', () => {
  test('dwte, dwpe', () => {
    const [B, T, C, V, maxT] = [2, 4, 3, 5, 6];
    const { ids, pos } = leftPaddedBatch(B, T, V, [2, 0], 8);
    const next = rng(9);
    const wte = randf64(V * C, next);
    const wpe = randf64(maxT * C, next);
    const dout = randf64(B * T * C, next);
    const out = new Float64Array(B * T * C);
    const dwte = new Float64Array(V * C);
    const dwpe = new Float64Array(maxT * C);
    encoderBackwardCpu({ dwte, dwpe }, { dout, ids, pos }, { B, T, C });
    const loss = () => (encoderForwardCpu({ out }, { ids, pos, wte, wpe }, { B, T, C }), dot(out, dout));
    expectFiniteDiffGrad(loss, wte, dwte, { what: 'dwte' });
    expectFiniteDiffGrad(loss, wpe, dwpe, { what: 'dwpe' });
  });
});
