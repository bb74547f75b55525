/**
 * The studio's memory estimate before Train: the demo fits; TRL's gpt2-imdb preset (GPT-2 124M,
 * batch 128, mini-batch 128) runs its mini-batches in passes of 13 rows (src/model/memory.ts
 * autoRowsPerPass: 2.87 GiB) and fits an assumed 4 GB GPU but not a 2 GB one, where the panel
 * proposes LoRA; with LoRA switched on (r 16 on c_attn, c_proj, c_fc) the estimate is the LoRA
 * step's (src/model/memory-lora.ts, 1.03 GiB) and fits.
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
  test('the demo fits; the TRL preset fits 4 GB in passes of 13 rows, not 2 GB; LoRA fits 2 GB', async () => {
    const total = page.getByTestId('memory-total');
    await total.waitFor({ timeout: 60_000 });
    expect(await total.textContent()).toMatch(/GPU memory for this run .*: \d+(\.\d+)? MiB/);
    expect(await page.getByTestId('memory-problems').count()).toBe(0);

    // TRL's preset (124M, batch 128, mini-batch 128): mini-batches run in passes of 13 rows, 2.87 GiB.
    await page.selectOption('#preset', 'gpt2-imdb');
    await page.selectOption('#memory-device', '4');
    expect(await total.textContent()).toMatch(/2\.87 GiB/);
    expect(await total.textContent()).toMatch(/passes of 13 rows/);
    expect(await page.getByTestId('memory-problems').count()).toBe(0);
    // On a 2 GB GPU it does not fit, and the panel says what to change.
    await page.selectOption('#memory-device', '2');
    const problems = await page.getByTestId('memory-problems').textContent();
    expect(problems).toMatch(/will not fit: it needs 2\.87 GiB in all/);
    expect(problems).toMatch(/switch LoRA on/);

    // LoRA on: the frozen base is shared with the reference; gradients and Adam for the adapters only.
    const form = page.getByTestId('method-settings');
    await form.getByLabel('use_peft').check();
    await form.locator('input[name="lora_target_modules"]').fill('c_attn,c_proj,c_fc');
    await expect.poll(() => total.textContent()).toMatch(/LoRA r 16/);
    console.log(`[e2e] ${await total.textContent()}`);
    expect(await total.textContent()).toMatch(/: 1\.03 GiB/);
    expect(await page.getByTestId('memory-problems').count()).toBe(0);
  });
});
