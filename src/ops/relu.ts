/**
 * relu: out (N) = max(inp (N), 0), as torch's nn.ReLU; forward only (DistilBERT's classifier head
 * runs pre_classifier -> ReLU -> classifier). NaN passes through, as in torch.
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import wgsl from './relu.wgsl';

type Floats = Float32Array | Float64Array;

export interface ReluDims {
  N: number;
}

const WG = 256; // relu.wgsl's workgroup size
const MAX_GROUPS_X = 65535; // WebGPU's default maxComputeWorkgroupsPerDimension

/** CPU reference: out = inp < 0 ? 0 : inp. */
export function reluForwardCpu({ out }: { out: Floats }, { inp }: { inp: Floats }, { N }: ReluDims): void {
  for (let i = 0; i < N; i++) out[i] = inp[i] < 0 ? 0 : inp[i];
}

/** out = relu(inp) on the GPU. `out` must not share a buffer with `inp`. */
export function reluForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp }: { inp: Bindable },
  { N }: ReluDims,
): void {
  const groups = Math.ceil(N / WG);
  const x = Math.min(groups, MAX_GROUPS_X);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'relu_forward'), {
    uniforms: [N],
    buffers: [out, inp],
    workgroups: [x, Math.ceil(groups / Math.max(x, 1))],
  });
}
