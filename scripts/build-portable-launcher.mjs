#!/usr/bin/env node
// The portable rlhf-studio's entry point (copied by scripts/build-portable.mjs to the folder's top as
// rlhf-studio.mjs). It needs nothing but Node: the engine is lib/cli.mjs, Dawn is lib/dist/<platform>-
// <arch>/dawn.node. With no GPU driver on the machine, the Vulkan loader must be pointed at the
// folder's SwiftShader (swiftshader/, Linux x64) before the process starts, so this file re-executes
// itself with that environment. RLHF_STUDIO_ADAPTER=swiftshader|system forces one or the other.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const icd = join(here, 'swiftshader', 'vk_swiftshader_icd.json');

/** True when the machine shows a Vulkan driver of its own (a real GPU), so Dawn should use it. */
function hasSystemVulkanDriver() {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  return dirs.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
}

function wantsSwiftShader() {
  const want = process.env.RLHF_STUDIO_ADAPTER;
  if (process.env.RLHF_STUDIO_CHILD || want === 'system' || process.platform !== 'linux') return false;
  if (want === 'swiftshader') return !process.env.VK_ICD_FILENAMES;
  return !hasSystemVulkanDriver();
}

if (wantsSwiftShader()) {
  if (!existsSync(icd)) {
    console.error('rlhf-studio: no GPU driver found and this folder carries no SwiftShader');
  } else {
    const dir = dirname(icd);
    const env = {
      ...process.env,
      VK_ICD_FILENAMES: icd,
      // SwiftShader's folder carries its own libvulkan.so.1: the machine need not have a Vulkan loader.
      LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp',
      RLHF_STUDIO_ADAPTER: 'swiftshader',
      RLHF_STUDIO_CHILD: '1',
    };
    const argv = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
    const r = spawnSync(process.execPath, argv, { stdio: 'inherit', env });
    process.exit(r.status ?? 1);
  }
}

const { main } = await import(pathToFileURL(join(here, 'lib', 'cli.mjs')).href);
// Dawn keeps the event loop alive; exit explicitly once the command is done.
process.exit(await main(process.argv.slice(2)));
