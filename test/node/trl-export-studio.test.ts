import { describe, expect, it } from 'vitest';
import { exportTrl } from '../../src/export-trl/export.ts';
import { parseRunConfig } from '../../src/export-trl/run-config.ts';
import { TRL_DEFAULTS } from '../../src/rl/config.ts';
import { DPO_CONFIG_DEFAULTS } from '../../src/rl/dpo-config.ts';
import { ppoRunJson, preferenceRunJson } from '../../src/store/trl-run.ts';

describe("the studio's settings as RUN.json for export-trl", () => {
  // Source: src/export-trl/run-config.ts's RUN.json format (parseRunConfig refuses unknown fields).
  it('maps a LoRA PPO run: hub models stay on the Hub, URL prompts become a local data path', () => {
    const { run, local } = ppoRunJson({
      policy: { kind: 'hub', repo: 'lvwerra/gpt2-imdb', revision: 'main' },
      reward: { kind: 'url', url: 'https://example.org/reward' },
      rewardEngine: 'auto',
      prompts: { kind: 'url', url: 'https://example.org/x/prompts.txt?raw=1' },
      target: 'negative',
      config: { ...TRL_DEFAULTS, learning_rate: 2e-5 },
      rollout: {
        query_min_tokens: 2,
        query_max_tokens: 8,
        response_min_length: 4,
        response_max_length: 16,
        min_prompt_chars: 200,
      },
      checkpointEvery: 0,
      lora: { r: 4, alpha: 8, dropout: 0.05, targetModules: ['c_attn', 'c_proj'], useRslora: true },
    });
    const parsed = parseRunConfig(JSON.parse(JSON.stringify(run)));
    expect(parsed.kind).toBe('ppo');
    if (parsed.kind !== 'ppo') return;
    expect(parsed.policy).toEqual({ kind: 'hub', repo: 'lvwerra/gpt2-imdb', revision: 'main' });
    expect(parsed.reward).toEqual({ kind: 'path', path: 'models/reward' });
    expect(parsed.prompts).toEqual({ kind: 'path', path: 'data/prompts.txt', column: null });
    expect(parsed.target).toBe('negative');
    expect(parsed.config.learning_rate).toBe(2e-5);
    expect(local).toHaveLength(2);
    expect(parsed.lora).toMatchObject({
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      lora_target_modules: ['c_attn', 'c_proj'],
      use_rslora: true,
    });
    expect([...exportTrl(parsed).keys()]).toContain('train_ppo.py');
  });

  it('maps a LoRA DPO run on a Blob of pairs', () => {
    const { run } = preferenceRunJson({
      method: 'dpo',
      policy: { kind: 'hub', repo: 'gpt2', revision: 'main' },
      pairs: { kind: 'blob', blob: new Blob(['']), name: 'my-choices.jsonl' },
      lora: { r: 8, alpha: 16, dropout: 0, targetModules: ['c_attn'], useRslora: false },
      config: { ...DPO_CONFIG_DEFAULTS, beta: 0.2, max_steps: 2 },
    });
    const parsed = parseRunConfig(JSON.parse(JSON.stringify(run)));
    expect(parsed.kind).toBe('dpo');
    if (parsed.kind !== 'dpo') return;
    expect(parsed.pairs).toEqual({ kind: 'path', path: 'data/my-choices.jsonl', column: null });
    expect(parsed.config.beta).toBe(0.2);
    expect(parsed.config.max_steps).toBe(2);
    expect(parsed.lora).toMatchObject({
      use_peft: true,
      lora_r: 8,
      lora_alpha: 16,
      lora_target_modules: ['c_attn'],
    });
  });
});
