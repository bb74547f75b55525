/**
 * relu: out (N) = max(inp (N), 0), as torch's nn.ReLU; forward only (DistilBERT's classifier head
 * runs pre_classifier -> ReLU -> classifier). NaN passes through, as in torch.
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './relu.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32' });

type Floats = Float32Array | Float64Array;

export interface ReluDims {
  N: number;
}

const WG = 256; // relu.wgsl's workgroup size

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
  gpu.dispatch(gpu.pipelines.get(wgsl, 'relu_forward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [out, inp],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}
