/**
 * LoRA PPO in the studio, end to end in headless Chromium on SwiftShader, on the built-in mini-IMDb
 * demo: use_peft switched on in the method form (the memory estimate turns to the LoRA one), 3 PPO
 * steps straight; then the same run paused after a step, the page reloaded and resumed from the OPFS
 * checkpoint (which holds the peft adapter folder, not a second copy of the base), ending with the
 * straight run's metrics exactly; the adapter folder's download (peft's names and shapes, the value
 * head beside) and the merged weights (a whole GPT-2 folder) parse.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { loraTable } from '../../src/model/lora-table.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { PEFT_PREFIX } from '../../src/model/peft.ts';
import { readSafetensors, tensorToF32 } from '../../src/model/safetensors.ts';
import { launchChromium } from '../helpers/browser.ts';
import { openStudioPage, studioPage } from '../helpers/studio-page.ts';

/** public/models/mini-imdb/policy/config.json (make_mini_imdb.py's GPT2Config). */
const DEMO_POLICY = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 64, n_layer: 2, n_head: 4 });
const LORA = { r: 4, alpha: 8, dropout: 0.05, targetModules: ['c_attn', 'c_proj', 'c_fc'], useRslora: false };

let browser: Browser;
let page: Page;

const {
  stepOf,
  savedStepOf,
  noErrors,
  until,
  waitForPhase,
  startTraining,
  downloadZip,
  downloadCsv,
  pauseReloadResume,
} = studioPage(() => page);

afterAll(async () => {
  await browser?.close();
});

/** Switches LoRA on in the method form (PPO stays the method) with LORA's settings. */
async function switchLoraOn(): Promise<void> {
  const form = page.getByTestId('method-settings');
  const field = (name: string) => form.locator(`input[name="${name}"]`);
  await form.getByLabel('use_peft').check();
  await field('lora_r').fill(String(LORA.r));
  await field('lora_alpha').fill(String(LORA.alpha));
  await field('lora_dropout').fill(String(LORA.dropout));
  await field('lora_target_modules').fill(LORA.targetModules.join(','));
  await expect.poll(() => form.locator('.field-error').count()).toBe(0);
}

describe('LoRA PPO in the studio', () => {
  test('3 LoRA PPO steps; a reload resumes from the OPFS checkpoint exactly; adapter and merged downloads parse', async () => {
    const t0 = Date.now();
    browser = await launchChromium();
    // 12 samples / batch_size 4 = 3 PPO steps; a checkpoint after every step.
    page = await openStudioPage(
      browser,
      `${inject('baseURL')}?batch_size=4&mini_batch_size=2&ppo_epochs=1&steps=12&learning_rate=5e-3&checkpoint_every=1`,
    );
    await switchLoraOn();
    await expect.poll(() => page.getByTestId('memory-total').textContent()).toMatch(/LoRA r 4/);

    // The straight run.
    await startTraining();
    await waitForPhase('finished');
    expect(await stepOf()).toBe(3);
    expect(await page.getByTestId('run-info').textContent()).toContain('LoRA r 4, alpha 8');
    await expect.poll(savedStepOf, { timeout: 30_000 }).toBe(3);
    const straight = await downloadCsv({ withoutClock: true });
    expect(straight.map((r) => r.step)).toEqual(['0', '1', '2']);
    console.log(`[e2e] 3 LoRA PPO steps after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const first = await downloadZip('download-weights');

    // Again, paused after a step, the page reloaded, resumed from the checkpoint.
    await pauseReloadResume(3);
    await waitForPhase('finished');
    expect(await page.getByTestId('run-info').textContent()).toContain('LoRA r 4');
    // The reloaded form shows the resumed run's LoRA switches, not the defaults it opened with.
    const form = page.getByTestId('method-settings');
    expect(await form.getByLabel('use_peft').isChecked()).toBe(true);
    expect(await form.locator('input[name="lora_r"]').inputValue()).toBe('4');
    expect(await form.locator('input[name="lora_dropout"]').inputValue()).toBe('0.05');
    expect(await page.getByTestId('memory-total').textContent()).toMatch(/LoRA r 4/);
    expect(await downloadCsv({ withoutClock: true })).toEqual(straight);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-ppo-lora.png', fullPage: true });

    // The peft adapter folder: adapter_config.json, lora_A/lora_B by peft's names, the value head beside.
    const { folder, zip } = await downloadZip('download-weights');
    expect(
      Object.keys(zip)
        .map((k) => k.slice(folder.length + 1))
        .sort(),
    ).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'model.safetensors']);
    const config = JSON.parse(new TextDecoder().decode(zip[`${folder}/adapter_config.json`]));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.05 });
    expect(config.target_modules).toEqual(LORA.targetModules);
    const adapters = readSafetensors(zip[`${folder}/adapter_model.safetensors`]).tensors;
    const table = loraTable(DEMO_POLICY, LORA, { valueHead: true });
    const loraEntries = table.entries.filter((e) => e.name.includes('.lora_'));
    expect(adapters.size).toBe(loraEntries.length);
    for (const e of loraEntries) expect(adapters.get(PEFT_PREFIX + e.name)?.shape, e.name).toEqual(e.shape);
    const head = readSafetensors(zip[`${folder}/model.safetensors`]).tensors;
    expect(head.get('v_head.summary.weight')?.shape).toEqual([1, 64]);
    // The resumed run's adapters are the straight run's, byte for byte.
    expect(zip[`${folder}/adapter_model.safetensors`]).toEqual(
      first.zip[`${first.folder}/adapter_model.safetensors`],
    );
    // B started at zero (peft's init); PPO moved it.
    const b = tensorToF32(adapters.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`)!);
    expect(b.some((x) => x !== 0)).toBe(true);

    // The merged weights: a whole GPT-2 folder.
    const merged = await downloadZip('download-merged');
    const full = readSafetensors(merged.zip[`${merged.folder}/model.safetensors`]).tensors;
    expect(full.size).toBe(gpt2ParamTable(DEMO_POLICY).entries.length);
    expect(full.get('transformer.h.1.mlp.c_fc.weight')?.shape).toEqual([64, 256]);

    // The runs list keeps both runs as their adapter folders (kilobytes, not another 13 MB base), and
    // evaluates one merged into the form's policy, its base, against that policy as the reference.
    const panel = page.getByTestId('runs');
    const rows = panel.getByTestId('run-row');
    await expect
      .poll(() => panel.getByTestId('run-weights').allTextContents(), { timeout: 60_000 })
      .toEqual(['LoRA adapter', 'LoRA adapter']);
    for (let i = 0; i < 2; i++)
      expect(await rows.nth(i).textContent()).toMatch(/PPO LoRA positive, 3 steps.*\d KiB/);
    await rows.nth(0).locator('input[type="checkbox"]').check();
    await panel.getByLabel('side-by-side queries').fill('2');
    await panel.getByTestId('evaluate-runs').click();
    const summary = page.getByTestId('evaluate').getByTestId('evaluate-summary').locator('tbody tr');
    await until('the kept adapter evaluated', async () => (await summary.count()) === 2, 300_000);
    expect(await summary.nth(1).locator('td').first().textContent()).toBe('PPO LoRA positive, 3 steps');
    for (let i = 0; i < 2; i++)
      for (const c of (await summary.nth(i).locator('td').allTextContents()).slice(1))
        expect(c).toMatch(/^-?\d+(\.\d+)?(e[+-]?\d+)?$/);
    await noErrors();
  }, 900_000);
});
