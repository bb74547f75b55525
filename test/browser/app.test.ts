import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';

let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[page] ${m.text()}`);
  });
  await page.goto(inject('baseURL'));
});

afterAll(async () => {
  await browser?.close();
});

describe('the built studio in headless Chromium', () => {
  test('shows the WebGPU adapter that its engine worker opened', async () => {
    const name = page.getByTestId('adapter-name');
    await name.waitFor({ timeout: 60_000 });
    const text = (await name.textContent()) ?? '';
    console.log(`[webgpu] chromium worker adapter: ${text}`);
    expect(text.toLowerCase()).toContain('swiftshader');
    // The limits table lists the adapter's own maxima, e.g. maxStorageBufferBindingSize above 128 MiB.
    await expect
      .poll(() => page.locator('table.limits').textContent())
      .toContain('maxStorageBufferBindingSize');
  });

  test('runs a WGSL kernel in the Web Worker and matches the CPU reference', async () => {
    await page.getByTestId('selftest').click();
    const result = page.getByTestId('selftest-result');
    await result.waitFor({ timeout: 60_000 });
    const text = (await result.textContent()) ?? '';
    console.log(`[webgpu] chromium worker self-test: ${text}`);
    expect(text).toMatch(/^PASS: matmul_forward_naive vs CPU reference/);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/studio-adapter.png', fullPage: true });
  });
});

describe('a browser without WebGPU', () => {
  test('says what to do instead of failing silently', async () => {
    const bare = await browser.newPage();
    await bare.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }),
    );
    await bare.goto(inject('baseURL'));
    const note = bare.getByTestId('no-webgpu');
    await note.waitFor({ timeout: 30_000 });
    expect(await note.textContent()).toContain('--enable-unsafe-webgpu');
    await bare.close();
  });
});
