// sentimentReward (src/reward/types.ts) on a stub model whose logits are hand-written: the
// expected scores are those numbers, picked by label name.
import { describe, expect, test } from 'vitest';
import {
  MissingLabelError,
  oneLogitReward,
  sentimentLabelIndex,
  sentimentReward,
  type RewardModel,
} from '../../src/reward/types.ts';

/** A model returning fixed logits: row i = [10i + 0, 10i + 1, ...]. */
function stub(labels: string[]): RewardModel & { calls: number } {
  const m = {
    labels,
    calls: 0,
    async logits(texts: string[]) {
      m.calls++;
      return Float32Array.from({ length: texts.length * labels.length }, (_, k) => {
        const [i, j] = [Math.floor(k / labels.length), k % labels.length];
        return 10 * i + j;
      });
    },
    dispose() {},
  };
  return m;
}

describe('sentimentReward', () => {
  test('scores are the raw logit of the target label, for either label order', async () => {
    const texts = ['a', 'b', 'c'];
    expect(await sentimentReward(stub(['NEGATIVE', 'POSITIVE']), 'positive')(texts)).toEqual([1, 11, 21]);
    expect(await sentimentReward(stub(['NEGATIVE', 'POSITIVE']), 'negative')(texts)).toEqual([0, 10, 20]);
    expect(await sentimentReward(stub(['POSITIVE', 'NEGATIVE']), 'positive')(texts)).toEqual([0, 10, 20]);
  });

  test('labels match case-insensitively, with more than two classes', async () => {
    const model = stub(['neutral', 'Negative', 'positive']);
    expect(sentimentLabelIndex(model.labels, 'positive')).toBe(2);
    expect(sentimentLabelIndex(model.labels, 'negative')).toBe(1);
    expect(await sentimentReward(model, 'negative')(['x', 'y'])).toEqual([1, 11]);
  });

  test('the target flips between calls', async () => {
    const model = stub(['NEGATIVE', 'POSITIVE']);
    const reward = sentimentReward(model, 'positive');
    expect(reward.target).toBe('positive');
    expect(await reward(['a', 'b'])).toEqual([1, 11]);
    reward.setTarget('negative');
    expect(reward.target).toBe('negative');
    expect(await reward(['a', 'b'])).toEqual([0, 10]);
    reward.setTarget('positive');
    expect(await reward(['a'])).toEqual([1]);
    expect(model.calls).toBe(3);
  });

  test('a model without the label: the error names the labels it has', () => {
    const model = stub(['LABEL_0', 'LABEL_1']);
    expect(() => sentimentReward(model, 'positive')).toThrow(MissingLabelError);
    expect(() => sentimentReward(model, 'negative')).toThrow(
      `the reward model has no NEGATIVE label for target 'negative'; its labels (config.json id2label) are "LABEL_0", "LABEL_1"`,
    );
  });

  test('setTarget to a missing label throws and keeps the old target', async () => {
    const reward = sentimentReward(stub(['POSITIVE', 'other']), 'positive');
    expect(() => reward.setTarget('negative')).toThrow(/no NEGATIVE label.*"POSITIVE", "other"/);
    expect(reward.target).toBe('positive');
    expect(await reward(['a'])).toEqual([0]);
  });

  test('a model returning the wrong number of logits is an error', async () => {
    const bad: RewardModel = {
      labels: ['NEGATIVE', 'POSITIVE'],
      logits: async () => new Float32Array(3),
      dispose() {},
    };
    await expect(sentimentReward(bad, 'positive')(['a', 'b'])).rejects.toThrow(
      /3 logits for 2 texts x 2 labels/,
    );
  });
});

describe('oneLogitReward', () => {
  test('the score is the one logit whatever the target; switching the target is refused', async () => {
    const r = oneLogitReward(stub(['LABEL_0']), 'positive');
    // Expected: the stub's logits, row i = 10i.
    expect(await r(['a', 'b'])).toEqual([0, 10]);
    expect(() => r.setTarget('negative')).toThrow(/one logit .* does not apply/);
    expect(() => oneLogitReward(stub(['NEGATIVE', 'POSITIVE']), 'positive')).toThrow(/one-logit/);
  });
});
