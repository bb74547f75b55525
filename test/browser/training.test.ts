/**
 * The studio end to end in headless Chromium on SwiftShader: the built app, tiny models served by
 * the test (e2e-fixtures.ts) and chosen through the page's link, PPO steps on the charts, a target
 * flip, pause and resume, the model download (parsed back), an exact resume from the OPFS checkpoint
 * after a reload, and a lost GPU device. Each test launches its own browser (a fresh profile, so its
 * own OPFS): none depends on another's state or order. (A browser per test, not a context: the
 * Chromium of @sparticuz/chromium runs --single-process, where closing a context ends the browser.)
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterEach, describe, expect, inject, test } from 'vitest';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { launchChromium } from '../helpers/browser.ts';
import { openStudioPage, studioPage } from '../helpers/studio-page.ts';
import { E2E_POLICY } from './e2e-fixtures.ts';

let browser: Browser;
let page: Page;

/** batch_size 4, mini_batch_size 2, ppo_epochs 1: a step takes seconds on SwiftShader. */
const LINK = new URLSearchParams({
  policy: '/e2e/policy',
  reward: '/e2e/reward',
  prompts: '/e2e/prompts.txt',
  target: 'positive',
  batch_size: '4',
  mini_batch_size: '2',
  ppo_epochs: '1',
  steps: '400',
  learning_rate: '1e-3',
  checkpoint_every: '2',
});

const {
  stepOf,
  pointsOf,
  phaseOf,
  savedStepOf,
  noErrors,
  waitForStep,
  startTraining,
  downloadZip,
  downloadCsv,
  pauseReloadResume,
} = studioPage(() => page);

afterEach(async () => {
  await browser?.close();
});

/** A fresh browser (its own profile and OPFS) on the studio with `link`'s settings. */
async function openStudio(link: URLSearchParams = LINK): Promise<void> {
  browser = await launchChromium();
  page = await openStudioPage(browser, `${inject('baseURL')}?${link}`, 800);
}

