import { GpuDeviceLostError, GpuUnavailableError } from './errors.ts';

/** What the studio shows about an adapter, and what the engine sizes its work by. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (SwiftShader), where speed is judged only as ratios. */
  isFallback: boolean;
  features: string[];
  limits: TrainingLimits;
}

/** The limits that matter for training: buffer sizes and workgroup shapes. */
export interface TrainingLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** Features we use where present: f16 weights, subgroup reductions, timestamps for the bench. */
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

const LIMIT_KEYS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'minStorageBufferOffsetAlignment',
] as const;

export interface OpenedDevice {
  device: GPUDevice;
  summary: AdapterSummary;
  /** Resolves when the device is lost, with the error to surface. Never rejects. */
  lost: Promise<GpuDeviceLostError>;
}

/**
 * Requests a high-performance adapter and a device with the adapter's own maximum limits and every
 * wanted feature it has. `gpu` is `navigator.gpu` in a page or worker, or Dawn's `create([])` in Node.
 */
export async function openDevice(gpu: GPU | undefined, label = 'rlhf-studio'): Promise<OpenedDevice> {
  if (!gpu) {
    throw new GpuUnavailableError(
      'WebGPU is not available here. Use Chrome or Edge 113+ (desktop), Chrome 121+ on Android, ' +
        'Safari 26+, or Firefox 141+ on Windows; on Linux start Chrome with ' +
        '--enable-unsafe-webgpu --enable-features=Vulkan.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new GpuUnavailableError(
      'WebGPU is present but no GPU adapter was found: the GPU may be blocklisted or its driver missing ' +
        '(see chrome://gpu), or hardware acceleration is turned off in the browser settings.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) requiredLimits[key] = adapter.limits[key];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ label, requiredLimits, requiredFeatures });
  const lost = device.lost.then(
    (info) => new GpuDeviceLostError(info.reason ?? 'unknown', info.message ?? ''),
  );
  return { device, summary: summarize(adapter, device), lost };
}

function summarize(adapter: GPUAdapter, device: GPUDevice): AdapterSummary {
  const info = adapter.info;
  const limits = {} as TrainingLimits;
  for (const key of LIMIT_KEYS) limits[key] = device.limits[key];
  // Subgroup sizes are on adapter.info in current Chrome and Dawn, on adapter.limits in older ones.
  const sub = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  if (sub.subgroupMinSize) limits.subgroupMinSize = sub.subgroupMinSize;
  if (sub.subgroupMaxSize) limits.subgroupMaxSize = sub.subgroupMaxSize;
  const architecture = info.architecture ?? '';
  return {
    vendor: info.vendor ?? '',
    architecture,
    device: info.device ?? '',
    description: info.description ?? '',
    isFallback:
      architecture === 'swiftshader' || Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...device.features].sort(),
    limits,
  };
}

/** One line naming the adapter, e.g. "google swiftshader (SwiftShader Device (Subzero))". */
export function adapterName(s: AdapterSummary): string {
  const main = [s.vendor, s.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const extra = s.description || s.device;
  return extra ? `${main} (${extra})` : main;
}
