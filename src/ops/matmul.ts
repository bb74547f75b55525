/**
 * matmul: out (BT, OC) = inp (BT, C) @ weight (C, OC) + bias (OC).
 * GPT-2's Conv1D stores weight as [in, out], so this is its forward as written.
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import wgsl from './matmul.wgsl';

export interface MatmulDims {
  BT: number;
  C: number;
  OC: number;
}

/** CPU reference, plain loops in float64 accumulation. */
export function matmulForwardCpu(
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  { BT, C, OC }: MatmulDims,
): Float32Array {
  const out = new Float32Array(BT * OC);
  for (let bt = 0; bt < BT; bt++) {
    for (let o = 0; o < OC; o++) {
      let acc = bias ? bias[o] : 0;
      for (let c = 0; c < C; c++) acc += inp[bt * C + c] * weight[c * OC + o];
      out[bt * OC + o] = acc;
    }
  }
  return out;
}

/** The simple kernel: one invocation per output. */
export function matmulForwardNaive(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp, weight, bias }: { inp: Bindable; weight: Bindable; bias: Bindable | null },
  { BT, C, OC }: MatmulDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'matmul_forward_naive'), {
    uniforms: [BT, C, OC, bias ? 1 : 0],
    // With no bias the weight is bound in its place; the kernel never reads it.
    buffers: [out, inp, weight, bias ?? weight],
    workgroups: [Math.ceil(OC / 8), Math.ceil(BT / 8)],
  });
}
