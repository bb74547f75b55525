// SwiftShader: Google's Vulkan-on-CPU driver, the one Chrome falls back to. It lets Dawn (the
// `webgpu` package) give a real GPUAdapter on a machine with no GPU. The driver ships inside the
// npm package @sparticuz/chromium as bin/swiftshader.tar.br; we unpack it once into
// node_modules/.cache and point the Vulkan loader at it. See ../shared/TESTING.md.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import * as tar from 'tar';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(root, 'node_modules', '.cache', 'rlhf-studio', 'swiftshader');
const icdName = 'vk_swiftshader_icd.json';

/** Unpacks SwiftShader (idempotent) and returns its folder. Throws if @sparticuz/chromium is absent. */
export function ensureSwiftShader() {
  if (existsSync(join(cacheDir, icdName))) return cacheDir;
  const require = createRequire(join(root, 'package.json'));
  let pkgDir;
  try {
    // The package's `exports` hide package.json; walk up from its entry point instead.
    pkgDir = dirname(require.resolve('@sparticuz/chromium'));
    while (!existsSync(join(pkgDir, 'bin', 'swiftshader.tar.br'))) {
      if (pkgDir === dirname(pkgDir)) throw new Error('bin/swiftshader.tar.br not found');
      pkgDir = dirname(pkgDir);
    }
  } catch {
    throw new Error(
      'SwiftShader needs the npm package @sparticuz/chromium (a devDependency): run npm install',
    );
  }
  const tarBytes = brotliDecompressSync(readFileSync(join(pkgDir, 'bin', 'swiftshader.tar.br')));
  const tmp = `${cacheDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const tarPath = join(tmp, 'swiftshader.tar');
  // tar.x reads files, so the decompressed archive is written next to where it is unpacked.
  writeFileSync(tarPath, tarBytes);
  tar.x({ file: tarPath, cwd: tmp, sync: true });
  rmSync(tarPath);
  if (!readdirSync(tmp).includes(icdName)) throw new Error(`${icdName} missing from swiftshader.tar.br`);
  mkdirSync(dirname(cacheDir), { recursive: true });
  try {
    renameSync(tmp, cacheDir);
  } catch (e) {
    // Another process unpacked it first.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(cacheDir, icdName))) throw e;
  }
  return cacheDir;
}

/** The environment that makes the Vulkan loader (and so Dawn) use SwiftShader. */
export function swiftshaderEnv() {
  const dir = ensureSwiftShader();
  return {
    VK_ICD_FILENAMES: join(dir, icdName),
    // The tarball carries its own libvulkan.so.1: the machine need not have a Vulkan loader.
    LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp',
    RLHF_STUDIO_ADAPTER: 'swiftshader',
  };
}

/** True when the machine shows a Vulkan driver of its own (a real GPU), so Dawn should use it. */
export function hasSystemVulkanDriver() {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  return dirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
}

/**
 * SwiftShader's environment unless the machine has a GPU driver. RLHF_STUDIO_ADAPTER=swiftshader
 * forces SwiftShader; RLHF_STUDIO_ADAPTER=system forces the machine's own driver.
 */
export function swiftshaderEnvIfNoGpu() {
  const want = process.env.RLHF_STUDIO_ADAPTER;
  if (want === 'system') return {};
  if (want === 'swiftshader' && process.env.VK_ICD_FILENAMES) return {};
  if (want !== 'swiftshader' && hasSystemVulkanDriver()) return {};
  return swiftshaderEnv();
}
