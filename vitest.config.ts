import { defineConfig } from 'vitest/config';
import { wgsl } from './vite.config.ts';
import { swiftshaderEnvIfNoGpu } from './scripts/swiftshader.mjs';

// WebGPU in Node comes from Dawn (`webgpu` package). With no GPU, Dawn runs on SwiftShader, whose
// Vulkan loader and ICD must be in the environment before the test processes start, so they are set
// here, in the parent, and inherited by the forked workers.
Object.assign(process.env, swiftshaderEnvIfNoGpu());

export default defineConfig({
  plugins: [wgsl()],
  test: {
    // dawn.node is not safe to load in several worker_threads; forks give each file its own process.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          globalSetup: ['test/node/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          globalSetup: ['test/browser/global-setup.ts'],
        },
      },
    ],
  },
});
