// Bundles the CLI (src/cli/main.ts and the engine it imports) into dist-cli/cli.mjs with esbuild.
// WGSL files are loaded as text, the same contract as the `wgsl` Vite plugin.
// For machines without npm, `npm run build:portable` (scripts/build-portable.mjs) writes a folder
// with the bundled engine, dawn.node and the native modules it needs.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(root, 'dist-cli/cli.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  loader: { '.wgsl': 'text' },
  packages: 'external',
  logLevel: 'warning',
});
