/**
 * The studio's memory estimate before Train: the demo fits; TRL's gpt2-imdb preset (GPT-2 124M,
 * batch 128, mini-batch 128) on an assumed 4 GB GPU does not, and the panel names the mini_batch_size
 * that fits (src/model/memory.ts: 4.57 GiB at 128 rows, under 4 GiB at 64); with LoRA switched on
 * (r 16 on c_attn, c_proj, c_fc) the estimate is the LoRA step's (src/model/memory-lora.ts) and fits.
 */
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';

let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(inject('baseURL'));
});

afterAll(async () => {
  await browser?.close();
});

describe('memory estimate in the settings', () => {
  test('the demo fits; the TRL preset on a 4 GB GPU says what to change', async () => {
    const total = page.getByTestId('memory-total');
    await total.waitFor({ timeout: 60_000 });
    expect(await total.textContent()).toMatch(/GPU memory for this run .*: \d+(\.\d+)? MiB/);
    expect(await page.getByTestId('memory-problems').count()).toBe(0);

    await page.selectOption('#preset', 'gpt2-imdb');
    await page.selectOption('#memory-device', '4');
    expect(await total.textContent()).toMatch(/4\.57 GiB/);
    const problems = await page.getByTestId('memory-problems').textContent();
    expect(problems).toMatch(/will not fit: it needs 4\.57 GiB in all/);
    expect(problems).toMatch(/Set mini_batch_size to 64/);

    await page.selectOption('#memory-device', '8');
    expect(await page.getByTestId('memory-problems').count()).toBe(0);

    // LoRA on: the frozen base is shared with the reference; gradients and Adam for the adapters only.
    await page.selectOption('#memory-device', '4');
    const form = page.getByTestId('method-settings');
    await form.getByLabel('use_peft').check();
    await form.locator('input[name="lora_target_modules"]').fill('c_attn,c_proj,c_fc');
    await expect.poll(() => total.textContent()).toMatch(/LoRA r 16/);
    console.log(`[e2e] ${await total.textContent()}`);
    expect(await total.textContent()).toMatch(/: 1\.03 GiB/);
    expect(await page.getByTestId('memory-problems').count()).toBe(0);
  });
});
