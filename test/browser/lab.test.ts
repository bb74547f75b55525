/**
 * The studio as a lab, end to end in headless Chromium on SwiftShader with the built-in demo
 * (public/models/mini-imdb): 3 PPO steps, then the Evaluate panel's before/after table with a number
 * in every reward and summary cell; then feedback mode: 6 clicks give 6 pairs, whose JSONL download
 * parses with prompt, chosen and rejected; then "DPO on my choices" runs 2 DPO updates on them; then
 * 3 PPO steps toward negative. The runs list holds the three runs with their trained models (OPFS),
 * overlays their curves (one chart per stat: both PPO rewards on one), evaluates the three policies
 * side by side against the reference, deletes one (its weights too), and after a reload evaluates a
 * kept one again.
 * Screenshots of each panel go to test-results/lab-*.png.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { openStudioPage, studioPage } from '../helpers/studio-page.ts';

let browser: Browser;
let page: Page;

/** The demo's PPO with batch_size 4 (mini_batch_size 2, one epoch): 12 samples are 3 PPO steps. */
const LINK = new URLSearchParams({
  checkpoint_every: '0',
  batch_size: '4',
  mini_batch_size: '2',
  ppo_epochs: '1',
  steps: '12',
});

const { noErrors, until, waitForPhase, startTraining } = studioPage(() => page);
const NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/;

beforeAll(async () => {
  browser = await launchChromium();
  page = await openStudioPage(browser, `${inject('baseURL')}?${LINK}`);
  mkdirSync('test-results', { recursive: true });
});

afterAll(async () => {
  await browser?.close();
});

/** How many runs have weights kept in OPFS (workers/run-weights.ts's folder). */
async function keptWeights(): Promise<number> {
  return page.evaluate(async () => {
    const opfs = await navigator.storage.getDirectory();
    const dir = await opfs.getDirectoryHandle('rlhf-studio-runs').catch(() => null);
    if (!dir) return 0;
    const names: string[] = [];
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names.length;
  });
}

