// DPO training (src/rl/dpo-config.ts, dpo-trainer.ts, dpo.ts, src/cli/dpo.ts). Expected values:
// the learning-rate schedule from transformers' get_linear_schedule_with_warmup / constant formulas
// worked by hand; the loss gradient against central finite differences of the loss itself; the
// first update's loss from the definition: the reference is the initial policy, so every z = 0 and
// the sigmoid loss is -logsigmoid(0) = ln 2, every reward 0. The run uses the tiny full-vocabulary
// policy of test/fixtures/dpo (make_dpo_fixture.py) and its pairs.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { dpoCommand, dpoConfigArgs } from '../../src/cli/dpo.ts';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { dpoLoss, type DPOLossSettings } from '../../src/rl/dpo.ts';
import { DPO_CONFIG_DEFAULTS, dpoTotalSteps, scheduledLearningRate } from '../../src/rl/dpo-config.ts';
import { DPO_STAT_NAMES } from '../../src/rl/dpo-stats.ts';
import { updateBatches } from '../../src/rl/training-args.ts';
import { testGpu } from '../helpers/gpu.ts';
import { metricsSteps } from '../../src/cli/metrics-log.ts';

describe('DPO loss gradient', () => {
  const inputs = {
    policyChosen: [-3.1, -7.4, -2.2],
    policyRejected: [-4.0, -6.9, -2.5],
    refChosen: [-3.5, -7.0, -2.0],
    refRejected: [-3.2, -7.7, -2.9],
  };
  const cases: DPOLossSettings[] = [
    { beta: 0.1, lossType: 'sigmoid', labelSmoothing: 0 },
    { beta: 0.5, lossType: 'sigmoid', labelSmoothing: 0.2 },
    { beta: 0.1, lossType: 'ipo', labelSmoothing: 0 },
    { beta: 2, lossType: 'hinge', labelSmoothing: 0 }, // pairs on both sides of the hinge
  ];
  test.each(cases)('%o equals finite differences', (s) => {
    const r = dpoLoss(inputs, s);
    const h = 1e-6;
    for (const key of ['policyChosen', 'policyRejected'] as const) {
      const grad = key === 'policyChosen' ? r.dPolicyChosen : r.dPolicyRejected;
      for (let i = 0; i < 3; i++) {
        const at = (d: number) => {
          const x = { ...inputs, [key]: inputs[key].map((v, j) => (j === i ? v + d : v)) };
          return dpoLoss(x, s).loss;
        };
        expect(grad[i]).toBeCloseTo((at(h) - at(-h)) / (2 * h), 6);
      }
    }
    expect(Array.from(r.chosenRewards)).toEqual(
      inputs.policyChosen.map((p, i) => s.beta * (p - inputs.refChosen[i])),
    );
  });
});

describe('schedule and batches', () => {
  const c = {
    ...DPO_CONFIG_DEFAULTS,
    learning_rate: 1,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
  };
  test('updates: ceil(ceil(rows / batch) / GA) per epoch, or max_steps', () => {
    expect(dpoTotalSteps(10, c)).toBe(3 * 2); // 3 micro-batches -> 2 updates per epoch, 3 epochs
    expect(dpoTotalSteps(10, { ...c, num_train_epochs: 1.5 })).toBe(3);
    expect(dpoTotalSteps(10, { ...c, max_steps: 7 })).toBe(7);
  });
  test('linear with warmup, constant, constant_with_warmup', () => {
    const lin = [0, 1, 2, 3, 4, 5].map((k) => scheduledLearningRate({ ...c, warmup_steps: 2 }, k, 6));
    expect(lin).toEqual([0, 0.5, 1, 0.75, 0.5, 0.25]); // k/2, then (6-k)/(6-2)
    expect(scheduledLearningRate(c, 0, 6)).toBe(1);
    expect(scheduledLearningRate({ ...c, warmup_ratio: 0.5 }, 1, 6)).toBeCloseTo(1 / 3); // W = 3
    expect(scheduledLearningRate({ ...c, lr_scheduler_type: 'constant' }, 5, 6)).toBe(1);
    expect(
      scheduledLearningRate({ ...c, lr_scheduler_type: 'constant_with_warmup', warmup_steps: 4 }, 1, 6),
    ).toBe(0.25);
  });
  test('micro-batches: every pair once per epoch, GA per update, a short last update', () => {
    const ups = [...updateBatches(10, c, 4)];
    expect(ups.map((u) => u.map((m) => m.length))).toEqual([[4, 4], [2], [4, 4], [2]]);
    expect(
      ups
        .slice(0, 2)
        .flat(2)
        .sort((a, b) => a - b),
    ).toEqual([...Array(10).keys()]);
    expect(ups[0].flat()).not.toEqual(ups[2].flat()); // a new shuffle each epoch
  });
  test('CLI fields by TRL name, checked', () => {
    const cfg = dpoConfigArgs({
      beta: '0.3',
      loss_type: 'ipo',
      max_completion_length: '12',
      precompute_ref_log_probs: 'true',
    });
    expect([cfg.beta, cfg.loss_type, cfg.max_completion_length, cfg.precompute_ref_log_probs]).toEqual([
      0.3,
      'ipo',
      12,
      true,
    ]);
    expect(cfg.learning_rate).toBe(1e-6);
    expect(() => dpoConfigArgs({ loss_type: 'kto' })).toThrow(/loss_type takes one of sigmoid, ipo, hinge/);
    expect(() => dpoConfigArgs({ beta: '0' })).toThrow(/beta must be a number > 0/);
  });
});

describe('rlhf-studio dpo', () => {
  test('two updates on the tiny policy: ln 2 first, then lower; a loadable folder', async () => {
    await testGpu(); // logs the adapter
    const dir = mkdtempSync(join(tmpdir(), 'dpo-train-'));
    const metrics = join(dir, 'metrics.jsonl');
    const args = ['--model', 'test/fixtures/dpo/policy', '--pairs', 'test/fixtures/dpo/pairs.jsonl'];
    args.push('--out', join(dir, 'out'), '--metrics', metrics, '--quiet');
    args.push('--max_steps', '2', '--per_device_train_batch_size', '5', '--learning_rate', '1e-2');
    args.push('--lr_scheduler_type', 'constant', '--precompute_ref_log_probs', 'true');
    expect(await dpoCommand.run(args)).toBe(0);
    const text = readFileSync(metrics, 'utf8');
    const lines = metricsSteps(text);
    expect(JSON.parse(text.trim().split('\n').at(-1)!)).toEqual({ end: 'complete', steps: 2 });
    expect(lines.length).toBe(2);
    for (const k of DPO_STAT_NAMES) expect(Number.isFinite(lines[1][k]), k).toBe(true);
    expect(lines[0].loss).toBeCloseTo(Math.LN2, 6);
    expect(lines[0]['rewards/margins']).toBeCloseTo(0, 6);
    expect(lines[1].loss).toBeLessThan(Math.LN2 - 1e-3);
    expect(lines[1]['rewards/margins']).toBeGreaterThan(0);
    const before = loadModelDir('test/fixtures/dpo/policy').params;
    const after = loadModelDir(join(dir, 'out')).params;
    expect(after.length).toBe(before.length);
    expect(after.some((x, i) => x !== before[i])).toBe(true);
  });
});
