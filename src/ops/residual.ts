/**
 * residual: out (N) = inp1 (N) + inp2 (N), with N = B*T*C (GPT-2's two skip connections per block).
 * Backward accumulates dout into both inputs' grads: dinp1 += dout, dinp2 += dout.
 * WebGPU forbids binding one buffer range twice when either binding is writable, so out must not
 * alias an input, nor dinp1 alias dinp2 or dout.
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './residual.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32' });

type Floats = Float32Array | Float64Array;

export interface ResidualDims {
  N: number;
}

const WG = 256; // residual.wgsl's workgroup size

/** CPU reference: out = inp1 + inp2. */
export function residualForwardCpu(
  { out }: { out: Floats },
  { inp1, inp2 }: { inp1: Floats; inp2: Floats },
  { N }: ResidualDims,
): void {
  for (let i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}

/** CPU reference: dinp1 += dout, dinp2 += dout. */
export function residualBackwardCpu(
  { dinp1, dinp2 }: { dinp1: Floats; dinp2: Floats },
  { dout }: { dout: Floats },
  { N }: ResidualDims,
): void {
  for (let i = 0; i < N; i++) {
    dinp1[i] += dout[i];
    dinp2[i] += dout[i];
  }
}

export function residualForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp1, inp2 }: { inp1: Bindable; inp2: Bindable },
  { N }: ResidualDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'residual_forward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [out, inp1, inp2],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}

export function residualBackward(
  gpu: Gpu,
  { dinp1, dinp2 }: { dinp1: Bindable; dinp2: Bindable },
  { dout }: { dout: Bindable },
  { N }: ResidualDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'residual_backward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [dinp1, dinp2, dout],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}
