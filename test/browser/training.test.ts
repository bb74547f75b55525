/**
 * The studio end to end in headless Chromium on SwiftShader: the built app, tiny models served by
 * the test (e2e-fixtures.ts) and chosen through the page's link, PPO steps on the charts, a target
 * flip, pause and resume, the model download (parsed back), and resuming from the OPFS checkpoint
 * after a reload.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { launchChromium } from '../helpers/browser.ts';
import { E2E_POLICY } from './e2e-fixtures.ts';

/** The lead's built-in demo (public/models/mini-imdb/), served by every build. */
const DEMO_FILE = 'public/models/mini-imdb/prompts.txt';

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

const stepOf = async () => Number(await page.getByTestId('step-counter').getAttribute('data-step'));
const pointsOf = async (id: string) => Number(await page.getByTestId(id).getAttribute('data-points'));
const phaseOf = async () => (await page.getByTestId('phase').textContent()) ?? '';

beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.log(`[page ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`${inject('baseURL')}?${LINK}`);
});

afterAll(async () => {
  await browser?.close();
});

/** Fails fast with the studio's own error message when one appears. */
async function noErrors(): Promise<void> {
  const errors = page.getByTestId('error');
  if (await errors.count()) throw new Error(`the studio shows an error: ${await errors.textContent()}`);
}

/** Polls the step counter until it reaches `atLeast`, failing at once when the studio shows an error. */
async function waitForStep(atLeast: number, timeout = 100_000): Promise<number> {
  const end = Date.now() + timeout;
  for (;;) {
    await noErrors();
    const step = await stepOf();
    if (step >= atLeast) return step;
    if (Date.now() > end) throw new Error(`step counter at ${step}, not ${atLeast}, after ${timeout} ms`);
    await page.waitForTimeout(250);
  }
}

describe('training in the studio', () => {
  test('the settings panel shows what the link set', async () => {
    const note = page.getByTestId('link-settings');
    await note.waitFor({ timeout: 30_000 });
    const text = (await note.textContent()) ?? '';
    for (const k of ['policy', 'reward', 'prompts', 'target', 'batch_size', 'mini_batch_size'])
      expect(text).toContain(k);
    // 400 samples / batch_size 4 = 100 PPO steps (TRL's total_ppo_epochs).
    expect(await page.getByTestId('ppo-steps').textContent()).toContain('100 PPO steps');
  });

  test('refuses bad hyperparameters with a message naming the problem', async () => {
    const settings = page.getByTestId('settings');
    const field = (name: string) => settings.locator(`input[name="${name}"]`);
    const errorOf = (name: string) => settings.locator(`.field:has(input[name="${name}"]) .field-error`);
    const cases: [string, string, RegExp][] = [
      ['learning_rate', 'abc', /must be a number, got "abc"/],
      ['learning_rate', 'NaN', /must be a number, got "NaN"/],
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

  test('trains, flips the target, pauses, resumes and downloads a model that parses', async () => {
    const t0 = Date.now();
    const train = page.getByTestId('train');
    await expect.poll(() => train.isEnabled(), { timeout: 60_000 }).toBe(true);
    await train.click();

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

    // Pause (Space on the focused button): the step in flight finishes, then no step follows until Resume.
    await page.getByTestId('pause').focus();
    await page.keyboard.press('Space');
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('paused');
    const paused = await stepOf();
    await page.waitForTimeout(1500);
    expect(await stepOf()).toBe(paused);
    expect(await page.getByTestId('pause').textContent()).toBe('Resume');
    await page.keyboard.press('Space');
    await expect.poll(phaseOf).toBe('training');
    await waitForStep(paused + 1);

    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
    await noErrors();

    // The model as a Hugging Face folder in a zip: GPT-2 names and shapes, and TRL's value head.
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 60_000 }),
      page.getByTestId('download-weights').click(),
    ]);
    const zip = unzipSync(readFileSync(await download.path()));
    const names = Object.keys(zip);
    const folder = names[0].split('/')[0];
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
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('download-csv').click(),
    ]);
    const lines = readFileSync(await csv.path(), 'utf8')
      .trim()
      .split('\n');
    expect(lines[0].split(',').slice(0, 7)).toEqual([
      'step',
      'target',
      'step_seconds',
      'tokens',
      'gpu_bytes',
      'env/reward_mean',
      'env/reward_std',
    ]);
    expect(lines.length - 1).toBe(await stepOf());

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-training.png' });
    await page.screenshot({ path: 'test-results/studio-training-full.png', fullPage: true });
    // The layout holds at both sizes: nothing wider than the window.
    for (const [width, height] of [
      [1920, 1080],
      [1280, 800],
    ]) {
      await page.setViewportSize({ width, height });
      await page.waitForTimeout(300); // ResponsiveContainer re-measures on resize
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `horizontal overflow at ${width}x${height}`).toBeLessThanOrEqual(0);
      if (width === 1920) await page.screenshot({ path: 'test-results/studio-training-1920.png' });
    }
    console.log(
      `[e2e] trained, flipped, paused, resumed, downloaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  test('compares the reference and the policy on a typed prompt', async () => {
    await page.getByTestId('compare').locator('input').first().fill('The film was');
    await page.getByTestId('compare-run').click();
    const result = page.getByTestId('compare-result');
    await result.waitFor({ timeout: 60_000 });
    expect(await result.textContent()).toMatch(/Reference \(start\).*negative reward.*Policy \(step \d+\)/s);
  });

  test('after a reload, offers the OPFS checkpoint and resumes from it', async () => {
    const stopped = await stepOf();
    // The stop's checkpoint is written after the run stops.
    await expect
      .poll(() => page.getByTestId('status-checkpoint').textContent(), { timeout: 30_000 })
      .toContain(`step ${stopped},`);
    await page.reload();
    const offer = page.getByTestId('resume-offer');
    await offer.waitFor({ timeout: 30_000 });
    expect(await offer.textContent()).toContain(`step ${stopped} of 100`);
    await page.getByTestId('resume-checkpoint').click();
    // The history comes back with the run, then new steps follow it.
    await expect.poll(stepOf, { timeout: 30_000 }).toBe(stopped);
    expect(await pointsOf('chart-reward')).toBe(stopped);
    await expect
      .poll(() => page.getByTestId('target-sentiment').getAttribute('data-target'))
      .toBe('negative');
    await waitForStep(stopped + 1);
  });

  test('a lost GPU device says so and resumes from the last checkpoint', async () => {
    // checkpoint_every 2: wait for a checkpoint of this resumed run, then lose the device.
    const saved = await stepOf();
    await expect
      .poll(
        async () =>
          Number((await page.getByTestId('status-checkpoint').textContent())?.match(/step (\d+)/)?.[1]),
        {
          timeout: 60_000,
        },
      )
      .toBeGreaterThanOrEqual(saved);
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
  });

  test('scores with our WebGPU DistilBERT when the link asks for that engine', async () => {
    const link = new URLSearchParams(LINK);
    link.set('reward_engine', 'webgpu');
    link.set('checkpoint_every', '0');
    await page.goto(`${inject('baseURL')}?${link}`);
    const train = page.getByTestId('train');
    await expect.poll(() => train.isEnabled(), { timeout: 60_000 }).toBe(true);
    await train.click();
    await waitForStep(1);
    expect(await page.getByTestId('run-info').textContent()).toContain('DistilBERT on our WebGPU kernels');
    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
  });

  // The built-in demo is the default preset: its files load and it takes a step (smaller batches here).
  test.skipIf(!existsSync(DEMO_FILE))('the built-in mini-IMDb demo loads and trains', async () => {
    await page.goto(`${inject('baseURL')}?batch_size=4&mini_batch_size=2&ppo_epochs=1&checkpoint_every=0`);
    const train = page.getByTestId('train');
    await expect.poll(() => train.isEnabled(), { timeout: 60_000 }).toBe(true);
    await train.click();
    await waitForStep(1);
    const info = (await page.getByTestId('run-info').textContent()) ?? '';
    console.log(`[e2e] demo: ${info}`);
    expect(info).toContain('models/mini-imdb/policy');
    expect(info).toContain('NEGATIVE/POSITIVE');
    await page.getByTestId('stop').click();
    await expect.poll(phaseOf, { timeout: 60_000 }).toBe('stopped');
  });
});
