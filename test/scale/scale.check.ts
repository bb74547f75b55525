/**
 * npm run check:scale (not part of npm test: minutes on SwiftShader). The studio's TRL preset shape,
 * GPT-2 124M with random weights served by the test (test/scale/global-setup.ts), in headless
 * Chromium: one PPO step at batch 8 (mini-batch 8, one epoch), the memory estimate before Train next
 * to what the engine allocated, a checkpoint of that size in the origin private file system (with the
 * quota the browser gave), and the fine-tuned folder downloaded as .zip, with the browser's resident
 * memory sampled meanwhile to show the ~500 MB weights are not held several times over.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, expect, inject, test } from 'vitest';
import { GPT2_SMALL } from '../../src/model/config.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { launchChromiumProfile } from '../helpers/browser.ts';

let browser: BrowserContext;
let page: Page;
const MiB = 2 ** 20;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;

afterAll(async () => {
  await browser?.close();
});

/** Resident memory of every Chromium process (the test's browser is the only one), in bytes. */
function chromiumRss(): number {
  let total = 0;
  const pids = execFileSync('sh', ['-c', "pgrep -f 'chromium|headless_shell' || true"], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  for (const pid of pids) {
    try {
      const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // the process ended
    }
  }
  return total;
}

const phaseOf = async () => (await page.getByTestId('phase').textContent()) ?? '';

test('GPT-2 124M in the studio: one PPO step, estimate vs allocated, OPFS checkpoint, .zip download', async () => {
  const t0 = Date.now();
  // A profile on disk, as a user's normal window has: its storage quota is a share of the disk (an
  // off-the-record profile's is too small for a 124M checkpoint; the studio then says so).
  browser = await launchChromiumProfile(mkdtempSync(join(tmpdir(), 'scale-profile-')), {
    viewport: { width: 1280, height: 900 },
  });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.log(`[page ${m.type()}] ${m.text()}`);
  });
  const link = new URLSearchParams({
    policy: '/scale/gpt2',
    reward: '/e2e/reward',
    prompts: '/e2e/prompts.txt',
    batch_size: '8',
    mini_batch_size: '8',
    ppo_epochs: '1',
    steps: '8',
    checkpoint_every: '1',
  });
  await page.goto(`${inject('baseURL')}?${link}`);
  const estimate = page.getByTestId('memory-total');
  await estimate.waitFor({ timeout: 60_000 });
  const estimated = Number(await estimate.getAttribute('data-bytes'));
  console.log(`[scale] estimate before Train: ${await estimate.textContent()}`);

  const train = page.getByTestId('train');
  await expect.poll(() => train.isEnabled(), { timeout: 120_000 }).toBe(true);
  await train.click();
  const end = Date.now() + 3_600_000;
  while ((await phaseOf()) !== 'finished') {
    const errors = page.getByTestId('error');
    if (await errors.count()) throw new Error(`the studio shows an error: ${await errors.textContent()}`);
    if (Date.now() > end) throw new Error(`phase ${await phaseOf()} after an hour`);
    await page.waitForTimeout(2000);
  }
  const tStep = Date.now();
  const memory = page.getByTestId('status-memory');
  const allocated = Number(await memory.getAttribute('data-bytes'));
  const peak = Number(await memory.getAttribute('data-peak-bytes'));
  console.log(
    `[scale] 1 PPO step of GPT-2 124M (batch 8) in ${((tStep - t0) / 1000).toFixed(0)} s with loading; ` +
      `our allocations: ${mib(allocated)} after the step, peak ${mib(peak)}; estimate ${mib(estimated)} ` +
      `(the estimate is for the longest rows; this step's rows were shorter or equal)`,
  );
  expect(peak).toBeGreaterThan(0);
  expect(peak).toBeLessThanOrEqual(estimated);

  // The checkpoint: reference, policy, Adam moments in OPFS.
  const saved = page.getByTestId('status-checkpoint');
  await expect.poll(() => saved.textContent(), { timeout: 600_000 }).toMatch(/step 1/);
  const quota = await page.evaluate(async () => {
    const e = await navigator.storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0, persisted: await navigator.storage.persisted() };
  });
  console.log(
    `[scale] checkpoint: ${await saved.textContent()}; storage in use ${mib(quota.usage)} of a quota of ` +
      `${mib(quota.quota)} (persisted: ${quota.persisted})`,
  );
  const params = gpt2ParamTable(GPT2_SMALL, { valueHead: true }).total;
  // reference + policy + two Adam moments, 4 bytes each, at least.
  expect(quota.usage).toBeGreaterThan(3.9 * params * 4);

  // The .zip download, the browser's resident memory sampled meanwhile.
  const before = chromiumRss();
  let high = before;
  const sampler = setInterval(() => (high = Math.max(high, chromiumRss())), 100);
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 1_800_000 }),
    page.getByTestId('download-weights').click(),
  ]);
  const path = await download.path();
  clearInterval(sampler);
  const size = statSync(path).size;
  console.log(
    `[scale] model .zip ${mib(size)} in ${((Date.now() - tStep) / 1000).toFixed(0)} s; Chromium resident ` +
      `memory ${mib(before)} before, ${mib(high)} at most while exporting and zipping ` +
      `(+${mib(high - before)}, ${((high - before) / size).toFixed(2)}x the zip)`,
  );
  const zip = unzipSync(readFileSync(path));
  const folder = Object.keys(zip)[0].split('/')[0];
  const { tensors } = readSafetensors(zip[`${folder}/model.safetensors`]);
  expect(tensors.get('transformer.h.11.mlp.c_fc.weight')?.shape).toEqual([768, 3072]);
  expect(tensors.get('v_head.summary.weight')?.shape).toEqual([1, 768]);
  expect(size).toBeGreaterThan(params * 4);
}, 3_600_000);
