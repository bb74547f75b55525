/**
 * `rlhf-studio train` end to end on tiny models: a random GPT-2 with the full GPT-2 vocabulary
 * (n_embd 16, 1 layer) written as a Hugging Face folder, the tiny DistilBERT sentiment fixture (ONNX)
 * as the reward, the fixture prompts. Two PPO steps must write two JSON lines of TRL-named stats and a
 * folder that loads back, with weights that moved.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { metricsSteps } from '../../src/cli/metrics-log.ts';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';

const bin = 'bin/rlhf-studio.mjs';

function tinyPolicyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-policy-'));
  const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
  for (const [name, bytes] of exportHFFolder(cfg, initGPT2Params(cfg, { seed: 3 })))
    writeFileSync(join(dir, name), bytes);
  return dir;
}

describe('rlhf-studio train', () => {
  test('two PPO steps write metrics and a fine-tuned folder that loads back', () => {
    const policy = tinyPolicyDir();
    const out = mkdtempSync(join(tmpdir(), 'rlhf-out-'));
    const metrics = join(out, 'metrics.jsonl');
    const args = [
      bin,
      'train',
      '--model',
      policy,
      '--reward',
      'test/fixtures/reward/tiny-distilbert',
      '--prompts',
      'test/fixtures/prompts/prompts.txt',
      '--steps',
      '2',
      '--target',
      'negative',
      '--batch_size',
      '4',
      '--mini_batch_size',
      '2',
      '--ppo_epochs',
      '2',
      '--learning_rate',
      '1e-3',
      '--seed',
      '5',
      '--response-max-length',
      '8',
      '--out',
      join(out, 'model'),
      '--metrics',
      metrics,
    ];
    const stdout = execFileSync(process.execPath, args, { encoding: 'utf8' });
    expect(stdout).toMatch(/step 1 +reward/);
    const text = readFileSync(metrics, 'utf8');
    const lines = metricsSteps(text);
    expect(JSON.parse(text.trim().split('\n').at(-1) as string)).toEqual({ end: 'complete', steps: 2 });
    expect(lines.map((l) => l.step)).toEqual([0, 1]);
    for (const name of [
      'env/reward_mean',
      'objective/kl',
      'objective/kl_coef',
      'ppo/loss/total',
      'ppo/policy/clipfrac',
      'time/ppo/total',
    ]) {
      expect(Number.isFinite(lines[1][name]), `${name} in metrics`).toBe(true);
    }
    // objective/kl_coef logs the coefficient used by the step: the init value, then the adaptive update.
    expect(lines[0]['objective/kl_coef']).toBeCloseTo(0.2, 12);
    const before = loadModelDir(policy);
    const after = loadModelDir(join(out, 'model'), { valueHead: true });
    expect(after.valueHeadLoaded).toBe(true);
    let moved = 0;
    for (let i = 0; i < before.params.length; i++)
      moved = Math.max(moved, Math.abs(after.params[i] - before.params[i]));
    expect(moved).toBeGreaterThan(0);
  }, 300_000);

  test('a bad setting is refused with the field named and no run', () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'train',
        '--model',
        'x',
        '--reward',
        'y',
        '--prompts',
        'z',
        '--steps',
        '1',
        '--learning_rate',
        'NaN',
      ],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/learning_rate/);
  });
});
