/**
 * gelu_erf: out (N) = gelu(inp (N)), the exact GELU that torch's nn.GELU() / F.gelu compute by
 * default (approximate='none') and DistilBERT/BERT use, N = B*T*hidden:
 *   gelu(x) = 0.5 x (1 + erf(x / sqrt(2)))
 * Forward only (the reward model is never trained here). The kernel's f32 erf is a rational
 * approximation (see gelu-erf.wgsl); the CPU reference uses erf64, accurate to ~1e-15.
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './gelu-erf.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32' });

type Floats = Float32Array | Float64Array;

export interface GeluErfDims {
  N: number;
}

const WG = 256; // gelu-erf.wgsl's workgroup size
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * erf in float64 (JavaScript has no Math.erf): the Maclaurin series for |x| < 2.5 (terms peak near
 * 10, so ~1e-15 is lost to cancellation), else 1 - erfc(x) with erfc from its continued fraction
 * erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up.
 */
export function erf64(x: number): number {
  const a = Math.abs(x);
  if (Number.isNaN(x)) return NaN;
  if (a < 2.5) {
    // erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x; // (-1)^n x^(2n+1) / n!
    let sum = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  if (a >= 6.5) return Math.sign(x); // erfc(6.5) < 4e-20, below float64's resolution at 1
  let frac = a;
  for (let k = 60; k >= 1; k--) frac = a + k / 2 / frac;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / frac;
  return Math.sign(x) * (1 - erfc);
}

/** CPU reference: out = 0.5 inp (1 + erf(inp / sqrt(2))). */
export function geluErfForwardCpu(
  { out }: { out: Floats },
  { inp }: { inp: Floats },
  { N }: GeluErfDims,
): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    out[i] = 0.5 * x * (1 + erf64(x / Math.SQRT2));
  }
}

/** out = gelu(inp) on the GPU. `out` must not share a buffer with `inp`. */
export function geluErfForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp }: { inp: Bindable },
  { N }: GeluErfDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'gelu_erf_forward'), {
    uniforms: PARAMS.pack({ N }),
    buffers: [out, inp],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}
