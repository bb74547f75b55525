/// <reference types="vite/client" />
/**
 * The studio's method form (src/store/method.ts): DPOConfig / RewardConfig / LoRA fields by TRL
 * name resolved from their text or refused naming the field, pair sources, the full-fine-tuning
 * check that proposes LoRA, and startPreferenceRun handing a Blob of pairs to the engine. Expected
 * values are TRL 0.19's DPOConfig defaults, hand arithmetic, or the validators' own messages.
 */
import { beforeAll, describe, expect, test, vi } from 'vitest';
import type { PreferenceRunSettings } from '../../src/protocol.ts';

type MethodModule = typeof import('../../src/store/method.ts');
let M: MethodModule;

beforeAll(async () => {
  // The store's initial drafts name the demo's folder under the page's URL.
  vi.stubGlobal('location', { href: 'http://studio.test/' });
  M = await import('../../src/store/method.ts');
});

const policy = {
  kind: 'url' as const,
  repo: '',
  revision: 'main',
  url: 'http://studio.test/p/',
  files: null,
};
const fieldsOf = (errors: { field: string }[]) => errors.map((e) => e.field);

describe('DPO and reward-model settings', () => {
  test("the demo's DPO draft resolves to typed DPOConfig fields", () => {
    const { settings, errors } = M.resolvePreferenceSettings(M.demoMethodDraft('dpo'), policy);
    expect(errors).toEqual([]);
    expect(settings?.method).toBe('dpo');
    expect(settings?.pairs).toEqual({ kind: 'url', url: 'http://studio.test/models/mini-imdb/pairs.jsonl' });
    expect(settings?.lora).toBeNull();
    // TRL 0.19 DPOConfig defaults where the demo keeps them; its own values elsewhere.
    expect(settings?.config).toMatchObject({
      beta: 0.1,
      loss_type: 'sigmoid',
      label_smoothing: 0,
      max_completion_length: null,
      precompute_ref_log_probs: false,
      learning_rate: 5e-4,
      max_length: 64,
    });
  });

  test('bad fields are refused, each naming its field', () => {
    const d = M.demoMethodDraft('dpo');
    const cases: [string, string, RegExp][] = [
      ['beta', '0', /^beta must be a number > 0, got 0$/],
      ['learning_rate', 'abc', /^must be a number, got "abc"$/],
      ['loss_type', 'kto', /^loss_type must be one of sigmoid, ipo, hinge, got kto$/],
      ['precompute_ref_log_probs', 'yes', /^must be true or false, got "yes"$/],
      ['max_length', '1.5', /^max_length must be a positive integer or none, got 1.5$/],
    ];
    for (const [k, v, message] of cases) {
      const { settings, errors } = M.resolvePreferenceSettings({ ...d, dpo: { ...d.dpo, [k]: v } }, policy);
      expect(settings, k).toBeNull();
      expect(errors[0]?.field, k).toBe(k);
      expect(errors[0]?.message, k).toMatch(message);
    }
    const r = M.demoMethodDraft('reward');
    const bad = M.resolvePreferenceSettings(
      { ...r, reward: { ...r.reward, center_rewards_coefficient: '-1' } },
      policy,
    );
    expect(fieldsOf(bad.errors)).toEqual(['center_rewards_coefficient']);
    const none = M.resolvePreferenceSettings({ ...r, reward: { ...r.reward, max_length: 'none' } }, policy);
    expect(none.settings?.config).toMatchObject({ max_length: null });
  });

  test('pairs from a Hub dataset file, and a missing local file', () => {
    const d = M.demoMethodDraft('dpo');
    const hub = M.resolvePreferenceSettings(
      { ...d, pairs: { ...d.pairs, kind: 'hub', repo: 'me/prefs', path: 'data/train.jsonl' } },
      policy,
    );
    expect(hub.settings?.pairs).toEqual({
      kind: 'url',
      url: 'https://huggingface.co/datasets/me/prefs/resolve/main/data/train.jsonl',
    });
    const file = M.resolvePreferenceSettings(
      { ...d, pairs: { ...d.pairs, kind: 'file', blob: null } },
      policy,
    );
    expect(fieldsOf(file.errors)).toEqual(['pairs']);
  });
});

