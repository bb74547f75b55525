/**
 * GPT2 with `inference: true` (the frozen reference model): the same head outputs as the training
 * model, bit for bit (the same kernels on the same inputs), from far fewer bytes: one layer's
 * activations serve every layer and backward's buffers are stubs. The byte counts are the Gpu's
 * own accounting, compared with src/model/memory.ts's.
 */
import { describe, expect, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { GPT2, type GPT2Batch } from '../../src/model/gpt2.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { gpt2ActivationBuffers } from '../../src/model/memory.ts';
import { testGpu } from '../helpers/gpu.ts';

const cfg = makeGPT2Config({ vocab_size: 96, n_positions: 32, n_embd: 32, n_layer: 3, n_head: 2 });

/** Two left-padded rows, as the PPO rollout lays them out. */
const batch: GPT2Batch = {
  B: 2,
  T: 6,
  ids: Int32Array.from([0, 0, 5, 17, 33, 2, 7, 8, 9, 10, 11, 12]),
  mask: Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
  positions: Int32Array.from([0, 0, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]),
};
const targets = Int32Array.from([0, 0, 17, 33, 2, -1, 8, 9, 10, 11, 12, -1]);

async function run(inference: boolean) {
  const gpu = await testGpu();
  const before = gpu.allocatedBytes;
  const net = new GPT2(gpu, cfg, initGPT2Params(cfg, { seed: 3 }), { inference });
  const params = gpu.allocatedBytes - before;
  net.forward(batch);
  // What forward allocated besides the mask (B*T u32 = 48 bytes): prepare()'s buffers.
  const acts = gpu.allocatedBytes - before - params - 48;
  const h = net.headForward(targets);
  return {
    logprob: await gpu.readF32(h.logprob, 12),
    lse: await gpu.readF32(h.lse, 12),
    entropy: await gpu.readF32(h.entropy, 12),
    acts,
    net,
  };
}

describe('GPT2 inference: true', () => {
  test('gives the same log-probs, logsumexp and entropies as the training model', async () => {
    const train = await run(false);
    const inf = await run(true);
    expect(Array.from(inf.logprob)).toEqual(Array.from(train.logprob));
    expect(Array.from(inf.lse)).toEqual(Array.from(train.lse));
    expect(Array.from(inf.entropy)).toEqual(Array.from(train.entropy));
    expect(() => inf.net.backward()).toThrow(/inference/);
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    const expected = (inference: boolean) => sum(gpt2ActivationBuffers(cfg, 2, 6, inference));
    console.log(`activations: training ${train.acts} B, inference ${inf.acts} B`);
    expect(train.acts).toBe(expected(false));
    expect(inf.acts).toBe(expected(true));
    expect(inf.acts).toBeLessThan(train.acts / 3);
    train.net.dispose();
    inf.net.dispose();
  });
});
