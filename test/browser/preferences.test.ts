/**
 * DPO in the studio, end to end in headless Chromium on SwiftShader: the method switch, the built-in
 * demo's policy (public/models/mini-imdb/policy) and its pairs file (public/models/mini-imdb/pairs.jsonl,
 * made by test/fixtures/scripts/make_mini_imdb_pairs.mjs), a TRL field refused as typed, 3 updates on
 * the charts, the pairs table with policy and reference log-probs, and the policy's download parsed
 * back (GPT-2 names and shapes of the demo's config); then the same with LoRA switched on: the peft
 * adapter folder (peft's names and shapes) and the merged weights; reward models, in full and with
 * LoRA (peft's SEQ_CLS adapter folder; the merged model handed to the PPO form as its reward).
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { loraTable } from '../../src/model/lora-table.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { PEFT_PREFIX } from '../../src/model/peft.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { launchChromium } from '../helpers/browser.ts';
import { openStudioPage, studioPage } from '../helpers/studio-page.ts';

/** public/models/mini-imdb/policy/config.json (make_mini_imdb.py's GPT2Config). */
const DEMO_POLICY = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 64, n_layer: 2, n_head: 4 });

let browser: Browser;
let page: Page;

const { phaseOf, pointsOf, noErrors, startTraining, downloadZip } = studioPage(() => page);
const updateOf = async () => Number(await page.getByTestId('pref-step-counter').getAttribute('data-step'));

beforeAll(async () => {
  browser = await launchChromium();
  page = await openStudioPage(browser, `${inject('baseURL')}?checkpoint_every=0`);
});

afterAll(async () => {
  await browser?.close();
});

/** Presses Train once the form is valid and waits for the run to finish, failing on a studio error. */
async function trainToTheEnd(): Promise<void> {
  await startTraining();
  const end = Date.now() + 540_000;
  while ((await phaseOf()) !== 'finished') {
    await noErrors();
    if (Date.now() > end) throw new Error(`phase ${await phaseOf()} at update ${await updateOf()}`);
    await page.waitForTimeout(500);
  }
}

/** "Use as the PPO reward": the method switches back to PPO and the reward becomes the folder's files. */
async function useAsReward(): Promise<void> {
  await page.getByTestId('use-as-reward').click();
  await expect.poll(() => page.getByTestId('method-switch').getByLabel('PPO').isChecked()).toBe(true);
  await expect
    .poll(() =>
      page
        .getByTestId('settings')
        .getByText(/\d+ files/)
        .count(),
    )
    .toBeGreaterThan(0);
}

