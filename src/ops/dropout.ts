/**
 * dropout with a counter-based mask: out (N) = inp * keep / (1 - p), keep = u(seed, stream, i) >= p,
 * u the hash uniform of sample.ts (pcg3d). Backward accumulates: dinp (N) += dout * keep / (1 - p).
 * The mask is a pure function of (seed, stream, i), so backward recomputes it and nothing is stored;
 * LoRA gives each (layer, module) its own stream. out must not alias inp, nor dinp alias dout.
 */
import type { Bindable } from '../gpu/buffers.ts';
import { flatGrid, type Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './dropout.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { N: 'u32', seed: 'u32', stream: 'u32', p: 'f32' });
import { pcg3d } from './sample.ts';

export interface DropoutDims {
  N: number;
}

export interface DropoutMask {
  /** u32 key of one forward pass. */
  seed: number;
  /** u32 sub-key (e.g. which layer). */
  stream: number;
  /** Probability of zeroing an element, in [0, 1). */
  p: number;
}

const WG = 256; // dropout.wgsl's workgroup size

/** The factor element i is multiplied by: 1 / (1 - p) when kept, 0 when dropped. */
export function dropoutScaleCpu({ seed, stream, p }: DropoutMask, i: number): number {
  const u = (pcg3d(i, stream, seed)[0] >>> 8) / 16777216;
  return u >= p ? Math.fround(1 / (1 - p)) : 0;
}

/** CPU reference: out = inp * scale(i). */
export function dropoutForwardCpu(inp: Float32Array, mask: DropoutMask, { N }: DropoutDims): Float32Array {
  const out = new Float32Array(N);
  for (let i = 0; i < N; i++) out[i] = inp[i] * dropoutScaleCpu(mask, i);
  return out;
}

/** CPU reference: dinp += dout * scale(i). */
export function dropoutBackwardCpu(
  { dinp }: { dinp: Float32Array },
  { dout }: { dout: Float32Array },
  mask: DropoutMask,
  { N }: DropoutDims,
): void {
  for (let i = 0; i < N; i++) dinp[i] += dout[i] * dropoutScaleCpu(mask, i);
}

function check({ seed, stream, p }: DropoutMask): void {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p = ${p} is outside [0, 1)`);
  for (const [k, v] of [
    ['seed', seed],
    ['stream', stream],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 32)) throw new Error(`dropout: ${k} = ${v} is not a u32`);
  }
}

export function dropoutForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp }: { inp: Bindable },
  mask: DropoutMask,
  { N }: DropoutDims,
): void {
  check(mask);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'dropout_forward'), {
    uniforms: PARAMS.pack({ N, seed: mask.seed, stream: mask.stream, p: mask.p }),
    buffers: [out, inp],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}

export function dropoutBackward(
  gpu: Gpu,
  { dinp }: { dinp: Bindable },
  { dout }: { dout: Bindable },
  mask: DropoutMask,
  { N }: DropoutDims,
): void {
  check(mask);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'dropout_backward'), {
    uniforms: PARAMS.pack({ N, seed: mask.seed, stream: mask.stream, p: mask.p }),
    buffers: [dinp, dout],
    workgroups: flatGrid(Math.ceil(N / WG)),
  });
}
