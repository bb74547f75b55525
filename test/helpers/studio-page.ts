/**
 * What the browser tests read from and do to the studio page, once: its phase, step and chart
 * counters, the error line, Train, downloads (a zip unpacked, the metrics CSV as rows) and the
 * pause / reload / resume-from-checkpoint round trip.
 *
 * The helpers take the page through a getter because test files open a fresh browser per test:
 *
 *   let page: Page;
 *   const { phaseOf, noErrors, downloadZip } = studioPage(() => page);
 */
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';

/** A page of `browser` at `url` whose console errors, warnings and uncaught errors go to the test log. */
export async function openStudioPage(browser: Browser, url: string, height = 900): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height }, acceptDownloads: true });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.log(`[page ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(url);
  return page;
}

/** Columns that change from run to run of the same settings: wall clock and memory. */
const clockColumn = (k: string) => k.startsWith('time/') || k === 'step_seconds' || k === 'gpu_bytes';

export function studioPage(getPage: () => Page) {
  const phaseOf = async () => (await getPage().getByTestId('phase').textContent()) ?? '';
  const stepOf = async () => Number(await getPage().getByTestId('step-counter').getAttribute('data-step'));
  const pointsOf = async (id: string) => Number(await getPage().getByTestId(id).getAttribute('data-points'));
  /** The step of the newest checkpoint the status line reports, -1 before any. */
  const savedStepOf = async () =>
    Number((await getPage().getByTestId('status-checkpoint').textContent())?.match(/step (\d+)/)?.[1] ?? -1);

  /** Fails fast with the studio's own error message when one appears. */
  async function noErrors(): Promise<void> {
    const errors = getPage().getByTestId('error');
    if (await errors.count()) throw new Error(`the studio shows an error: ${await errors.textContent()}`);
  }

  /** Polls until `done` holds, failing at once on a studio error. */
  async function until(what: string, done: () => Promise<boolean>, timeout: number): Promise<void> {
    const end = Date.now() + timeout;
    while (!(await done())) {
      await noErrors();
      if (Date.now() > end) throw new Error(`${what}: not after ${timeout} ms (phase ${await phaseOf()})`);
      await getPage().waitForTimeout(250);
    }
  }

  const waitForPhase = (phase: string, timeout = 300_000) =>
    until(`phase ${phase}`, async () => (await phaseOf()) === phase, timeout);

  /** Polls the step counter until it reaches `atLeast`; returns the step it read. */
  async function waitForStep(atLeast: number, timeout = 100_000): Promise<number> {
    await until(`step ${atLeast}`, async () => (await stepOf()) >= atLeast, timeout);
    return stepOf();
  }

  /** Presses Train once the form allows it. */
  async function startTraining(): Promise<void> {
    const train = getPage().getByTestId('train');
    await expect.poll(() => train.isEnabled(), { timeout: 60_000 }).toBe(true);
    await train.click();
  }

  /** Clicks a download button and unzips what comes: the files by path, and the zip's top folder. */
  async function downloadZip(testId: string): Promise<{ zip: Record<string, Uint8Array>; folder: string }> {
    const [download] = await Promise.all([
      getPage().waitForEvent('download', { timeout: 120_000 }),
      getPage().getByTestId(testId).click(),
    ]);
    const zip = unzipSync(readFileSync(await download.path()));
    return { zip, folder: Object.keys(zip)[0].split('/')[0] };
  }

  /** The metrics CSV as rows of column -> text; `withoutClock` drops wall-clock and memory columns. */
  async function downloadCsv({ withoutClock = false } = {}): Promise<Record<string, string>[]> {
    const [csv] = await Promise.all([
      getPage().waitForEvent('download'),
      getPage().getByTestId('download-csv').click(),
    ]);
    const [header, ...lines] = readFileSync(await csv.path(), 'utf8')
      .trim()
      .split('\n');
    const names = header.split(',');
    return lines.map((l) =>
      Object.fromEntries(
        l
          .split(',')
          .map((x, i) => [names[i], x])
          .filter(([k]) => !(withoutClock && clockColumn(k))),
      ),
    );
  }

  /**
   * Starts a run of `steps` steps, pauses it after its first step or two, waits for that step's
   * checkpoint, reloads the page and takes the resume offer; returns the step it paused at.
   */
  async function pauseReloadResume(steps: number): Promise<number> {
    const page = getPage();
    await startTraining();
    await waitForStep(1, 120_000);
    await page.getByTestId('pause').click();
    await waitForPhase('paused', 120_000);
    const paused = await stepOf();
    expect(paused).toBeLessThan(steps);
    await expect.poll(savedStepOf, { timeout: 30_000 }).toBe(paused);
    await page.reload();
    const offer = page.getByTestId('resume-offer');
    await offer.waitFor({ timeout: 30_000 });
    expect(await offer.textContent()).toContain(`step ${paused} of ${steps}`);
    await page.getByTestId('resume-checkpoint').click();
    return paused;
  }

  return {
    phaseOf,
    stepOf,
    pointsOf,
    savedStepOf,
    noErrors,
    until,
    waitForPhase,
    waitForStep,
    startTraining,
    downloadZip,
    downloadCsv,
    pauseReloadResume,
  };
}
