/**
 * The LoRA memory estimate (src/model/memory-lora.ts) against the Gpu's own accounting: one LoRA PPO
 * step on the tiny peft fixture base, with fixed query and response lengths (so the shapes the
 * estimate takes are the ones the step runs), must reach exactly the estimated peak. Also the
 * figures the estimate gives at TRL's defaults (batch 128, queries < 8 and responses < 16 tokens, as the
 * gpt2-sentiment example) for GPT-2 124M and 774M: the bounds, 1.5 GiB and 6 GiB.
 */
import { describe, expect, test } from 'vitest';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { GPT2_LARGE, GPT2_SMALL } from '../../src/model/config.ts';
import type { LoraConfig } from '../../src/model/lora-table.ts';
import { loraPPOMemory, totalBytes } from '../../src/model/memory-lora.ts';
import { TRL_DEFAULTS, validatePPOConfig } from '../../src/rl/config.ts';
import { LORA_MICRO_BATCH } from '../../src/rl/lora-policy.ts';
import { TrainingSession } from '../../src/rl/session.ts';
import { testGpu } from '../helpers/gpu.ts';

const LORA: LoraConfig = {
  r: 4,
  alpha: 8,
  dropout: 0.05,
  targetModules: ['c_attn', 'c_proj', 'c_fc'],
  useRslora: false,
};

describe('LoRA memory estimate', () => {
  test('equals the measured peak of a LoRA PPO step', async () => {
    const gpu = await testGpu();
    const model = loadModelDir('test/fixtures/lora/base');
    const config = validatePPOConfig({
      ...TRL_DEFAULTS,
      batch_size: 8,
      mini_batch_size: 4,
      ppo_epochs: 1,
      seed: 1,
    });
    const Q = 5;
    const S = 6;
    const queries = Array.from({ length: 8 }, (_, i) =>
      Array.from({ length: Q }, (_, j) => (i * 7 + j) % 90),
    );
    gpu.peakBytes = gpu.allocatedBytes;
    const start = gpu.allocatedBytes;
    const session = new TrainingSession(gpu, {
      model,
      reward: (texts) => Promise.resolve(texts.map((t) => t.length % 3)),
      prompts: { batch: () => queries.map((tokens) => ({ tokens })) },
      decode: (ids) => ids.join(' '),
      config,
      // Lengths drawn from [S, S+1): every response has S tokens; the base's EOS is outside its vocabulary.
      rollout: { responseMinLength: S, responseMaxLength: S + 1, padId: 96 },
      lora: { config: LORA, microBatch: 3 },
    });
    await session.trainStep();
    const measured = gpu.peakBytes - start;
    const items = loraPPOMemory(model.config, LORA, {
      batchSize: 8,
      miniBatchSize: 4,
      microBatch: 3,
      queryLen: Q,
      responseLen: S,
    });
    expect(measured).toBe(totalBytes(items));
    session.dispose();
    expect(gpu.allocatedBytes).toBe(start);
  }, 120_000);

  test('GPT-2 124M at TRL defaults with r 16 on c_attn, c_proj, c_fc stays under 1.5 GiB', () => {
    const items = loraPPOMemory(
      GPT2_SMALL,
      { r: 16, alpha: 32, dropout: 0.05, targetModules: ['c_attn', 'c_proj', 'c_fc'], useRslora: false },
      { batchSize: 128, miniBatchSize: 128, microBatch: LORA_MICRO_BATCH, queryLen: 7, responseLen: 15 },
    );
    expect(totalBytes(items)).toBeLessThanOrEqual(1.5 * 2 ** 30);
  });

  test('GPT-2 large (774M) under the same settings fits in 6 GiB', () => {
    const items = loraPPOMemory(
      GPT2_LARGE,
      { r: 16, alpha: 32, dropout: 0.05, targetModules: ['c_attn', 'c_proj', 'c_fc'], useRslora: false },
      { batchSize: 128, miniBatchSize: 128, microBatch: LORA_MICRO_BATCH, queryLen: 7, responseLen: 15 },
    );
    expect(totalBytes(items)).toBeLessThanOrEqual(6 * 2 ** 30);
  });
});
