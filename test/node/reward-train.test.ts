/**
 * The reward model's folder and training loop:
 *  - our writer produces the folder AutoModelForSequenceClassification loads (the names and config
 *    fields transformers' GPT2ForSequenceClassification has: architectures, id2label with one label,
 *    pad_token_id; `transformer.` body + score.weight); reading it back gives the same weights. That
 *    transformers itself loads such a folder and scores as we do was checked with
 *    test/fixtures/scripts/check_reward_folder_gpt2.py (Python is not in CI).
 *  - `rlhf-studio reward-train` on 8 pairs (a tiny random GPT-2 with the full vocabulary) raises the
 *    pairs' accuracy from chance to all correct; `train --reward` takes the folder as the PPO reward
 *    and refuses --target for it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { exportGPT2RewardFolder, loadGPT2RewardFolder } from '../../src/reward/gpt2-reward-folder.ts';
import { rewardModelLoss } from '../../src/rl/reward-model-loss.ts';
import { metricsSteps } from '../../src/cli/metrics-log.ts';

const bin = 'bin/rlhf-studio.mjs';
const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });

function writeDir(files: Map<string, Uint8Array>, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  return dir;
}

describe('the reward-model folder', () => {
  test("names and config as GPT2ForSequenceClassification's, read back to the same weights", () => {
    const plain = loadGPT2RewardFolder(exportHFFolder(cfg, initGPT2Params(cfg, { seed: 1 })), { seed: 2 });
    expect(plain.scoreLoaded).toBe(false); // a language model: score.weight drawn N(0, 0.02)
    expect(plain.padTokenId).toBe(50256);
    const files = exportGPT2RewardFolder(cfg, plain.params, { padTokenId: 50256 });
    const config = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
    expect(config.architectures).toEqual(['GPT2ForSequenceClassification']);
    expect(config.id2label).toEqual({ '0': 'LABEL_0' });
    expect(config.label2id).toEqual({ LABEL_0: 0 });
    expect(config.pad_token_id).toBe(50256);
    expect(config.model_type).toBe('gpt2');
    const names = [...readSafetensors(files.get('model.safetensors')!).tensors.keys()];
    const table = gpt2ParamTable(cfg);
    expect(new Set(names)).toEqual(
      new Set([...table.entries.map((e) => `transformer.${e.name}`), 'score.weight']),
    );
    const back = loadGPT2RewardFolder(files);
    expect(back.scoreLoaded).toBe(true);
    expect(back.params).toEqual(plain.params);
  });

  test('a config with two labels is refused: a reward model has one', () => {
    const files = exportGPT2RewardFolder(
      cfg,
      loadGPT2RewardFolder(exportHFFolder(cfg, initGPT2Params(cfg))).params,
      {
        padTokenId: 50256,
      },
    );
    const config = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
    config.id2label = { '0': 'NEGATIVE', '1': 'POSITIVE' };
    files.set('config.json', new TextEncoder().encode(JSON.stringify(config)));
    expect(() => loadGPT2RewardFolder(files)).toThrow(/2 labels/);
  });
});

describe('the reward loss', () => {
  // By hand: x = 1 - 0 - 0 = 1, -logsigmoid(1) = log(1 + e^-1) = 0.31326168751822286;
  // with c = 0.5: + 0.5 * (1 + 0)^2 = 0.5; d/dr_c = -sigmoid(-1) + 2 * 0.5 * 1 = 0.7310585786300049.
  test('one pair, with centering and a margin, equals the hand derivation', () => {
    const out = rewardModelLoss([1], [0], { centerRewardsCoefficient: 0.5 });
    expect(out.loss).toBeCloseTo(0.31326168751822286 + 0.5, 14);
    expect(out.dchosen[0]).toBeCloseTo(0.7310585786300049, 14);
    expect(out.drejected[0]).toBeCloseTo(1 - 0.7310585786300049 + 1, 14);
    const m = rewardModelLoss([1], [0], { margin: [1] }); // x = 0: log 2
    expect(m.loss).toBeCloseTo(Math.LN2, 14);
    expect(m.stats.accuracy).toBe(1);
    expect(m.stats['rewards/margins']).toBe(1);
  });
});

describe('rlhf-studio reward-train', () => {
  test('raises the accuracy on its pairs; train --reward takes the folder and refuses --target', () => {
    const model = writeDir(exportHFFolder(cfg, initGPT2Params(cfg, { seed: 3 })), 'rlhf-rm-base-');
    const work = mkdtempSync(join(tmpdir(), 'rlhf-rm-'));
    const pairs = join(work, 'pairs.jsonl');
    const openings = ['This movie was', 'The plot', 'I thought it', 'Honestly, the film'];
    const rows = openings.flatMap((p) => [
      { prompt: p, chosen: ' great, truly great.', rejected: ' awful, truly awful.' },
      { prompt: p, chosen: ' wonderful.', rejected: ' boring.' },
    ]);
    writeFileSync(pairs, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = join(work, 'rm');
    const metrics = join(work, 'metrics.jsonl');
    const args = [
      '--model',
      model,
      '--pairs',
      pairs,
      '--eval_pairs',
      pairs,
      '--out',
      out,
      '--metrics',
      metrics,
    ];
    const train = ['--learning_rate', '5e-3', '--per_device_train_batch_size', '8', '--max_steps', '8'];
    execFileSync(process.execPath, [bin, 'reward-train', ...args, ...train, '--seed', '1', '--quiet']);
    const text = readFileSync(metrics, 'utf8');
    const lines = metricsSteps(text);
    // eval, 8 steps, eval: 10 step lines, then the closing record
    expect(JSON.parse(text.trim().split('\n').at(-1)!)).toEqual({ end: 'complete', steps: 10 });
    const [before, after] = [lines[0], lines[lines.length - 1]];
    expect(lines.length).toBe(10);
    expect(Number.isFinite(lines[1]['rewards/chosen'])).toBe(true);
    expect(after.eval_accuracy).toBe(1);
    expect(after.eval_loss).toBeLessThan(before.eval_loss);
    expect(after['eval_rewards/margins']).toBeGreaterThan(before['eval_rewards/margins']);

    const ppo = [
      'train',
      '--model',
      model,
      '--reward',
      out,
      '--prompts',
      'test/fixtures/prompts/prompts.txt',
    ];
    const refused = spawnSync(process.execPath, [bin, ...ppo, '--steps', '1', '--target', 'negative'], {
      encoding: 'utf8',
    });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/one logit/);
    const ppoMetrics = join(work, 'ppo.jsonl');
    const small = ['--batch_size', '4', '--mini_batch_size', '2', '--response-max-length', '6'];
    execFileSync(process.execPath, [
      bin,
      ...ppo,
      '--steps',
      '1',
      ...small,
      '--metrics',
      ppoMetrics,
      '--quiet',
    ]);
    const [step] = metricsSteps(readFileSync(ppoMetrics, 'utf8'));
    expect(Number.isFinite(step['env/reward_mean'])).toBe(true);
  }, 300_000);
});
