/**
 * Full fine-tuning in passes of fewer rows (SessionSpec.rowsPerPass, src/model/memory.ts
 * autoRowsPerPass): a mini-batch run in parts, each run forward again before its backward, gives the
 * same PPO step as the whole mini-batch at once (gradients accumulate; only the summation order
 * differs), and the memory estimate with parts equals the measured peak of our allocations. At TRL's
 * defaults the automatic part size brings GPT-2 124M under 3 GiB and gpt2-medium under 8 GiB.
 */
import { describe, expect, test } from 'vitest';
import { ppoBenchSession } from '../../src/bench/ppo-step.ts';
import { GPT2_MEDIUM, GPT2_SMALL, makeGPT2Config } from '../../src/model/config.ts';
import { autoRowsPerPass, estimatePpoMemory } from '../../src/model/memory.ts';
import { testGpu } from '../helpers/gpu.ts';

const cfg = makeGPT2Config({ vocab_size: 96, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 });
const SHAPE = {
  batch_size: 8,
  mini_batch_size: 4,
  ppo_epochs: 2,
  queryMin: 2,
  queryMax: 6,
  responseMin: 3,
  responseMax: 7,
};

describe('rows per pass (full fine-tuning)', () => {
  test('a mini-batch in parts of 2 and 1 rows: the same PPO steps as whole mini-batches', async () => {
    const gpu = await testGpu();
    const run = async (rowsPerPass: number | null) => {
      const before = gpu.allocatedBytes;
      gpu.peakBytes = before;
      const session = ppoBenchSession(gpu, cfg, { ...SHAPE, rowsPerPass }, 4);
      expect(session.rowsPerPass).toBe(rowsPerPass);
      const stats = [];
      for (let i = 0; i < 2; i++) stats.push((await session.trainStep()).stats);
      const params = await session.policy.readParams();
      const peak = gpu.peakBytes - before;
      session.dispose();
      return { stats, params, peak };
    };
    const whole = await run(null);
    for (const rows of [2, 1]) {
      const parts = await run(rows);
      // Less memory: activations for `rows` rows instead of 4.
      expect(parts.peak).toBeLessThan(whole.peak);
      for (const [i, s] of parts.stats.entries()) {
        for (const k of ['ppo/loss/total', 'ppo/policy/approxkl', 'ppo/val/vpred', 'objective/kl'] as const) {
          const a = s[k]!;
          const b = whole.stats[i][k]!;
          // Float32 sums in another order: relative 1e-4, or 1e-5 absolute for stats near 0 (KL).
          expect(Math.abs(a - b), `${k} at step ${i}, ${rows} rows`).toBeLessThanOrEqual(
            1e-5 + 1e-4 * Math.abs(b),
          );
        }
      }
      let maxRef = 0;
      let maxErr = 0;
      for (let i = 0; i < whole.params.length; i++) {
        maxRef = Math.max(maxRef, Math.abs(whole.params[i]));
        maxErr = Math.max(maxErr, Math.abs(parts.params[i] - whole.params[i]));
      }
      console.log(
        `[rows-per-pass] ${rows} rows: params max |err| ${maxErr.toExponential(2)} of ${maxRef.toFixed(3)}`,
      );
      expect(maxErr).toBeLessThanOrEqual(1e-5 * maxRef);
    }
  }, 300_000);

  test('the estimate in parts equals the measured peak (distinct ids: buckets at their largest)', async () => {
    const gpu = await testGpu();
    const [B, mb, Q, R, rows] = [4, 4, 3, 4, 2];
    const before = gpu.allocatedBytes;
    gpu.peakBytes = before;
    const shape = {
      ...SHAPE,
      batch_size: B,
      mini_batch_size: mb,
      ppo_epochs: 1,
      queryMin: Q,
      queryMax: Q + 1,
    };
    const session = ppoBenchSession(gpu, cfg, {
      ...shape,
      responseMin: R,
      responseMax: R + 1,
      rowsPerPass: rows,
    });
    await session.trainStep();
    const measured = gpu.peakBytes - before;
    session.dispose();
    const est = estimatePpoMemory(cfg, {
      batch_size: B,
      mini_batch_size: mb,
      maxQuery: Q,
      maxResponse: R,
      rowsPerPass: rows,
    });
    const whole = estimatePpoMemory(cfg, {
      batch_size: B,
      mini_batch_size: mb,
      maxQuery: Q,
      maxResponse: R,
      rowsPerPass: null,
    });
    console.log(
      `[rows-per-pass] estimate ${est.total} B (whole mini-batch ${whole.total} B), measured ${measured} B`,
    );
    expect(est.passRows).toBe(rows);
    expect(est.total).toBeLessThan(whole.total);
    // Sampled ids repeat, so the encoder's buckets can be smaller than the estimate's distinct-id bound.
    expect(measured).toBeLessThanOrEqual(est.total);
    expect(measured).toBeGreaterThan(0.95 * est.total);
  }, 300_000);

  test("TRL's defaults: 124M in <= 3 GiB, 355M in <= 8 GiB; small models keep whole mini-batches", () => {
    const trl = { batch_size: 128, mini_batch_size: 128, maxQuery: 7, maxResponse: 15 };
    const small = estimatePpoMemory(GPT2_SMALL, trl);
    const medium = estimatePpoMemory(GPT2_MEDIUM, trl);
    const gib = (b: number) => b / 2 ** 30;
    console.log(
      `[rows-per-pass] 124M: ${gib(small.total).toFixed(2)} GiB in passes of ${small.passRows} rows ` +
        `(whole: ${gib(estimatePpoMemory(GPT2_SMALL, { ...trl, rowsPerPass: null }).total).toFixed(2)}); ` +
        `355M: ${gib(medium.total).toFixed(2)} GiB in passes of ${medium.passRows} rows ` +
        `(whole: ${gib(estimatePpoMemory(GPT2_MEDIUM, { ...trl, rowsPerPass: null }).total).toFixed(2)})`,
    );
    expect(gib(small.total)).toBeLessThanOrEqual(3);
    expect(gib(medium.total)).toBeLessThanOrEqual(8);
    // The demo policy (C64 L2) at the studio's demo batch keeps whole mini-batches.
    const demo = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 64, n_layer: 2, n_head: 4 });
    expect(autoRowsPerPass(demo, 16, 22)).toBeNull();
    expect(autoRowsPerPass(cfg, 4, 9)).toBeNull();
  });
});
