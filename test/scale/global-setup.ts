/**
 * npm run check:scale's server: the built app with the end-to-end fixtures plus GPT-2 124M (the
 * studio's TRL preset shape, GPT2_SMALL) with random weights at /scale/gpt2/, written once into the
 * served folder (about 500 MB).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { GPT2_SMALL } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { writeE2EFixtures } from '../browser/e2e-fixtures.ts';
import { serveApp } from '../browser/global-setup.ts';

export default function setup(project: TestProject) {
  return serveApp(project, (dir) => {
    writeE2EFixtures(dir);
    const out = join(dir, 'scale/gpt2');
    mkdirSync(out, { recursive: true });
    for (const [name, bytes] of exportHFFolder(GPT2_SMALL, initGPT2Params(GPT2_SMALL, { seed: 1 })))
      writeFileSync(join(out, name), bytes);
  });
}
