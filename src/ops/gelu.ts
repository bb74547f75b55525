/**
 * gelu: out (N) = gelu_new(inp (N)), GPT-2's tanh approximation of GELU, N = B*T*4C:
 *   gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * Backward accumulates: dinp += gelu_new'(inp) * dout. The kernel computes tanh from exp(-2|y|),
 * finite for every finite x (builtin tanh can return NaN for large |y| on some drivers).
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './gelu.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32' });

type Floats = Float32Array | Float64Array;

export interface GeluDims {
  N: number;
}

const WG = 256; // gelu.wgsl's workgroup size
const GELU_SCALE = Math.sqrt(2 / Math.PI);

/** CPU reference: out = gelu_new(inp). */
export function geluForwardCpu({ out }: { out: Floats }, { inp }: { inp: Floats }, { N }: GeluDims): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
  }
}

/** CPU reference: dinp += gelu_new'(inp) * dout. */
export function geluBackwardCpu(
  { dinp }: { dinp: Floats },
  { inp, dout }: { inp: Floats; dout: Floats },
  { N }: GeluDims,
): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    const t = Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x));
    const sech2 = 1 - t * t;
    const localGrad = 0.5 * (1 + t) + 0.5 * x * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * x * x);
    dinp[i] += localGrad * dout[i];
  }
}

export function geluForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp }: { inp: Bindable },
  { N }: GeluDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'gelu_forward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [out, inp],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}

export function geluBackward(
  gpu: Gpu,
  { dinp }: { dinp: Bindable },
  { inp, dout }: { inp: Bindable; dout: Bindable },
  { N }: GeluDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'gelu_backward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [dinp, inp, dout],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}