describe('the studio as a lab', () => {
  test('3 PPO steps, then the Evaluate table with a number in every cell', async () => {
    const t0 = Date.now();
    await startTraining();
    await waitForPhase('finished', 420_000);
    console.log(`[e2e] 3 PPO steps after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const panel = page.getByTestId('evaluate');
    await panel.getByLabel('queries').fill('4');
    await panel.getByTestId('evaluate-run').click();
    const rows = panel.getByTestId('evaluate-table').locator('tbody tr');
    await until('the evaluation', async () => (await rows.count()) === 4, 240_000);
    console.log(`[e2e] evaluated after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Every row: query, reference response, its reward, policy response, its reward.
    for (let i = 0; i < 4; i++) {
      const cells = await rows.nth(i).locator('td').allTextContents();
      expect(cells).toHaveLength(5);
      expect(cells[0].length).toBeGreaterThan(0);
      expect(cells[2]).toMatch(NUMBER);
      expect(cells[4]).toMatch(NUMBER);
    }
    const summary = panel.getByTestId('evaluate-summary').locator('tbody tr');
    expect(await summary.count()).toBe(2);
    for (let i = 0; i < 2; i++) {
      const cells = await summary.nth(i).locator('td').allTextContents();
      expect(cells[0]).toMatch(i === 0 ? /reference/ : /policy \(step 3\)/);
      for (const c of cells.slice(1)) expect(c).toMatch(NUMBER);
    }
    // The reference's KL to itself is 0 by definition.
    expect(Number((await summary.nth(0).locator('td').allTextContents())[4])).toBe(0);
    await panel.screenshot({ path: 'test-results/lab-evaluate.png' });

    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      panel.getByTestId('evaluate-csv').click(),
    ]);
    const lines = readFileSync(await csv.path(), 'utf8').split('\n');
    expect(lines[0]).toMatch(/^query,max_new_tokens,reference response,reference reward/);
  }, 720_000);

  test('6 feedback clicks give 6 pairs that download as prompt/chosen/rejected', async () => {
    const panel = page.getByTestId('feedback');
    const count = panel.getByTestId('feedback-count');
    expect(await count.textContent()).toMatch(/0 pairs, 0 ties/);
    await panel.getByTestId('feedback-start').click();
    for (let i = 0; i < 6; i++) {
      const pick = panel.getByTestId(`feedback-pick-${(i % 2) + 1}`);
      await pick.waitFor({ timeout: 120_000 });
      if (i === 5) await panel.screenshot({ path: 'test-results/lab-feedback.png' });
      // Half by mouse, half by the keys 1 and 2.
      if (i < 3) await pick.click();
      else await page.keyboard.press(String((i % 2) + 1));
      await expect.poll(() => count.textContent()).toMatch(new RegExp(`^ · ${i + 1} pairs`));
      // From the third pair on, two samples of the policy instead of policy vs reference.
      if (i === 1) await panel.getByTestId('feedback-against').getByLabel('two policy samples').check();
    }
    const origins = await page.evaluate(() =>
      (JSON.parse(localStorage.getItem('rlhf-studio-feedback') ?? '[]') as { origins: string[] }[]).map((r) =>
        [...r.origins].sort().join('+'),
      ),
    );
    expect(origins.slice(0, 2)).toEqual(['policy+reference', 'policy+reference']);
    expect(origins.slice(3)).toEqual(['policy+policy', 'policy+policy', 'policy+policy']);
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      panel.getByTestId('feedback-download').click(),
    ]);
    const pairs = readFileSync(await file.path(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(pairs).toHaveLength(6);
    for (const p of pairs) {
      expect(Object.keys(p).sort()).toEqual(['chosen', 'prompt', 'rejected']);
      expect(p.prompt).toBe('This movie was');
    }
  }, 600_000);

  test('DPO on my choices runs 2 updates', async () => {
    // The DPO form's fields are the run's: 2 updates of 2 pairs.
    const method = page.getByTestId('method-switch');
    await method.getByLabel('DPO', { exact: true }).check();
    const form = page.getByTestId('method-settings');
    await form.locator('input[name="max_steps"]').fill('2');
    await form.locator('input[name="per_device_train_batch_size"]').fill('2');
    await expect.poll(() => form.locator('.field-error').count()).toBe(0);
    await method.getByLabel('PPO', { exact: true }).check();
    await page.getByTestId('feedback').getByTestId('feedback-dpo').click();
    await waitForPhase('finished', 420_000);
    expect(Number(await page.getByTestId('pref-step-counter').getAttribute('data-step'))).toBe(2);
    await page.screenshot({ path: 'test-results/lab-dpo.png', fullPage: true });
  }, 600_000);

  test('the runs list keeps the runs with their models, overlays them, evaluates them side by side', async () => {
    const panel = page.getByTestId('runs');
    const rows = panel.getByTestId('run-row');
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(2);
    expect(await rows.nth(0).textContent()).toMatch(/PPO positive, 3 steps/);
    expect(await rows.nth(1).textContent()).toMatch(/DPO, 2 steps/);

    // A pessimistic policy beside the happy one: 3 PPO steps toward negative.
    await page.getByTestId('method-switch').getByLabel('PPO', { exact: true }).check();
    const target = page.getByTestId('target-sentiment');
    await target.click();
    await expect.poll(() => target.getAttribute('data-target')).toBe('negative');
    await startTraining();
    await waitForPhase('finished', 420_000);
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(3);
    expect(await rows.nth(2).textContent()).toMatch(/PPO negative, 3 steps/);
    // Back to the positive reward for the evaluation (the happy / pessimistic / reference table).
    await target.click();
    await expect.poll(() => target.getAttribute('data-target')).toBe('positive');

    // Each run's trained model is kept with it (a whole GPT-2 folder in OPFS).
    const models = panel.getByTestId('run-weights');
    await expect
      .poll(() => models.allTextContents(), { timeout: 60_000 })
      .toEqual(['policy', 'policy', 'policy']);
    expect(await panel.getByTestId('runs-usage').textContent()).toMatch(/storage in use .*B of/);
    expect(await keptWeights()).toBe(3);
    for (let i = 0; i < 3; i++) await rows.nth(i).locator('input[type="checkbox"]').check();
    // One chart per stat: the two PPO runs' env/reward_mean overlaid, DPO's loss.
    const overlays = panel.getByTestId('runs-overlay');
    expect(await overlays.count()).toBe(2);
    expect(
      await overlays.evaluateAll((fs) =>
        fs.map((f) => [f.getAttribute('data-stat'), f.getAttribute('data-lines')]),
      ),
    ).toEqual([
      ['env/reward_mean', '2'],
      ['loss', '1'],
    ]);
    expect(await panel.locator('polyline').count()).toBe(3);

    // The three policies side by side against the reference (the form's demo policy), same queries.
    await panel.getByLabel('side-by-side queries').fill('4');
    await panel.getByTestId('evaluate-runs').click();
    const evaluate = page.getByTestId('evaluate');
    const summary = evaluate.getByTestId('evaluate-summary').locator('tbody tr');
    await until('the side-by-side evaluation', async () => (await summary.count()) === 4, 300_000);
    expect(await evaluate.getByTestId('evaluate-title').textContent()).toMatch(
      /PPO positive, 3 steps · DPO, 2 steps · PPO negative, 3 steps vs the reference, reward toward positive/,
    );
    const names = await summary.evaluateAll((trs) => trs.map((tr) => tr.querySelector('td')?.textContent));
    expect(names).toEqual(['reference', 'PPO positive, 3 steps', 'DPO, 2 steps', 'PPO negative, 3 steps']);
    for (let i = 0; i < 4; i++) {
      const cells = await summary.nth(i).locator('td').allTextContents();
      for (const c of cells.slice(1)) expect(c).toMatch(NUMBER);
    }
    const table = evaluate.getByTestId('evaluate-table').locator('tbody tr');
    expect(await table.count()).toBe(4);
    for (let i = 0; i < 4; i++) {
      const cells = await table.nth(i).locator('td').allTextContents();
      expect(cells).toHaveLength(9);
      for (const k of [2, 4, 6, 8]) expect(cells[k]).toMatch(NUMBER);
    }
    await panel.screenshot({ path: 'test-results/lab-runs.png' });
    await evaluate.screenshot({ path: 'test-results/lab-side-by-side.png' });

    // Delete removes the run from the list (read back from IndexedDB) and its weights from OPFS.
    await rows.nth(1).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => rows.count()).toBe(2);
    await expect.poll(keptWeights).toBe(2);

    // After a reload the kept runs are still there, with their models, and evaluate again.
    await page.reload();
    await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(2);
    expect(await models.allTextContents()).toEqual(['policy', 'policy']);
    await rows.nth(0).locator('input[type="checkbox"]').check();
    await panel.getByLabel('side-by-side queries').fill('2');
    const button = panel.getByTestId('evaluate-runs');
    await expect.poll(() => button.isEnabled(), { timeout: 60_000 }).toBe(true);
    await button.click();
    await until('the evaluation after a reload', async () => (await summary.count()) === 2, 300_000);
    expect(await summary.nth(1).locator('td').first().textContent()).toBe('PPO positive, 3 steps');
    await noErrors();
  }, 900_000);
});
