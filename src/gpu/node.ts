/**
 * WebGPU in Node through Dawn (the `webgpu` package). Kept apart from the rest of src/gpu so that the
 * browser bundle never imports it. Dawn finds the machine's Vulkan driver; on a machine without a
 * GPU, scripts/swiftshader.mjs points it at SwiftShader before the process starts.
 */
import { create, globals } from 'webgpu';
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

export function createNodeGpu(): Promise<Gpu> {
  return Gpu.create(nodeGpu());
}
