// Writes a folder that runs the rlhf-studio CLI where only Node (>= 20.19) and a GPU driver exist:
// no npm install, no network. Layout:
//   rlhf-studio, rlhf-studio.mjs        launchers (sh; Node, see build-portable-launcher.mjs)
//   lib/cli.mjs, lib/chunk-*.mjs        the engine bundled by esbuild; transformers.js (ONNX reward
//                                       models only) sits in a chunk loaded on first use
//   lib/dist/<platform>-<arch>/dawn.node  Dawn from the `webgpu` package, where its index.js looks
//   lib/node_modules/onnxruntime-{node,common}  the ONNX reward path's native runtime (this platform)
//   lib/bench_torch.py                  the PyTorch peer of `bench --peer python3`
//   swiftshader/                        Vulkan on the CPU for machines with no GPU (Linux x64)
// sharp (transformers.js' image decoding, never used here) is replaced by a stub that throws.
//
// usage: node scripts/build-portable.mjs [--out DIR] [--current-platform]
//   --current-platform  only this machine's dawn.node (default: every platform the package has)
import { build } from 'esbuild';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { out: { type: 'string' }, 'current-platform': { type: 'boolean' } },
});
const out = resolve(values.out ?? join(root, 'dist-portable'));
const lib = join(out, 'lib');
const require = createRequire(join(root, 'package.json'));
/** A package's folder in node_modules (found from its entry point; `exports` may hide package.json). */
function packageDir(name, from = require) {
  let dir = dirname(from.resolve(name));
  while (!(existsSync(join(dir, 'package.json')) && readJson(join(dir, 'package.json')).name === name)) {
    if (dir === dirname(dir)) throw new Error(`no package.json for ${name}`);
    dir = dirname(dir);
  }
  return dir;
}
function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

rmSync(out, { recursive: true, force: true });
mkdirSync(lib, { recursive: true });

// 1. The bundle. `splitting` keeps dynamic imports (transformers.js, TF.js) in chunks of their own,
//    so their external imports are resolved only when the chunk is loaded.
const sharpStub = {
  name: 'sharp-stub',
  setup(b) {
    b.onResolve({ filter: /^sharp$/ }, () => ({ path: 'sharp', namespace: 'sharp-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'sharp-stub' }, () => ({
      contents:
        'export default function sharp() { throw new Error("image decoding (sharp) is not in the portable rlhf-studio"); }',
      loader: 'js',
    }));
  },
};
await build({
  entryPoints: { cli: join(root, 'src/cli/main.ts') },
  outdir: lib,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  loader: { '.wgsl': 'text' },
  external: ['onnxruntime-node', 'onnxruntime-common', '*.node'],
  plugins: [sharpStub],
  // Bundled CommonJS code calls require(); ESM output has none of its own.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
  },
  logLevel: 'warning',
});

// 2. Dawn: webgpu's index.js loads <its folder>/dist/<platform>-<arch>/dawn.node; bundled, its folder is lib/.
const dawnDist = join(packageDir('webgpu'), 'dist');
const here = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
const platforms = readdirSync(dawnDist).filter((p) => !values['current-platform'] || p === here);
if (!platforms.includes(here)) throw new Error(`the webgpu package has no dawn.node for ${here}`);
for (const p of platforms) cpSync(join(dawnDist, p), join(lib, 'dist', p), { recursive: true });

// 3. onnxruntime-node (its JS, this platform's binaries) and onnxruntime-common, for ONNX reward models.
const ortNode = packageDir('onnxruntime-node');
const ortOut = join(lib, 'node_modules', 'onnxruntime-node');
for (const f of ['package.json', 'dist']) cpSync(join(ortNode, f), join(ortOut, f), { recursive: true });
const ortBin = join('bin', 'napi-v6', process.platform, process.arch);
if (existsSync(join(ortNode, ortBin)))
  cpSync(join(ortNode, ortBin), join(ortOut, ortBin), { recursive: true });
const ortCommon = packageDir('onnxruntime-common', createRequire(join(ortNode, 'package.json')));
cpSync(ortCommon, join(lib, 'node_modules', 'onnxruntime-common'), { recursive: true });

// 4. SwiftShader (Linux x64 only: that is what @sparticuz/chromium ships).
if (process.platform === 'linux' && process.arch === 'x64') {
  const { ensureSwiftShader } = await import('./swiftshader.mjs');
  const ss = ensureSwiftShader();
  mkdirSync(join(out, 'swiftshader'));
  for (const f of ['libvk_swiftshader.so', 'vk_swiftshader_icd.json', 'libvulkan.so.1'])
    copyFileSync(join(ss, f), join(out, 'swiftshader', f));
}

// 5. The PyTorch peer of `bench --peer` (found beside the bundle).
copyFileSync(join(root, 'scripts', 'bench_torch.py'), join(lib, 'bench_torch.py'));

// 6. Launchers.
copyFileSync(join(root, 'scripts', 'build-portable-launcher.mjs'), join(out, 'rlhf-studio.mjs'));
writeFileSync(
  join(out, 'rlhf-studio'),
  '#!/bin/sh\n# rlhf-studio, portable: needs only node (>= 20.19) on PATH.\n' +
    'exec node "$(dirname "$0")/rlhf-studio.mjs" "$@"\n',
);
chmodSync(join(out, 'rlhf-studio'), 0o755);
writeFileSync(
  join(out, 'README.txt'),
  [
    'rlhf-studio, portable: the RLHF Studio engine (WebGPU through Dawn) for Node >= 20.19, no npm needed.',
    '',
    '  ./rlhf-studio info                      the GPU adapter and its limits',
    '  ./rlhf-studio bench [--peer python3]    speed against TF.js WebGPU (and PyTorch)',
    '  ./rlhf-studio profile                   one PPO step, kernel by kernel',
    '  ./rlhf-studio train|generate|score --help',
    '  (Windows: node rlhf-studio.mjs ...)',
    '',
    "Dawn uses the machine's Vulkan driver. With none (no GPU), the folder's SwiftShader (Linux x64, CPU,",
    'slow) is used; RLHF_STUDIO_ADAPTER=swiftshader|system forces one or the other.',
    '',
  ].join('\n'),
);
chmodSync(join(out, 'rlhf-studio.mjs'), 0o755);
console.log(`portable rlhf-studio in ${out} (dawn.node for ${platforms.join(', ')})`);