describe('training in the studio', () => {
  test('the settings panel shows what the link set', async () => {
    await openStudio();
    const note = page.getByTestId('link-settings');
    await note.waitFor({ timeout: 30_000 });
    const text = (await note.textContent()) ?? '';
    for (const k of ['policy', 'reward', 'prompts', 'target', 'batch_size', 'mini_batch_size'])
      expect(text).toContain(k);
    // 400 samples / batch_size 4 = 100 PPO steps (TRL's total_ppo_epochs).
    expect(await page.getByTestId('ppo-steps').textContent()).toContain('100 PPO steps');
  });

  test('refuses bad hyperparameters with a message naming the problem', async () => {
    await openStudio();
    const settings = page.getByTestId('settings');
    const field = (name: string) => settings.locator(`input[name="${name}"]`);
    const errorOf = (name: string) => settings.locator(`.field:has(input[name="${name}"]) .field-error`);
    const cases: [string, string, RegExp][] = [
      ['learning_rate', 'abc', /must be a number, got "abc"/],
      ['learning_rate', 'NaN', /must be a number, got "NaN"/],
      ['batch_size', '0x4', /must be a number, got "0x4"/],
      ['cliprange', '-0.2', /must be a finite number in \(0, 1\), got -0.2/],
      ['ppo_epochs', '1.5', /must be an integer >= 1, got 1.5/],
      // validatePPOConfig's cross-field check (TRL's exact_div), reported on batch_size.
      ['mini_batch_size', '3', /multiple of mini_batch_size \* gradient_accumulation_steps = 3, got 4/],
    ];
    for (const [name, bad, message] of cases) {
      const good = await field(name).inputValue();
      await field(name).fill(bad);
      const shown = name === 'mini_batch_size' ? errorOf('batch_size') : errorOf(name);
      await expect.poll(() => shown.textContent()).toMatch(message);
      expect(await page.getByTestId('train').isDisabled()).toBe(true);
      await field(name).fill(good);
      await expect.poll(() => settings.locator('.field-error').count()).toBe(0);
    }
  });

  test('trains, flips the target, pauses, resumes, downloads a model that parses, compares', async () => {
    await openStudio();
    const t0 = Date.now();
    await startTraining();

    // At least 3 PPO steps, each on the step counter and on every chart.
    await waitForStep(3);
    console.log(`[e2e] 3 steps after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const id of ['chart-reward', 'chart-kl', 'chart-loss'])
      expect(await pointsOf(id)).toBeGreaterThanOrEqual(3);
    expect(await page.getByTestId('samples').locator('tbody tr').count()).toBe(4);
    expect(await page.getByTestId('status-memory').textContent()).toMatch(/MiB|KiB/);

    // Flip the target (from the keyboard): it is marked on the charts and later steps are rewarded for it.
    await page.getByTestId('target-sentiment').focus();
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.getByTestId('target-sentiment').getAttribute('data-target'))
      .toBe('negative');
    await expect
      .poll(() => page.getByTestId('chart-reward').locator('.recharts-reference-line').count())
      .toBe(1);
    const flipped = await stepOf();
    await waitForStep(flipped + 2);
    await expect
      .poll(() => page.getByTestId('samples').locator('h2').textContent())
      .toContain('rewarded for negative');

    // Pause (Space on the focused button): the step in flight finishes, and the worker says how many
    // steps it has done. Every one of them has reached the page, and after Resume the next step is
    // exactly the following index: no step ran while paused (the counter is the last step index + 1,
    // and the charts hold one point per step report).
    await page.getByTestId('pause').focus();
    await page.keyboard.press('Space');
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('paused');
    const detail = (await page.locator('.run-detail').textContent()) ?? '';
    const paused = Number(detail.match(/paused after (\d+) PPO steps/)?.[1]);
    expect(paused).toBeGreaterThanOrEqual(flipped + 2);
    expect(await stepOf()).toBe(paused);
    expect(await pointsOf('chart-reward')).toBe(paused);
    expect(await page.getByTestId('pause').textContent()).toBe('Resume');
    await page.keyboard.press('Space');
    await expect.poll(phaseOf).toBe('training');
    await waitForStep(paused + 1);
    expect(await pointsOf('chart-reward')).toBe(await stepOf());
    expect((await downloadCsv()).slice(paused, paused + 1).map((r) => r.step)).toEqual([String(paused)]);

    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
    await noErrors();

    // The model as a Hugging Face folder in a zip: GPT-2 names and shapes, and TRL's value head.
    const { zip, folder } = await downloadZip('download-weights');
    const names = Object.keys(zip);
    expect(folder).toMatch(/^rlhf-studio-negative-step\d+$/);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt'])
      expect(names).toContain(`${folder}/${f}`);
    const config = JSON.parse(new TextDecoder().decode(zip[`${folder}/config.json`]));
    expect(config).toMatchObject({ n_embd: 16, n_layer: 1, n_head: 2, vocab_size: 50257 });
    const { tensors } = readSafetensors(zip[`${folder}/model.safetensors`]);
    // Every parameter of the table, `transformer.`-prefixed as transformers saves GPT2LMHeadModel.
    const table = gpt2ParamTable(E2E_POLICY, { valueHead: true });
    expect(tensors.size).toBe(table.entries.length);
    for (const e of table.entries) {
      const name = e.name.startsWith('v_head.') ? e.name : `transformer.${e.name}`;
      expect(tensors.get(name)?.shape, name).toEqual(e.shape);
      expect(tensors.get(name)?.dtype).toBe('F32');
    }
    expect(tensors.get('transformer.wte.weight')?.shape).toEqual([50257, 16]);
    expect(tensors.get('v_head.summary.weight')?.shape).toEqual([1, 16]);

    // The metrics as CSV: a header of TRL stat names, one row per PPO step.
    const rows = await downloadCsv();
    expect(Object.keys(rows[0]).slice(0, 7)).toEqual([
      'step',
      'target',
      'step_seconds',
      'tokens',
      'gpu_bytes',
      'env/reward_mean',
      'env/reward_std',
    ]);
    expect(rows.map((r) => Number(r.step))).toEqual(Array.from({ length: await stepOf() }, (_, i) => i));

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-training.png' });
    await page.screenshot({ path: 'test-results/studio-training-full.png', fullPage: true });
    // The layout holds at both sizes: nothing wider than the window.
    for (const [width, height] of [
      [1920, 1080],
      [1280, 800],
    ]) {
      await page.setViewportSize({ width, height });
      // ResponsiveContainer re-measures after a resize: wait until the layout fits, or fail.
      await expect
        .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), {
          message: `horizontal overflow at ${width}x${height}`,
          timeout: 10_000,
        })
        .toBeLessThanOrEqual(0);
      if (width === 1920) await page.screenshot({ path: 'test-results/studio-training-1920.png' });
    }

    // Compare: a typed prompt continued by the frozen reference and by the trained policy.
    await page.getByTestId('compare').locator('input').first().fill('The film was');
    await page.getByTestId('compare-run').click();
    const result = page.getByTestId('compare-result');
    await result.waitFor({ timeout: 60_000 });
    expect(await result.textContent()).toMatch(/Reference \(start\).*negative reward.*Policy \(step \d+\)/s);
    console.log(
      `[e2e] trained, flipped, paused, resumed, downloaded, compared in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }, 300_000);

  test("resuming from the OPFS checkpoint after a reload gives the straight run's metrics exactly", async () => {
    // 12 samples / batch_size 4 = 3 PPO steps; a checkpoint after every step.
    const link = new URLSearchParams(LINK);
    link.set('steps', '12');
    link.set('checkpoint_every', '1');
    await openStudio(link);
    await startTraining();
    await expect.poll(phaseOf, { timeout: 200_000 }).toBe('finished');
    await noErrors();
    const straight = await downloadCsv();
    expect(straight.map((r) => r.step)).toEqual(['0', '1', '2']);

    // The same run again, paused after its first step or two, then the page reloaded.
    const paused = await pauseReloadResume(3);
    // The history comes back with the run, then the remaining steps follow it.
    await expect.poll(stepOf, { timeout: 30_000 }).toBe(paused);
    expect(await pointsOf('chart-reward')).toBe(paused);
    await expect.poll(phaseOf, { timeout: 200_000 }).toBe('finished');
    await noErrors();

    // Every stat equal to the straight run's, as printed (String(double) round-trips): wall-clock
    // time and GPU bytes aside.
    const clock = (k: string) => k.startsWith('time/') || k === 'step_seconds' || k === 'gpu_bytes';
    const strip = (rows: Record<string, string>[]) =>
      rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !clock(k))));
    const resumed = await downloadCsv();
    expect(strip(resumed)).toEqual(strip(straight));
    expect(Number(straight[2]['objective/kl'])).not.toBe(0);
  }, 400_000);

  test('a lost GPU device says so and resumes from the last checkpoint', async () => {
    const link = new URLSearchParams(LINK);
    link.set('checkpoint_every', '1');
    await openStudio(link);
    await startTraining();
    await expect.poll(savedStepOf, { timeout: 100_000 }).toBeGreaterThanOrEqual(1);
    await page.evaluate(() =>
      (window as unknown as { rlhfStudio: { simulateDeviceLoss(): void } }).rlhfStudio.simulateDeviceLoss(),
    );
    const banner = page.getByTestId('device-lost');
    await banner.waitFor({ timeout: 60_000 });
    const shown = (await page.getByTestId('error').textContent()) ?? '';
    console.log(`[e2e] after the device loss: ${shown}`);
    expect(shown).toContain('GpuDeviceLostError');
    expect(await phaseOf()).toBe('failed');
    const text = (await banner.textContent()) ?? '';
    const at = Number(text.match(/saved at step (\d+)/)?.[1]);
    expect(at).toBeGreaterThan(0);
    await banner.getByRole('button', { name: `Resume from step ${at}` }).click();
    await page.getByTestId('error').getByRole('button', { name: 'Dismiss error' }).click();
    await expect.poll(stepOf, { timeout: 30_000 }).toBe(at);
    await waitForStep(at + 1);
    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
  }, 300_000);

  test('scores with our WebGPU DistilBERT when the link asks for that engine', async () => {
    const link = new URLSearchParams(LINK);
    link.set('reward_engine', 'webgpu');
    link.set('checkpoint_every', '0');
    await openStudio(link);
    await startTraining();
    await waitForStep(1);
    expect(await page.getByTestId('run-info').textContent()).toContain('DistilBERT on our WebGPU kernels');
    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
  });

  // The built-in demo is the default preset: its files load and it takes a step (smaller batches here).
  test('the built-in mini-IMDb demo loads and trains', async () => {
    await openStudio(new URLSearchParams('batch_size=4&mini_batch_size=2&ppo_epochs=1&checkpoint_every=0'));
    await startTraining();
    await waitForStep(1);
    const info = (await page.getByTestId('run-info').textContent()) ?? '';
    console.log(`[e2e] demo: ${info}`);
    expect(info).toContain('models/mini-imdb/policy');
    expect(info).toContain('NEGATIVE/POSITIVE');
    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
  });
});
