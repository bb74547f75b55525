/**
 * The NaN guard: a non-finite reward score, or a non-finite weight, stops a PPO step before any
 * weight changes, and the error says where the number appeared.
 */
import { describe, expect, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { TRL_DEFAULTS, validatePPOConfig } from '../../src/rl/config.ts';
import { NonFiniteError } from '../../src/rl/policy.ts';
import { TrainingSession } from '../../src/rl/session.ts';
import { gpt2ParamTable, paramEntry } from '../../src/model/param-table.ts';
import { testGpu } from '../helpers/gpu.ts';

async function session(score: (texts: string[]) => number[]) {
  const gpu = await testGpu();
  const config = makeGPT2Config({ vocab_size: 16, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 });
  const params = initGPT2Params(config, { seed: 1 });
  return new TrainingSession(gpu, {
    model: { config, table: gpt2ParamTable(config), params, valueHeadLoaded: false },
    reward: async (texts) => score(texts),
    prompts: { batch: (_s, B) => Array.from({ length: B }, (_, i) => ({ tokens: [1 + (i % 5), 2] })) },
    decode: (ids) => ids.join(','),
    config: validatePPOConfig({ ...TRL_DEFAULTS, batch_size: 4, mini_batch_size: 2, ppo_epochs: 1 }),
    rollout: { responseMinLength: 2, responseMaxLength: 4, padId: 0 },
  });
}

describe('PPO NaN guard', () => {
  test('a NaN score stops the step and leaves the weights as they were', async () => {
    const s = await session((texts) => texts.map((_, i) => (i === 2 ? NaN : 1)));
    const before = await s.policy.readParams();
    await expect(s.trainStep()).rejects.toThrow(NonFiniteError);
    await expect(s.trainStep()).rejects.toThrow(/non-finite reward score \(element 2: NaN\)/);
    const after = await s.policy.readParams();
    expect(after).toEqual(before);
    s.dispose();
  });

  test('a non-finite weight is named before anything runs', async () => {
    const s = await session((texts) => texts.map(() => 1));
    const e = paramEntry(s.policy.net.table, 'h.0.mlp.c_fc.bias');
    s.gpu.write(s.policy.net.params, Float32Array.of(Infinity), (e.offset + 3) * 4);
    await expect(s.trainStep()).rejects.toThrow(/non-finite weight in h\.0\.mlp\.c_fc\.bias/);
    s.dispose();
  });
});
