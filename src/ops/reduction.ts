/**
 * How the row kernels (layer norm, the log-softmax head) combine their invocations' partial results:
 *   'subgroups': subgroupAdd / subgroupMax (WebGPU's 'subgroups' feature), one workgroup barrier;
 *   'workgroup': workgroup memory only, one workgroup barrier, then a serial pass over the partials.
 * The 'subgroups' kernels live in their own .wgsl files, since `enable subgroups;` does not compile on
 * a device without the feature. Both give the same results up to float rounding.
 */
import type { Gpu } from '../gpu/gpu.ts';

export type Reduction = 'subgroups' | 'workgroup';

/** 'subgroups' where the device has the feature, else 'workgroup'. */
export function bestReduction(gpu: Gpu): Reduction {
  return gpu.adapter.features.includes('subgroups') ? 'subgroups' : 'workgroup';
}
