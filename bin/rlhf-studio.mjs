#!/usr/bin/env node
// The rlhf-studio CLI. The engine is bundled into dist-cli/cli.mjs (npm install builds it; so does
// `npm run build:cli`). With no GPU driver on the machine, Dawn needs SwiftShader's Vulkan loader in
// the environment before the process starts, so this shim re-executes itself with it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist-cli', 'cli.mjs');

if (!process.env.RLHF_STUDIO_CHILD) {
  const { swiftshaderEnvIfNoGpu } = await import('../scripts/swiftshader.mjs');
  let env = {};
  try {
    env = swiftshaderEnvIfNoGpu();
  } catch (e) {
    console.error(`rlhf-studio: no GPU driver found and SwiftShader is unavailable: ${e.message}`);
  }
  if (Object.keys(env).length > 0) {
    const r = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      {
        stdio: 'inherit',
        env: { ...process.env, ...env, RLHF_STUDIO_CHILD: '1' },
      },
    );
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(cli)) {
  console.error(
    'rlhf-studio: dist-cli/cli.mjs is missing; run `npm run build:cli` (npm install does it too)',
  );
  process.exit(1);
}
const { main } = await import(cli);
// Dawn keeps the event loop alive; exit explicitly once the command is done.
process.exit(await main(process.argv.slice(2)));
