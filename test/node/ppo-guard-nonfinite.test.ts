/**
 * The guards for a non-finite gradient (PolicyWithValueHead.step) and a non-finite PPO loss
 * (PPOTrainer's optimisation): each throws NonFiniteError naming what was bad, before Adam touches
 * the weights or its moments.
 */
import { describe, expect, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { TRL_DEFAULTS, validatePPOConfig } from '../../src/rl/config.ts';
import { NonFiniteError, type TokenRows } from '../../src/rl/policy.ts';
import { TrainingSession } from '../../src/rl/session.ts';
import { testGpu } from '../helpers/gpu.ts';

async function session() {
  const gpu = await testGpu();
  const config = makeGPT2Config({ vocab_size: 16, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 });
  return new TrainingSession(gpu, {
    model: {
      config,
      table: gpt2ParamTable(config),
      params: initGPT2Params(config, { seed: 1 }),
      valueHeadLoaded: false,
    },
    reward: async (texts) => texts.map((_, i) => i - 1.5),
    prompts: { batch: (_s, B) => Array.from({ length: B }, (_, i) => ({ tokens: [1 + (i % 5), 2] })) },
    decode: (ids) => ids.join(','),
    config: validatePPOConfig({ ...TRL_DEFAULTS, batch_size: 4, mini_batch_size: 2, ppo_epochs: 1 }),
    rollout: { responseMinLength: 2, responseMaxLength: 4, padId: 0 },
  });
}

/** Two rows of 3 tokens; every position but the last has a next token. */
const ROWS: TokenRows = { B: 2, T: 3, ids: Int32Array.of(1, 2, 3, 4, 5, 6) };

describe('non-finite guards', () => {
  for (const bad of [NaN, Infinity]) {
    test(`a ${bad} in d loss / d logprobs stops the optimiser step, naming the parameters`, async () => {
      const s = await session();
      const p = s.policy;
      const before = await p.readParams();
      const adamBefore = await p.opt.save();
      await p.forward(ROWS);
      p.zeroGrads();
      const dlogprobs = new Float32Array(2 * 2).fill(0.1);
      dlogprobs[1] = bad;
      p.backward(dlogprobs, new Float32Array(2 * 2).fill(0.1));
      // The bad number flows back through the head into the tied embedding and every block.
      await expect(p.step({ maxGradNorm: null })).rejects.toThrow(/non-finite gradient in .*wte\.weight/);
      await expect(p.step({ maxGradNorm: 1 })).rejects.toThrow(NonFiniteError);
      expect(await p.readParams()).toEqual(before);
      const adamAfter = await p.opt.save();
      expect(adamAfter.t).toBe(0);
      expect(adamAfter.m).toEqual(adamBefore.m);
      expect(adamAfter.v).toEqual(adamBefore.v);
      s.dispose();
    });
  }

  test('a non-finite PPO loss stops the step before the weights change', async () => {
    const s = await session();
    const before = await s.policy.readParams();
    // The rollout's forward passes (2 minibatches of 2 rows) are clean; the optimisation's first
    // forward returns a NaN value prediction, so the value loss is NaN.
    const forward = s.policy.forward.bind(s.policy);
    let calls = 0;
    s.policy.forward = async (batch) => {
      const out = await forward(batch);
      if (++calls > 2) out.values![0] = NaN;
      return out;
    };
    await expect(s.trainStep()).rejects.toThrow(/non-finite PPO loss \(policy .*, value NaN\)/);
    expect(calls).toBe(3);
    expect(await s.policy.readParams()).toEqual(before);
    expect(s.policy.opt.t).toBe(0);
    s.dispose();
  });
});
