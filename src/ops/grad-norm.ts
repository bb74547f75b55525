/**
 * grad-norm: global gradient-norm clipping over the flat gradient buffer, with
 * torch.nn.utils.clip_grad_norm_'s semantics, and a non-finite detector for the trainer's guard.
 *
 *   grads (N)        float32, clipped in place
 *   out (2)          [total_norm, clip_coef], left on the GPU; read it only for stats
 *   partials (P)     scratch, P = gradNormPartialCount(N) floats
 *
 *   total_norm = sqrt(sum g^2),  clip_coef = min(max_norm / (total_norm + 1e-6), 1),  g *= clip_coef
 *
 * The sum is two fixed-order passes (per-workgroup partials, then one workgroup over them), so the
 * same gradients give the same norm on every run. `out` and `partials` must be buffers other than
 * `grads` (one pass writes what the next reads).
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './grad-norm.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32', count: 'u32', max_norm: 'f32' });

/** Workgroups of the first pass: enough to fill a large GPU, few enough for one final workgroup. */
const MAX_PARTIALS = 1024;

/** Floats the `partials` scratch buffer needs for N gradients. */
export function gradNormPartialCount(N: number): number {
  return Math.max(1, Math.min(Math.ceil(N / 256), MAX_PARTIALS));
}

/** CPU reference: the L2 norm of all gradients, accumulated in float64. */
export function gradNormCpu(grads: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < grads.length; i++) sum += grads[i] * grads[i];
  return Math.sqrt(sum);
}

/** CPU reference of clipGradNorm: scales grads in place (float32, as torch) and returns the norm. */
export function clipGradNormCpu(grads: Float32Array, maxNorm: number): number {
  const norm = Math.fround(gradNormCpu(grads));
  const coef = Math.min(Math.fround(Math.fround(maxNorm) / Math.fround(norm + 1e-6)), 1);
  for (let i = 0; i < grads.length; i++) grads[i] = Math.fround(grads[i] * coef);
  return norm;
}

/** out = [total_norm, clip_coef for maxNorm] (clip_coef is 1 when maxNorm is left out). */
export function gradNorm(
  gpu: Gpu,
  { out, partials }: { out: Bindable; partials: Bindable },
  { grads }: { grads: Bindable },
  { N, maxNorm = Infinity }: { N: number; maxNorm?: number },
): void {
  const count = gradNormPartialCount(N);
  const uniforms = PARAMS.pack({ N, count, max_norm: maxNorm });
  gpu.dispatch(gpu.pipelines.get(wgsl, 'grad_norm_partials'), {
    uniforms,
    buffers: [partials, grads],
    workgroups: [count],
  });
  gpu.dispatch(gpu.pipelines.get(wgsl, 'grad_norm_final'), {
    uniforms,
    buffers: [out, partials],
    workgroups: [1],
  });
}

/** torch's clip_grad_norm_ on the GPU: out = [total_norm, clip_coef], then grads *= clip_coef. */
export function clipGradNorm(
  gpu: Gpu,
  { grads, out, partials }: { grads: Bindable; out: Bindable; partials: Bindable },
  { N, maxNorm }: { N: number; maxNorm: number },
): void {
  gradNorm(gpu, { out, partials }, { grads }, { N, maxNorm });
  gpu.dispatch(gpu.pipelines.get(wgsl, 'grad_norm_clip'), {
    uniforms: PARAMS.pack({ N, count: gradNormPartialCount(N), max_norm: maxNorm }),
    buffers: [grads, out],
    workgroups: flatGrid(Math.ceil(N / 256)),
  });
}

/** The total norm from `out` (a readback: for stats, not for the training loop's control flow). */
export async function readGradNorm(gpu: Gpu, out: Bindable): Promise<number> {
  return (await gpu.readF32(out, 1))[0];
}

/** Sets flag (one u32) to 0. */
export function resetNonFiniteFlag(gpu: Gpu, flag: Bindable): void {
  gpu.write(flag, new Uint32Array(1));
}

/**
 * Sets flag (one u32) to 1 if any of the N floats of `inp` is NaN or +-Inf, and leaves it alone
 * otherwise: one flag can cover several buffers between resets.
 */
export function findNonFinite(
  gpu: Gpu,
  { flag }: { flag: Bindable },
  { inp }: { inp: Bindable },
  { N }: { N: number },
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'find_nonfinite'), {
    uniforms: PARAMS.pack({ N, count: 0, max_norm: 0 }),
    buffers: [flag, inp],
    workgroups: flatGrid(Math.ceil(N / 256)),
  });
}

/** CPU reference of findNonFinite. */
export function hasNonFiniteCpu(x: Float32Array): boolean {
  return x.some((v) => !Number.isFinite(v));
}
