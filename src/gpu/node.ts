/**
 * WebGPU in Node through Dawn (the `webgpu` package). Kept apart from the rest of src/gpu so that the
 * browser bundle never imports it. Dawn finds the machine's Vulkan driver; on a machine without a
 * GPU, scripts/swiftshader.mjs points it at SwiftShader before the process starts.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { writeFileAtomic } from '../cli/atomic-folder.ts';
import { tunedTiles, type TileCacheStore } from '../ops/matmul-tune.ts';
import { Gpu } from './gpu.ts';

let navigatorGpu: GPU | null = null;

/** navigator.gpu's equivalent in Node; also installs GPUBufferUsage and friends as globals. */
export function nodeGpu(): GPU {
  if (!navigatorGpu) {
    Object.assign(globalThis, globals);
    navigatorGpu = create([]);
  }
  return navigatorGpu;
}

/**
 * The Node Gpu. On a hardware adapter its matmul tiles come from the tile table measured for it
 * (src/ops/matmul-tune.ts), cached in nodeCacheDir(); RLHF_STUDIO_TUNE=0 keeps pickTile's rule.
 */
export async function createNodeGpu(): Promise<Gpu> {
  const gpu = await openNodeGpu();
  if (process.env.RLHF_STUDIO_TUNE !== '0') await tunedTiles(gpu, nodeTileCache());
  return gpu;
}

/** The Node Gpu with pickTile's tiles (no table looked up or measured). */
export const openNodeGpu = (): Promise<Gpu> => Gpu.create(nodeGpu());

/** $RLHF_STUDIO_CACHE, else $XDG_CACHE_HOME/rlhf-studio, else ~/.cache/rlhf-studio. */
export function nodeCacheDir(): string {
  const env = process.env;
  return env.RLHF_STUDIO_CACHE || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rlhf-studio');
}

/** matmul-tiles.json in the cache folder, replaced whole (writeFileAtomic: beside it, flushed, renamed). */
export function nodeTileCache(dir: string = nodeCacheDir()): TileCacheStore {
  const file = join(dir, 'matmul-tiles.json');
  return {
    read: async () => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return null;
      }
    },
    write: async (text) => writeFileAtomic(file, new TextEncoder().encode(text)),
  };
}
