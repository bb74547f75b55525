#!/usr/bin/env node
// The rlhf-studio CLI. The engine is bundled into dist-cli/cli.mjs (npm install builds it; so does
// `npm run build:cli`). With no GPU driver on the machine, Dawn needs SwiftShader's Vulkan loader in
// the environment before the process starts, so this shim re-executes itself with it.
import { spawn } from 'node:child_process';
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
    // The child runs in its own process group, so a terminal's Ctrl-C reaches it once, through
    // this process, exactly as a `kill -INT` of this process does (train saves on the first, quits
    // on the second).
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      {
        stdio: 'inherit',
        detached: true,
        env: { ...process.env, ...env, RLHF_STUDIO_CHILD: '1' },
      },
    );
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGKILL: 9 };
    const code = await new Promise((resolve) =>
      child.on('exit', (status, signal) => resolve(status ?? 128 + (SIGNALS[signal] ?? 1))),
    );
    process.exit(code);
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
