/**
 * estimatePpoMemory against the Gpu's own accounting on SwiftShader: the bytes it predicts for a PPO
 * session equal the measured peak of our allocations over a step's sequence of calls (the expected
 * number is the measurement itself, so any buffer the estimate misses or miscounts fails it).
 */
import { describe, expect, test } from 'vitest';
import { ppoBenchSession } from '../../src/bench/ppo-step.ts';
import { makeGPT2Config, GPT2_LARGE, GPT2_MEDIUM, GPT2_SMALL } from '../../src/model/config.ts';
import { Generator } from '../../src/model/generate.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { estimatePpoMemory, memoryProblems } from '../../src/model/memory.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { TRL_DEFAULTS } from '../../src/rl/config.ts';
import { layoutRollout, selectRows } from '../../src/rl/rollout.ts';
import { TrainingSession } from '../../src/rl/session.ts';
import { testGpu } from '../helpers/gpu.ts';

const cfg = makeGPT2Config({ vocab_size: 96, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 2 });

describe('PPO memory estimate', () => {
  test("equals the measured peak of a step's allocations (policy, reference, generation, optimizer)", async () => {
    const gpu = await testGpu();
    const [B, mb, Q, R] = [4, 2, 3, 4];
    const T = Q + R;
    const before = gpu.allocatedBytes;
    gpu.peakBytes = before;
    const session = new TrainingSession(gpu, {
      model: { config: cfg, table: gpt2ParamTable(cfg), params: initGPT2Params(cfg), valueHeadLoaded: false },
      reward: async (texts) => texts.map(() => 0),
      prompts: { batch: () => [] },
      decode: (ids) => ids.join(' '),
      config: { ...TRL_DEFAULTS, batch_size: B, mini_batch_size: mb },
    });
    // The trainer's sequence with ids that are all distinct (the encoder's buckets at their largest):
    // sampling B rows, forward of policy and reference per minibatch, then forward, backward, Adam.
    const queries = Array.from({ length: B }, (_, b) => Array.from({ length: Q }, (_, i) => b * T + i));
    const responses = Array.from({ length: B }, (_, b) => Array.from({ length: R }, (_, j) => b * T + Q + j));
    const gen = new Generator(session.policy.net);
    await gen.generate(queries, { maxNewTokens: R, stopAtEos: true, seed: 1 });
    const batch = layoutRollout(queries, responses, 0);
    for (let s = 0; s < B; s += mb) {
      const sub = selectRows(batch, [s, s + 1]);
      await session.policy.forward(sub);
      await session.ref.logprobs(sub);
    }
    const sub = selectRows(batch, [1, 2]);
    session.policy.zeroGrads();
    await session.policy.forward(sub);
    const d = new Float32Array(mb * (T - 1)).fill(0.01);
    session.policy.backward(d, d);
    await session.policy.step({ maxGradNorm: 1 });
    await gpu.sync();
    const measured = gpu.peakBytes - before;
    const est = estimatePpoMemory(cfg, { batch_size: B, mini_batch_size: mb, maxQuery: Q, maxResponse: R });
    console.log(`estimate ${est.total} B, measured peak ${measured} B`);
    expect(est.total).toBe(measured);
    gen.dispose();
    session.dispose();
    expect(gpu.allocatedBytes).toBe(before);
  });

  test('bounds the peak of real PPO steps (sampled tokens repeat, so buckets are smaller)', async () => {
    const gpu = await testGpu();
    const shape = {
      batch_size: 4,
      mini_batch_size: 2,
      ppo_epochs: 1,
      queryMin: 2,
      queryMax: 5,
      responseMin: 2,
      responseMax: 5,
    };
    const before = gpu.allocatedBytes;
    gpu.peakBytes = before;
    const session = ppoBenchSession(gpu, cfg, shape);
    for (let i = 0; i < 2; i++) await session.trainStep();
    const measured = gpu.peakBytes - before;
    session.dispose();
    const est = estimatePpoMemory(cfg, { batch_size: 4, mini_batch_size: 2, maxQuery: 4, maxResponse: 4 });
    expect(measured).toBeGreaterThan(0.9 * est.total);
    expect(measured).toBeLessThanOrEqual(est.total);
  });

  test('GPT-2 124M at TRL defaults: parameters as in transformers, the 2 GiB binding limit respected', () => {
    const trl = { batch_size: 128, mini_batch_size: 128, maxQuery: 7, maxResponse: 15 };
    const small = estimatePpoMemory(GPT2_SMALL, trl);
    // GPT2LMHeadModel (tied head) has 124,439,808 parameters; TRL's value head adds 768 + 1.
    expect(small.parameters).toBe(124_439_808 + 769);
    const limits = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
    expect(memoryProblems(small, limits, null)).toEqual([]);
    // gpt2-large's parameter block alone (774M x 4 bytes) is past 2 GiB.
    const large = estimatePpoMemory(GPT2_LARGE, trl);
    expect(memoryProblems(large, limits, null).join()).toMatch(/maxBufferSize/);
    const medium = estimatePpoMemory(GPT2_MEDIUM, trl);
    expect(memoryProblems(medium, limits, 4 * 2 ** 30).join()).toMatch(/more than the 4.00 GiB/);
    for (const [name, e] of [
      ['124M', small],
      ['355M', medium],
      ['774M', large],
    ] as const) {
      console.log(`${name}: ${(e.total / 2 ** 30).toFixed(2)} GiB`, JSON.stringify(e.parts));
    }
  });
});
