/**
 * export-trl (src/export-trl/): a sample RUN.json of each kind gives the script of its kind and a
 * trl_config.json carrying the run's models, data, hyperparameters and seed. Expected values are the
 * sample's own fields, and for fields it leaves out, TRL's defaults: TRL 0.9.6 PPOConfig (as
 * src/rl/config.ts TRL_DEFAULTS) for PPO, TRL 1.13.0 DPOConfig / RewardConfig / ModelConfig for the
 * others (trl/trainer/dpo_config.py, reward_config.py, model_config.py of the 1.13.0 wheel).
 * Whether the scripts run on TRL is checked by test/fixtures/scripts/check_export_trl.sh (Python).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { exportTrl } from '../../src/export-trl/export.ts';
import { parseRunConfig, RunConfigError } from '../../src/export-trl/run-config.ts';
import { TRL_DEFAULTS } from '../../src/rl/config.ts';

const PPO = {
  kind: 'ppo',
  policy: { kind: 'hub', repo: 'lvwerra/gpt2-imdb', revision: 'main' },
  reward: { kind: 'hub', repo: 'lvwerra/distilbert-imdb' },
  prompts: { kind: 'imdb' },
  target: 'negative',
  rollout: { response_max_length: 20 },
  config: { batch_size: 16, mini_batch_size: 8, learning_rate: 3e-4, steps: 480, seed: 2, init_kl_coef: 0.1 },
};
const DPO = {
  kind: 'dpo',
  policy: { kind: 'path', path: '/models/policy' },
  pairs: { kind: 'path', path: '/data/pairs.jsonl' },
  config: {
    beta: 0.25,
    loss_type: 'ipo',
    per_device_train_batch_size: 4,
    max_steps: 100,
    max_prompt_length: 128,
    seed: 7,
  },
};
const REWARD = {
  kind: 'reward',
  model: { kind: 'hub', repo: 'distilbert/distilbert-base-uncased' },
  pairs: { kind: 'hub', repo: 'trl-lib/ultrafeedback_binarized', split: 'train' },
  config: {
    learning_rate: 2e-5,
    center_rewards_coefficient: 0.01,
    use_peft: true,
    lora_r: 8,
    lora_target_modules: ['q_lin', 'v_lin'],
  },
};

function exported(run: unknown) {
  const files = exportTrl(parseRunConfig(run));
  return { files, config: JSON.parse(files.get('trl_config.json')!) as Record<string, unknown> };
}

describe('export-trl', () => {
  test('PPO: TRL 0.9.6 script, the PPOConfig with defaults filled, models, prompts, target', () => {
    const { files, config } = exported(PPO);
    expect([...files.keys()]).toEqual(['train_ppo.py', 'trl_config.json', 'requirements.txt', 'launch.sh']);
    expect(files.get('train_ppo.py')).toContain('PPOTrainer(config, model, ref_model, tokenizer');
    expect(files.get('requirements.txt')).toMatch(/^trl==0\.9\.6$/m);
    expect(files.get('launch.sh')).toContain('accelerate launch train_ppo.py --config trl_config.json');
    expect(config).toMatchObject({
      kind: 'ppo',
      policy: { name_or_path: 'lvwerra/gpt2-imdb', revision: 'main' },
      reward: { name_or_path: 'lvwerra/distilbert-imdb', revision: null },
      target_label: 'NEGATIVE',
      prompts: { builder: 'stanfordnlp/imdb', data_files: null, split: 'train', column: 'text' },
      rollout: {
        query_min_tokens: 2,
        query_max_tokens: 8,
        response_min_length: 4,
        response_max_length: 20,
        min_prompt_chars: 200,
      },
      lora: null,
    });
    expect(config.ppo_config).toEqual({ ...TRL_DEFAULTS, ...PPO.config });
  });

  test('DPO: TRL 1.13 script, DPOConfig fields, max_prompt_length for the script, LoRA off', () => {
    const { files, config } = exported(DPO);
    expect(files.get('train_dpo.py')).toContain('DPOTrainer(');
    expect(files.get('requirements.txt')).toMatch(/^trl==1\.13\.0$/m);
    expect(config).toMatchObject({
      kind: 'dpo',
      policy: { name_or_path: '/models/policy', revision: null },
      pairs: { builder: 'json', data_files: '/data/pairs.jsonl' },
      max_prompt_length: 128,
      lora: null,
    });
    // TRL 1.13 DPOConfig defaults: learning_rate 1e-6, 3 epochs, max_length 1024, label_smoothing 0.
    expect(config.dpo_config).toEqual({
      beta: 0.25,
      loss_type: ['ipo'],
      label_smoothing: 0,
      learning_rate: 1e-6,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 1,
      max_steps: 100,
      num_train_epochs: 3,
      max_length: 1024,
      precompute_ref_log_probs: false,
      seed: 7,
      logging_steps: 1,
      report_to: 'none',
    });
  });

  test('reward model: RewardConfig fields, LoRA as a peft LoraConfig for sequence classification', () => {
    const { files, config } = exported(REWARD);
    expect(files.get('train_reward.py')).toContain('RewardTrainer(');
    expect(files.get('requirements.txt')).toMatch(/^peft/m);
    expect(config).toMatchObject({
      kind: 'reward',
      model: { name_or_path: 'distilbert/distilbert-base-uncased' },
      pairs: { builder: 'trl-lib/ultrafeedback_binarized', data_files: null, split: 'train' },
    });
    // TRL 1.13 RewardConfig defaults: learning_rate 1e-4, batch 8, max_length 1024, seed 42.
    expect(config.reward_config).toEqual({
      learning_rate: 2e-5,
      per_device_train_batch_size: 8,
      gradient_accumulation_steps: 1,
      max_steps: -1,
      num_train_epochs: 3,
      max_length: 1024,
      center_rewards_coefficient: 0.01,
      seed: 42,
      logging_steps: 1,
      report_to: 'none',
    });
    // ModelConfig defaults: lora_alpha 32, lora_dropout 0.05, use_rslora false.
    expect(config.lora).toEqual({
      r: 8,
      lora_alpha: 32,
      lora_dropout: 0.05,
      target_modules: ['q_lin', 'v_lin'],
      use_rslora: false,
      bias: 'none',
      task_type: 'SEQ_CLS',
    });
  });

  test('bad RUN.json: the error names the field', () => {
    const bad = (run: unknown, message: string) => {
      expect(() => parseRunConfig(run)).toThrow(RunConfigError);
      expect(() => parseRunConfig(run)).toThrow(message);
    };
    bad({ ...PPO, config: { ...PPO.config, learningRate: 1 } }, 'config.learningRate: unknown field');
    bad({ ...PPO, config: { ...PPO.config, batch_size: 12 } }, 'config.batch_size: must be a multiple of');
    bad({ ...PPO, target: 'happy' }, 'target: must be "positive" or "negative"');
    bad({ ...PPO, policy: { kind: 'url', base: 'https://x' } }, "policy: a 'url' source cannot be exported");
    bad({ ...PPO, rollout: { query_min_tokens: 8 } }, 'rollout.query_max_tokens: is exclusive');
    bad({ ...DPO, config: { beta: -1 } }, 'config.beta: must be a number > 0');
    bad({ ...DPO, config: { loss_type: 'kto' } }, 'config.loss_type: must be one of sigmoid');
    bad({ ...DPO, pairs: { kind: 'path', path: 'pairs.xlsx' } }, 'pairs.path: must end in');
    bad({ ...REWARD, config: { lora_dropout: 1 } }, 'config.lora_dropout: must be a number in [0, 1)');
    bad({ ...REWARD, kind: 'sft' }, 'RUN.json.kind: must be "ppo", "dpo" or "reward"');
  });

  test('rlhf-studio export-trl: paths relative to RUN.json; a bad file exits 2 naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'export-trl-'));
    const run = {
      ...PPO,
      policy: { kind: 'path', path: 'models/policy' },
      prompts: { kind: 'path', path: 'p.txt' },
    };
    writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
    const ok = spawnSync(
      process.execPath,
      ['bin/rlhf-studio.mjs', 'export-trl', '--config', join(dir, 'run.json'), '--out', join(dir, 'out')],
      {
        encoding: 'utf8',
      },
    );
    expect(ok.status, ok.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(dir, 'out', 'trl_config.json'), 'utf8')) as {
      policy: { name_or_path: string };
      prompts: { builder: string; data_files: string };
    };
    expect(config.policy.name_or_path).toBe(resolve(dir, 'models/policy'));
    expect(config.prompts).toMatchObject({ builder: 'text', data_files: resolve(dir, 'p.txt') });
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...PPO, config: { ppo_epochs: 0 } }));
    const bad = spawnSync(
      process.execPath,
      ['bin/rlhf-studio.mjs', 'export-trl', '--config', join(dir, 'bad.json'), '--out', join(dir, 'o2')],
      {
        encoding: 'utf8',
      },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'bad.json')}: config.ppo_epochs: must be an integer >= 1`);
  });
});
