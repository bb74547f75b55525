import { defineConfig } from 'vitest/config';
import { wgsl } from './vite.config.ts';

// npm run check:scale: GPT-2 124M in headless Chromium (test/scale/), outside npm test.
export default defineConfig({
  plugins: [wgsl()],
  test: {
    pool: 'forks',
    include: ['test/scale/**/*.check.ts'],
    globalSetup: ['test/scale/global-setup.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 900_000,
    reporters: ['default'],
  },
});
