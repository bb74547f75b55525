// Bundles the CLI (src/cli/main.ts and the engine it imports) into dist-cli/cli.mjs with esbuild.
// WGSL files are loaded as text, the same contract as the `wgsl` Vite plugin.
// --standalone also bundles node_modules (all but dawn.node), for machines without npm.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const standalone = process.argv.includes('--standalone');

await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(root, standalone ? 'dist-cli/cli-standalone.mjs' : 'dist-cli/cli.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: !standalone,
  loader: { '.wgsl': 'text' },
  packages: standalone ? undefined : 'external',
  external: standalone ? ['*.node'] : undefined,
  banner: standalone
    ? { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
    : undefined,
  logLevel: 'warning',
});