describe('DPO in the studio', () => {
  test('3 DPO updates from the demo pairs file: charts, pairs, and a download that parses', async () => {
    const t0 = Date.now();
    await page.getByTestId('method-switch').getByLabel('DPO').check();
    const form = page.getByTestId('method-settings');
    const field = (name: string) => form.locator(`input[name="${name}"]`);
    expect(await form.getByLabel('Pairs URL').inputValue()).toMatch(/models\/mini-imdb\/pairs\.jsonl$/);

    // DPOConfig fields are checked as typed (validateDPOConfig's message, on the field it names).
    await field('beta').fill('0');
    await expect
      .poll(() => form.locator('.field:has(input[name="beta"]) .field-error').textContent())
      .toMatch(/beta must be a number > 0, got 0/);
    expect(await page.getByTestId('train').isDisabled()).toBe(true);
    await field('beta').fill('0.1');
    await field('max_steps').fill('3');
    await field('per_device_train_batch_size').fill('2');
    await field('learning_rate').fill('5e-3');
    await expect.poll(() => form.locator('.field-error').count()).toBe(0);

    await trainToTheEnd();
    console.log(`[e2e] 3 DPO updates after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(await updateOf()).toBe(3);
    // One point per update on every chart of TRL's DPO stats.
    for (const id of ['loss', 'rewards', 'accuracies', 'logps', 'logits'])
      expect(await pointsOf(`pref-chart-${id}`), id).toBe(3);

    // The shown pairs: after the last update, the policy's log-probs and the reference's in brackets.
    const pairs = page.getByTestId('pref-pairs');
    expect(await pairs.getAttribute('data-step')).toBe('3');
    expect(await pairs.locator('tbody tr').count()).toBe(4);
    const firstRow = (await pairs.locator('tbody tr').first().textContent()) ?? '';
    expect(firstRow).toContain('This movie was');
    expect(firstRow).toMatch(/-\d+(\.\d+)? \(-\d+(\.\d+)?\)/);

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-dpo.png', fullPage: true });

    // The policy as a Hugging Face folder: GPT2LMHeadModel's names and the demo's shapes, no value head.
    const { zip, folder } = await downloadZip('download-weights');
    const names = Object.keys(zip);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json'])
      expect(names).toContain(`${folder}/${f}`);
    const { tensors } = readSafetensors(zip[`${folder}/model.safetensors`]);
    const table = gpt2ParamTable(DEMO_POLICY);
    expect(tensors.size).toBe(table.entries.length);
    for (const e of table.entries) {
      expect(tensors.get(`transformer.${e.name}`)?.shape, e.name).toEqual(e.shape);
      expect(tensors.get(`transformer.${e.name}`)?.dtype).toBe('F32');
    }
    await noErrors();
  });

  test('3 LoRA DPO updates; the adapter folder and the merged weights parse', async () => {
    await page.goto(`${inject('baseURL')}?checkpoint_every=0`);
    await page.getByTestId('method-switch').getByLabel('DPO').check();
    const form = page.getByTestId('method-settings');
    const field = (name: string) => form.locator(`input[name="${name}"]`);
    await form.getByLabel('use_peft').check();
    await field('lora_target_modules').fill('c_attn,c_fc,c_foo');
    await expect
      .poll(() => form.locator('.field:has(input[name="lora_target_modules"]) .field-error').textContent())
      .toMatch(/"c_foo" is not one of c_attn, c_proj, c_fc/);
    await field('lora_target_modules').fill('c_attn,c_proj,c_fc');
    await field('lora_r').fill('4');
    await field('lora_alpha').fill('8');
    await field('max_steps').fill('3');
    await field('per_device_train_batch_size').fill('2');
    await field('learning_rate').fill('5e-3');
    await expect.poll(() => form.locator('.field-error').count()).toBe(0);
    await trainToTheEnd();
    expect(await updateOf()).toBe(3);
    expect(await pointsOf('pref-chart-loss')).toBe(3);
    const firstRow = (await page.getByTestId('pref-pairs').locator('tbody tr').first().textContent()) ?? '';
    expect(firstRow).toMatch(/-\d+(\.\d+)? \(-\d+(\.\d+)?\)/);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-dpo-lora.png', fullPage: true });

    // The peft adapter folder: adapter_config.json as peft writes it, lora_A/lora_B by peft's names.
    const { zip, folder } = await downloadZip('download-weights');
    const config = JSON.parse(new TextDecoder().decode(zip[`${folder}/adapter_config.json`]));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, fan_in_fan_out: true });
    expect(config.target_modules).toEqual(['c_attn', 'c_proj', 'c_fc']);
    const { tensors } = readSafetensors(zip[`${folder}/adapter_model.safetensors`]);
    const table = loraTable(DEMO_POLICY, {
      r: 4,
      alpha: 8,
      dropout: 0.05,
      targetModules: ['c_attn', 'c_proj', 'c_fc'],
      useRslora: false,
    });
    // 2 layers x 4 Conv1D (c_proj in attention and in the MLP) x (A, B).
    expect(tensors.size).toBe(16);
    for (const e of table.entries) expect(tensors.get(PEFT_PREFIX + e.name)?.shape, e.name).toEqual(e.shape);
    expect(tensors.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`)?.shape).toEqual([192, 4]);

    // The merged weights: a whole GPT-2 folder.
    const { zip: mzip, folder: mfolder } = await downloadZip('download-merged');
    const full = readSafetensors(mzip[`${mfolder}/model.safetensors`]).tensors;
    expect(full.size).toBe(gpt2ParamTable(DEMO_POLICY).entries.length);
    expect(full.get('transformer.h.1.mlp.c_fc.weight')?.shape).toEqual([64, 256]);
    await noErrors();
  });

  test('2 reward-model updates: scores of the pairs, a GPT2ForSequenceClassification download', async () => {
    await page.goto(`${inject('baseURL')}?checkpoint_every=0`);
    await page.getByTestId('method-switch').getByLabel('Reward model').check();
    const form = page.getByTestId('method-settings');
    const field = (name: string) => form.locator(`input[name="${name}"]`);
    await field('max_steps').fill('2');
    await field('per_device_train_batch_size').fill('2');
    await expect.poll(() => form.locator('.field-error').count()).toBe(0);
    await trainToTheEnd();
    for (const id of ['loss', 'accuracy', 'rewards']) expect(await pointsOf(`pref-chart-${id}`), id).toBe(2);
    const pairs = page.getByTestId('pref-pairs');
    expect(await pairs.locator('tbody tr').count()).toBe(4);
    expect(await pairs.locator('h2').textContent()).toContain('reward-model scores');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-reward-model.png', fullPage: true });

    const { zip, folder } = await downloadZip('download-weights');
    const config = JSON.parse(new TextDecoder().decode(zip[`${folder}/config.json`]));
    expect(config.architectures).toEqual(['GPT2ForSequenceClassification']);
    expect(Object.keys(config.id2label)).toEqual(['0']);
    const { tensors } = readSafetensors(zip[`${folder}/model.safetensors`]);
    expect(tensors.get('score.weight')?.shape).toEqual([1, 64]);
    expect(tensors.size).toBe(gpt2ParamTable(DEMO_POLICY, { scoreHead: true }).entries.length);

    // Handed to the PPO form as its reward: the method switches back and the reward is the folder's files.
    await useAsReward();
    await noErrors();
  });

  test('2 LoRA reward-model updates: the SEQ_CLS adapter folder, and the merged model as the PPO reward', async () => {
    await page.goto(`${inject('baseURL')}?checkpoint_every=0`);
    await page.getByTestId('method-switch').getByLabel('Reward model').check();
    const form = page.getByTestId('method-settings');
    const field = (name: string) => form.locator(`input[name="${name}"]`);
    await form.getByLabel('use_peft').check();
    await field('lora_r').fill('4');
    await field('lora_alpha').fill('8');
    await field('lora_target_modules').fill('c_attn');
    await field('max_steps').fill('2');
    await field('per_device_train_batch_size').fill('2');
    await expect.poll(() => form.locator('.field-error').count()).toBe(0);
    await trainToTheEnd();
    expect(await pointsOf('pref-chart-loss')).toBe(2);
    expect(await page.getByTestId('run-info').textContent()).toContain('LoRA r 4');

    // peft's SEQ_CLS adapter folder: lora_A/lora_B on c_attn and the score head (modules_to_save).
    const { zip, folder } = await downloadZip('download-weights');
    const config = JSON.parse(new TextDecoder().decode(zip[`${folder}/adapter_config.json`]));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'SEQ_CLS',
      r: 4,
      target_modules: ['c_attn'],
    });
    const { tensors } = readSafetensors(zip[`${folder}/adapter_model.safetensors`]);
    expect([...tensors.keys()].sort()).toEqual(
      [
        `${PEFT_PREFIX}h.0.attn.c_attn.lora_A.weight`,
        `${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`,
        `${PEFT_PREFIX}h.1.attn.c_attn.lora_A.weight`,
        `${PEFT_PREFIX}h.1.attn.c_attn.lora_B.weight`,
        'base_model.model.score.weight',
      ].sort(),
    );

    // The merged model (a whole GPT2ForSequenceClassification) becomes the PPO form's reward.
    await useAsReward();
    await noErrors();
  });
});
