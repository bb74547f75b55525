/**
 * Loading an ONNX reward model inside the browser's Web Worker: onnxruntime-web's files come from
 * our build (onnx-browser-paths.ts), and the WebGPU execution provider is used when the worker
 * has a WebGPU adapter, the wasm (CPU) one otherwise or when the WebGPU session fails to start.
 */
import { ORT_WASM_PATHS } from './onnx-browser-paths.ts';
import { loadOnnxReward, type OnnxRewardModel, type OnnxRewardOptions } from './onnx.ts';
import type { RewardSource } from './source.ts';

/** 'webgpu' when navigator.gpu gives an adapter here, else 'wasm'. */
export async function preferredOnnxDevice(): Promise<'webgpu' | 'wasm'> {
  const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  if (!gpu) return 'wasm';
  try {
    return (await gpu.requestAdapter()) ? 'webgpu' : 'wasm';
  } catch {
    return 'wasm';
  }
}

export interface BrowserOnnxReward {
  model: OnnxRewardModel;
  device: 'webgpu' | 'wasm';
}

/** Loads `source` on WebGPU if available, falling back to wasm if that fails. */
export async function loadOnnxRewardInBrowser(
  source: RewardSource,
  options: Omit<OnnxRewardOptions, 'device' | 'wasmPaths'> = {},
): Promise<BrowserOnnxReward> {
  const device = await preferredOnnxDevice();
  const opts = { ...options, wasmPaths: ORT_WASM_PATHS };
  if (device === 'webgpu') {
    try {
      return { model: await loadOnnxReward(source, { ...opts, device: 'webgpu' }), device };
    } catch (e) {
      console.warn(`ONNX reward model on WebGPU failed (${(e as Error).message}); using wasm`);
    }
  }
  return { model: await loadOnnxReward(source, { ...opts, device: 'wasm' }), device: 'wasm' };
}