describe('LoRA settings', () => {
  const on = (patch: Partial<Record<string, string>>) => ({
    ...M.loraText({ r: 16, alpha: 32, dropout: 0.05, targetModules: ['c_attn'], useRslora: false }, true),
    ...patch,
  });

  test('ModelConfig names resolve to a LoraConfig, or name the bad field', () => {
    expect(M.resolveLora(on({ lora_target_modules: 'c_attn, c_fc', use_rslora: 'true' }), [])).toEqual({
      r: 16,
      alpha: 32,
      dropout: 0.05,
      targetModules: ['c_attn', 'c_fc'],
      useRslora: true,
    });
    expect(M.resolveLora(on({ use_peft: 'false' }), [])).toBeNull();
    for (const [patch, field] of [
      [{ lora_r: 'x' }, 'lora_r'],
      [{ lora_r: '0' }, 'lora_r'],
      [{ lora_dropout: '1.5' }, 'lora_dropout'],
      [{ lora_target_modules: 'c_attn,wte' }, 'lora_target_modules'],
    ] as const) {
      const errors: { field: string; message: string }[] = [];
      expect(M.resolveLora(on(patch), errors)).toBeNull();
      expect(errors[0]?.field, JSON.stringify(patch)).toBe(field);
    }
  });

  test('DPO, reward models and PPO take LoRA; a bad LoRA field stops the PPO run with its name', async () => {
    const d = M.demoMethodDraft('dpo');
    expect(M.resolvePreferenceSettings({ ...d, lora: on({}) }, policy).settings?.lora?.r).toBe(16);
    const r = M.demoMethodDraft('reward');
    const rm = M.resolvePreferenceSettings({ ...r, lora: on({}) }, policy);
    expect(rm.errors).toEqual([]);
    expect(rm.settings?.lora?.r).toBe(16);
    const { presetDraft } = await import('../../src/store/settings.ts');
    const studio = presetDraft('mini-imdb');
    const ppo = M.resolvePpoRun(studio, on({ lora_r: '4', lora_target_modules: 'c_attn,c_fc' }));
    expect(ppo.errors).toEqual([]);
    expect(ppo.settings?.lora).toMatchObject({ r: 4, targetModules: ['c_attn', 'c_fc'] });
    expect(M.resolvePpoRun(studio, d.lora).settings?.lora).toBeNull();
    expect(fieldsOf(M.resolvePpoRun(studio, on({ lora_r: '0' })).errors)).toEqual(['lora_r']);
  });

  test('full fine-tuning is checked against the adapter limits (params x 4 B one buffer, x 20 B in all)', () => {
    const GiB = 2 ** 30;
    const limits = { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB } as Parameters<
      typeof M.fullFineTuneProblem
    >[1];
    // 124M: 0.46 GiB of weights < 1 GiB; 124M x 20 B = 2.3 GiB <= 4 GiB.
    expect(M.fullFineTuneProblem(M.GPT2_SIZES.gpt2, limits)).toBeNull();
    // 355M x 4 B = 1.3 GiB > 1 GiB: the weights alone exceed one buffer.
    expect(M.fullFineTuneProblem(M.GPT2_SIZES['gpt2-medium'], limits)).toMatch(
      /\(1\.3 GiB\).*largest storage buffer/,
    );
    // With 2 GiB buffers it fits one, but 355M x 20 B = 6.6 GiB > 4 x 1 GiB of maxBufferSize.
    const wide = { ...limits, maxStorageBufferBindingSize: 2 * GiB };
    expect(M.fullFineTuneProblem(M.GPT2_SIZES['gpt2-medium'], wide)).toMatch(/about 6\.6 GiB/);
    // 774M x 4 B = 2.9 GiB > 2 GiB.
    expect(M.fullFineTuneProblem(M.GPT2_SIZES['gpt2-large'], wide)).toMatch(/\(2\.9 GiB\).*largest/);
  });
});

test('startPreferenceRun hands a Blob of pairs to the engine with the form settings', async () => {
  const sent: PreferenceRunSettings[] = [];
  M.setPreferenceRunSender((s) => sent.push(s));
  const blob = new Blob(['{"prompt":"a","chosen":" b","rejected":" c"}\n']);
  expect(M.startPreferenceRun('reward', blob)).toEqual([]);
  expect(sent).toHaveLength(1);
  expect(sent[0].method).toBe('reward');
  expect(sent[0].pairs).toEqual({ kind: 'blob', blob, name: 'feedback.jsonl' });
  expect(M.useMethod.getState().running).toBe('reward');
  expect(M.useMethod.getState().draft.method).toBe('reward');
});
