/**
 * adamw: one optimizer step over the flat parameter block (llm.c's gpt2_update), with
 * torch.optim.AdamW's arithmetic and defaults; weightDecay = 0 is exactly torch.optim.Adam.
 *
 *   params (N), m (N), v (N)  updated in place;  grads (N) read.   All float32.
 *
 *   p  = p * (1 - lr * wd)                         decoupled weight decay, first
 *   m  = beta1 * m + (1 - beta1) * g               (as torch: m.lerp_(g, 1 - beta1))
 *   v  = beta2 * v + (1 - beta2) * g^2
 *   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * t is the 1-based step count. Parameters that take no weight decay (biases, layernorms, as
 * nanoGPT groups them) are a second call over their own View with weightDecay 0.
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './adamw.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', {
  N: 'u32',
  decay: 'f32',
  one_minus_beta1: 'f32',
  beta2: 'f32',
  one_minus_beta2: 'f32',
  step_size: 'f32',
  bc2_sqrt: 'f32',
  eps: 'f32',
});

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW's defaults. */
export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
};

/** Step t (1-based) and the hyper-parameters; the ones left out take torch's defaults. */
export type AdamWStep = Partial<AdamWConfig> & { t: number };

interface StepScalars {
  decay: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  stepSize: number;
  bc2Sqrt: number;
  eps: number;
}

/**
 * The per-step scalars, in float64 as PyTorch computes them from Python floats; the kernel and the
 * CPU reference then round each to float32, as torch does when it applies a Python scalar.
 */
function stepScalars(step: AdamWStep): StepScalars {
  const { t, lr, beta1, beta2, eps, weightDecay } = { ...ADAMW_DEFAULTS, ...step };
  if (!Number.isInteger(t) || t < 1) throw new Error(`adamw: step t = ${t} must be an integer >= 1`);
  return {
    decay: 1 - lr * weightDecay,
    oneMinusBeta1: 1 - beta1,
    beta2,
    oneMinusBeta2: 1 - beta2,
    stepSize: lr / (1 - beta1 ** t),
    bc2Sqrt: Math.sqrt(1 - beta2 ** t),
    eps,
  };
}

/**
 * CPU reference: the same step in plain loops, each operation rounded to float32 in the order
 * torch's CPU kernels use (bit-exact with torch 2.13 on all but ~1 in 300 elements, off by 1 ulp).
 */
export function adamwCpu(
  { params, m, v }: { params: Float32Array; m: Float32Array; v: Float32Array },
  { grads }: { grads: Float32Array },
  { N }: { N: number },
  step: AdamWStep,
): void {
  const r = Math.fround;
  const s = stepScalars(step);
  const [decay, omb1, beta2, omb2, stepSize, bc2Sqrt, eps] = [
    s.decay,
    s.oneMinusBeta1,
    s.beta2,
    s.oneMinusBeta2,
    s.stepSize,
    s.bc2Sqrt,
    s.eps,
  ].map(r);
  for (let i = 0; i < N; i++) {
    const g = grads[i];
    const p = r(params[i] * decay);
    // torch's lerp_ and addcmul_ fuse their last multiply-add (a float32 product is exact in float64).
    m[i] = r(m[i] + omb1 * r(g - m[i]));
    v[i] = r(r(v[i] * beta2) + r(omb2 * g) * g);
    const denom = r(r(Math.sqrt(v[i]) / bc2Sqrt) + eps);
    params[i] = r(p + r(r(-stepSize * m[i]) / denom)); // addcdiv_: p + (value * m) / denom
  }
}

/** One AdamW step on the GPU over N elements of params, m, v and grads (buffers or Views). */
export function adamwUpdate(
  gpu: Gpu,
  { params, m, v }: { params: Bindable; m: Bindable; v: Bindable },
  { grads }: { grads: Bindable },
  { N }: { N: number },
  step: AdamWStep,
): void {
  const s = stepScalars(step);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'adamw_update'), {
    uniforms: PARAMS.pack({
      N,
      decay: s.decay,
      one_minus_beta1: s.oneMinusBeta1,
      beta2: s.beta2,
      one_minus_beta2: s.oneMinusBeta2,
      step_size: s.stepSize,
      bc2_sqrt: s.bc2Sqrt,
      eps: s.eps,
    }),
    buffers: [params, m, v, grads],
    workgroups: flatGrid(Math.ceil(N / 256)),
  });
}
