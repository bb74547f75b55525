/**
 * The GPT-2 reward model on our kernels against PyTorch: transformers' GPT2ForSequenceClassification
 * (num_labels 1) and TRL's RewardTrainer loss, fixtures made by
 * test/fixtures/scripts/make_reward_fixture_gpt2.py (a tiny GPT-2 with the full vocabulary, pairs of
 * uneven lengths, EOS = pad at the end of a row and inside one). Tolerances are the issue's: loss 1e-5
 * relative, scores 1e-4 absolute, each gradient max |err| <= 1e-3 * max |ref| (max |ref| floored at 1e-3).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parsePreferencePairs } from '../../src/data/preferences.ts';
import { tensorToF32 } from '../../src/model/safetensors.ts';
import { encode } from '../../src/model/tokenizer.ts';
import { loadGPT2RewardFolder } from '../../src/reward/gpt2-reward-folder.ts';
import { rewardDump } from '../../src/rl/reward-model-dump.ts';
import { tokenizeRewardPairs } from '../../src/rl/reward-model-data.ts';
import { lastNonPadIndex } from '../../src/rl/reward-model.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureFiles, readGz, REWARD_FIXTURE } from '../helpers/reward-fixture.ts';
import { maxAbs, maxErr } from '../helpers/compare.ts';

const root = REWARD_FIXTURE;

describe('lastNonPadIndex', () => {
  // transformers: argmax over t of t * (ids != pad); 0 when every token is the pad.
  test('the rightmost non-pad token, as GPT2ForSequenceClassification finds it', () => {
    expect(lastNonPadIndex([5, 6, 7], 0)).toBe(2);
    expect(lastNonPadIndex([5, 6, 9, 9], 9)).toBe(1);
    expect(lastNonPadIndex([5, 9, 6, 9], 9)).toBe(2);
    expect(lastNonPadIndex([9, 9], 9)).toBe(0);
    expect(lastNonPadIndex([5, 9], null)).toBe(1);
  });
});

describe('reward-dump equals PyTorch (GPT2ForSequenceClassification + TRL RewardTrainer loss)', () => {
  for (const [name, c] of [
    ['none', null],
    ['c0.1', 0.1],
  ] as const) {
    test(`center_rewards_coefficient ${c}: loss, scores and every gradient`, async () => {
      const gpu = await testGpu();
      const model = loadGPT2RewardFolder(fixtureFiles(`${root}/model`));
      expect(model.scoreLoaded).toBe(true);
      expect(model.padTokenId).toBe(50256);
      const rows = await parsePreferencePairs(readFileSync(`${root}/pairs.jsonl`), { format: 'jsonl' });
      const { pairs } = tokenizeRewardPairs(rows, encode);
      const got = await rewardDump(gpu, model, pairs, { centerRewardsCoefficient: c });
      const ref = readGz(`${root}/dump_${name}.safetensors.gz`);

      const refLoss = tensorToF32(ref.get('loss')!)[0];
      expect(Math.abs(got.loss - refLoss) / Math.abs(refLoss), 'loss relative error').toBeLessThanOrEqual(
        1e-5,
      );
      expect(maxErr(got.chosenScores, tensorToF32(ref.get('chosen_scores')!))).toBeLessThanOrEqual(1e-4);
      expect(maxErr(got.rejectedScores, tensorToF32(ref.get('rejected_scores')!))).toBeLessThanOrEqual(1e-4);

      const refGrads = [...ref.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
      expect(new Set(got.grads.keys())).toEqual(new Set(refGrads));
      expect(got.grads.has('score.weight')).toBe(true);
      for (const key of refGrads) {
        const want = tensorToF32(ref.get(`grad.${key}`)!);
        const err = maxErr(got.grads.get(key)!.data, want);
        // Floor 1e-6: without centering ln_f.bias's gradient is sum_b dscore_b * w = 0 by symmetry
        // (d/dr_c = -d/dr_r), exactly 0 in PyTorch and ~1e-8 of rounding here.
        expect(err, `grad ${key}`).toBeLessThanOrEqual(1e-3 * Math.max(maxAbs(want), 1e-3));
      }
    });
  }
});
