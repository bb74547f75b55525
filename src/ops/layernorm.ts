/**
 * layernorm: out (B, T, C) = (inp - mean) * rstd * weight (C) + bias (C), over the last dim, with
 * eps = 1e-5 as torch's F.layer_norm and GPT-2. Forward saves mean (B, T) and rstd (B, T) for backward.
 * Backward accumulates dinp +=, dweight +=, dbias += with every reduction in a fixed order (no float
 * atomics): dweight/dbias sum over B*T rows in two passes, per chunk of rows into `scratch`, then over
 * the chunks.
 */
import { alignUp, asView, f32, type Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import wgsl from './layernorm.wgsl';

type Floats = Float32Array | Float64Array;

export interface LayernormDims {
  B: number;
  T: number;
  C: number;
}

export const LAYERNORM_EPS = 1e-5;
const WG_C = 64; // layernorm.wgsl's per-channel and per-row-invocation workgroup size
const ROWS_PER_CHUNK = 32; // rows summed by one invocation in the first dweight/dbias pass
const VIEW_ALIGN = 256; // minStorageBufferOffsetAlignment

/** CPU reference (llm.c layernorm_forward): writes out, mean, rstd. */
export function layernormForwardCpu(
  { out, mean, rstd }: { out: Floats; mean: Floats; rstd: Floats },
  { inp, weight, bias }: { inp: Floats; weight: Floats; bias: Floats },
  { B, T, C }: LayernormDims,
): void {
  for (let r = 0; r < B * T; r++) {
    const x = r * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[x + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (inp[x + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + LAYERNORM_EPS);
    for (let c = 0; c < C; c++) out[x + c] = (inp[x + c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

/** CPU reference (llm.c layernorm_backward): dinp +=, dweight +=, dbias +=. */
export function layernormBackwardCpu(
  { dinp, dweight, dbias }: { dinp: Floats; dweight: Floats; dbias: Floats },
  {
    dout,
    inp,
    weight,
    mean,
    rstd,
  }: { dout: Floats; inp: Floats; weight: Floats; mean: Floats; rstd: Floats },
  { B, T, C }: LayernormDims,
): void {
  for (let r = 0; r < B * T; r++) {
    const x = r * C;
    let gMean = 0;
    let gnMean = 0;
    for (let c = 0; c < C; c++) {
      const g = weight[c] * dout[x + c];
      gMean += g;
      gnMean += g * (inp[x + c] - mean[r]) * rstd[r];
    }
    gMean /= C;
    gnMean /= C;
    for (let c = 0; c < C; c++) {
      const n = (inp[x + c] - mean[r]) * rstd[r];
      dbias[c] += dout[x + c];
      dweight[c] += n * dout[x + c];
      dinp[x + c] += (weight[c] * dout[x + c] - gMean - n * gnMean) * rstd[r];
    }
  }
}

interface ForwardArgs {
  out: Bindable; // (B, T, C)
  mean: Bindable; // (B, T)
  rstd: Bindable; // (B, T)
}
interface ForwardInputs {
  inp: Bindable; // (B, T, C)
  weight: Bindable; // (C)
  bias: Bindable; // (C)
}

/** One workgroup per row, reductions in workgroup memory. */
export function layernormForward(
  gpu: Gpu,
  outs: ForwardArgs,
  ins: ForwardInputs,
  { B, T, C }: LayernormDims,
): void {
  forward(gpu, 'layernorm_forward', outs, ins, { B, T, C }, [T, B]);
}

/** The simple kernel: one invocation per row. */
export function layernormForwardNaive(
  gpu: Gpu,
  outs: ForwardArgs,
  ins: ForwardInputs,
  dims: LayernormDims,
): void {
  forward(gpu, 'layernorm_forward_naive', outs, ins, dims, [Math.ceil((dims.B * dims.T) / WG_C)]);
}

function forward(
  gpu: Gpu,
  entry: string,
  { out, mean, rstd }: ForwardArgs,
  { inp, weight, bias }: ForwardInputs,
  { B, T, C }: LayernormDims,
  workgroups: [number, number?],
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, entry), {
    uniforms: [B * T, C, f32(LAYERNORM_EPS), 0],
    buffers: [inp, weight, bias, out, mean, rstd],
    workgroups,
  });
}

interface BackwardInputs {
  dout: Bindable; // (B, T, C)
  inp: Bindable; // (B, T, C)
  weight: Bindable; // (C)
  mean: Bindable; // (B, T)
  rstd: Bindable; // (B, T)
}

/** Bytes of the `scratch` layernormBackward needs: two (chunks, C) arrays of partial sums. */
export function layernormBackwardScratchBytes({ B, T, C }: LayernormDims): number {
  const part = Math.ceil((B * T) / ROWS_PER_CHUNK) * C * 4;
  return alignUp(part, VIEW_ALIGN) + part;
}

/**
 * dinp += with one workgroup per row; dweight +=, dbias += in two passes through `scratch` (at least
 * layernormBackwardScratchBytes; its offset a multiple of 256), whose contents it overwrites.
 */
export function layernormBackward(
  gpu: Gpu,
  {
    dinp,
    dweight,
    dbias,
    scratch,
  }: { dinp: Bindable; dweight: Bindable; dbias: Bindable; scratch: Bindable },
  { dout, inp, weight, mean, rstd }: BackwardInputs,
  { B, T, C }: LayernormDims,
): void {
  const uniforms = [B * T, C, f32(LAYERNORM_EPS), ROWS_PER_CHUNK];
  gpu.dispatch(gpu.pipelines.get(wgsl, 'layernorm_backward_dinp'), {
    uniforms,
    buffers: [inp, weight, dout, dinp, mean, rstd],
    workgroups: [T, B],
  });
  const K = Math.ceil((B * T) / ROWS_PER_CHUNK);
  const s = asView(scratch);
  const part = K * C * 4;
  if (s.size < alignUp(part, VIEW_ALIGN) + part)
    throw new Error(`layernormBackward: scratch of ${s.size} bytes too small`);
  const partDweight = { buffer: s.buffer, offset: s.offset, size: part };
  const partDbias = { buffer: s.buffer, offset: s.offset + alignUp(part, VIEW_ALIGN), size: part };
  gpu.dispatch(gpu.pipelines.get(wgsl, 'layernorm_backward_params_partial'), {
    uniforms,
    buffers: [inp, partDweight, dout, partDbias, mean, rstd],
    workgroups: [Math.ceil(C / WG_C), K],
  });
  const reduce = gpu.pipelines.get(wgsl, 'layernorm_backward_params_reduce');
  for (const [dst, parts] of [
    [dweight, partDweight],
    [dbias, partDbias],
  ] as const) {
    gpu.dispatch(reduce, { uniforms: [K, C], buffers: [dst, parts], workgroups: [Math.ceil(C / WG_C)] });
  }
}

/** The simple kernels: dinp += one invocation per row; dweight +=, dbias += one invocation per channel. */
export function layernormBackwardNaive(
  gpu: Gpu,
  { dinp, dweight, dbias }: { dinp: Bindable; dweight: Bindable; dbias: Bindable },
  { dout, inp, weight, mean, rstd }: BackwardInputs,
  { B, T, C }: LayernormDims,
): void {
  const uniforms = [B * T, C, f32(LAYERNORM_EPS), 0];
  gpu.dispatch(gpu.pipelines.get(wgsl, 'layernorm_backward_dinp_naive'), {
    uniforms,
    buffers: [inp, weight, dout, dinp, mean, rstd],
    workgroups: [Math.ceil((B * T) / WG_C)],
  });
  gpu.dispatch(gpu.pipelines.get(wgsl, 'layernorm_backward_params_naive'), {
    uniforms,
    buffers: [inp, dweight, dout, dbias, mean, rstd],
    workgroups: [Math.ceil(C / WG_C)],
  });
}
