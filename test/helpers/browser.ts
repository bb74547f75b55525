/**
 * Headless Chromium for the browser tests, with WebGPU on SwiftShader. No browser is downloaded:
 * CHROMIUM_PATH (e.g. Debian's /usr/bin/chromium) if set, else the Chromium that the npm package
 * @sparticuz/chromium ships (see ../shared/TESTING.md).
 */
import chromium from '@sparticuz/chromium';
import { chromium as playwright, type Browser, type BrowserContext } from 'playwright-core';

const WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/** The Chromium to run and its flags: CHROMIUM_PATH's, else @sparticuz/chromium's with WebGPU on. */
async function chromiumLaunch(): Promise<{ executablePath: string; args: string[] }> {
  const system = process.env.CHROMIUM_PATH;
  if (system) return { executablePath: system, args: [...WEBGPU_FLAGS, '--enable-features=Vulkan'] };
  // The package's own flags go first: without them requestAdapter() returned null in a Web Worker.
  // Its --enable-features is merged with ours, since Chromium keeps only the last such flag.
  const own = chromium.args.filter((a) => !a.startsWith('--enable-features=') && !a.startsWith('--headless'));
  const features = chromium.args
    .filter((a) => a.startsWith('--enable-features='))
    .flatMap((a) => a.slice('--enable-features='.length).split(','));
  return {
    executablePath: await chromium.executablePath(),
    args: [...own, ...WEBGPU_FLAGS, `--enable-features=${[...features, 'Vulkan'].join(',')}`],
  };
}

/** A fresh browser with an off-the-record profile (small storage quota). */
export async function launchChromium(): Promise<Browser> {
  return playwright.launch(await chromiumLaunch());
}

/** A browser on a profile kept in `userDataDir`: a normal window's storage quota (a share of the disk). */
export async function launchChromiumProfile(
  userDataDir: string,
  options: { viewport: { width: number; height: number } },
): Promise<BrowserContext> {
  return playwright.launchPersistentContext(userDataDir, {
    ...(await chromiumLaunch()),
    ...options,
    acceptDownloads: true,
  });
}
