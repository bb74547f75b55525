/**
 * layernorm: out (B, T, C) = (inp - mean) * rstd * weight (C) + bias (C), over the last dim, with
 * eps = 1e-5 as torch's F.layer_norm and GPT-2. Forward saves mean (B, T) and rstd (B, T) for backward.
 * Backward accumulates dinp +=, dweight +=, dbias += with every reduction in a fixed order (no float
 * atomics): dweight/dbias sum over B*T rows in two passes, per chunk of rows into `scratch`, then over
 * the chunks.
 */
import { alignUp, asView, type Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import wgslSubgroups from './layernorm-subgroups.wgsl';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './layernorm.wgsl';

/** The shaders' uniform structs (src/gpu/uniforms.ts; layernorm-subgroups.wgsl declares Params too). */
export const PARAMS = uniformStruct('Params', { rows: 'u32', C: 'u32', eps: 'f32', rows_per_chunk: 'u32' });
export const REDUCE_PARAMS = uniformStruct('ReduceParams', { K: 'u32', C: 'u32' });
import { bestReduction, type Reduction } from './reduction.ts';

type Floats = Float32Array | Float64Array;

export interface LayernormDims {
  B: number;
  T: number;
  C: number;
  /** Added to the variance in forward; default LAYERNORM_EPS (DistilBERT/BERT use 1e-12). */
  eps?: number;
}

export const LAYERNORM_EPS = 1e-5;
const WG_C = 64; // layernorm.wgsl's per-channel and per-row-invocation workgroup size
const WG_ROW = 64; // layernorm.wgsl's row-kernel workgroup size
const ROWS_PER_CHUNK = 32; // rows summed by one invocation in the first dweight/dbias pass
const VIEW_ALIGN = 256; // minStorageBufferOffsetAlignment

/** CPU reference (llm.c layernorm_forward): writes out, mean, rstd. */
export function layernormForwardCpu(
  { out, mean, rstd }: { out: Floats; mean: Floats; rstd: Floats },
  { inp, weight, bias }: { inp: Floats; weight: Floats; bias: Floats },
  { B, T, C, eps = LAYERNORM_EPS }: LayernormDims,
): void {
  for (let r = 0; r < B * T; r++) {
    const x = r * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[x + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (inp[x + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
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

/**
 * The row kernels: vec4 loads, layernormRowLanes(C) invocations per row, several rows per workgroup
 * when C is small; with one row per workgroup the sums are finished as `reduction` says. A C that is
 * not a multiple of 4 takes the naive kernel.
 */
export function layernormForward(
  gpu: Gpu,
  outs: ForwardArgs,
  ins: ForwardInputs,
  dims: LayernormDims,
  reduction: Reduction = bestReduction(gpu),
): void {
  if (dims.C % 4 !== 0) return layernormForwardNaive(gpu, outs, ins, dims);
  const k = rowKernel(gpu, dims, reduction);
  forward(gpu, k.code, 'layernorm_forward_vec4', outs, ins, dims, k.grid, k.constants);
}

/** The simple kernel: one invocation per row. */
export function layernormForwardNaive(
  gpu: Gpu,
  outs: ForwardArgs,
  ins: ForwardInputs,
  dims: LayernormDims,
): void {
  forward(gpu, wgsl, 'layernorm_forward_naive', outs, ins, dims, [Math.ceil((dims.B * dims.T) / WG_C)], {});
}

/** Invocations per row in the row kernels: a power of two in [4, 64] giving each about 4 vec4s. */
export function layernormRowLanes(C: number): number {
  return Math.min(WG_ROW, Math.max(4, 2 ** Math.ceil(Math.log2(C / 16))));
}

interface RowKernel {
  code: string;
  constants: Record<string, number>;
  grid: [number, number];
}

/** The row kernels' WGSL, overrides and grid; the subgroup ones take whole workgroups per row. */
function rowKernel(gpu: Gpu, { B, T, C }: LayernormDims, reduction: Reduction): RowKernel {
  const lanes = layernormRowLanes(C);
  const n = Math.ceil((B * T * lanes) / WG_ROW); // workgroups
  const max = gpu.adapter.limits.maxComputeWorkgroupsPerDimension;
  const grid: [number, number] = n <= max ? [n, 1] : [max, Math.ceil(n / max)];
  if (lanes === WG_ROW && reduction === 'subgroups') return { code: wgslSubgroups, constants: {}, grid };
  return { code: wgsl, constants: { ROW_LANES: lanes }, grid };
}

function forward(
  gpu: Gpu,
  code: string,
  entry: string,
  { out, mean, rstd }: ForwardArgs,
  { inp, weight, bias }: ForwardInputs,
  { B, T, C, eps = LAYERNORM_EPS }: LayernormDims,
  workgroups: [number, number?],
  constants: Record<string, number>,
): void {
  gpu.dispatch(gpu.pipelines.get(code, entry, constants), {
    uniforms: PARAMS.pack({ rows: B * T, C, eps, rows_per_chunk: 0 }),
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
 * dinp += with the kernel layernormForward would pick; dweight +=, dbias += in two passes through
 * `scratch` (at least layernormBackwardScratchBytes; its offset a multiple of 256), whose contents it
 * overwrites.
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
  reduction: Reduction = bestReduction(gpu),
): void {
  const uniforms = PARAMS.pack({ rows: B * T, C, eps: LAYERNORM_EPS, rows_per_chunk: ROWS_PER_CHUNK });
  const k = C % 4 === 0 ? rowKernel(gpu, { B, T, C }, reduction) : null;
  gpu.dispatch(
    k
      ? gpu.pipelines.get(k.code, 'layernorm_backward_dinp_vec4', k.constants)
      : gpu.pipelines.get(wgsl, 'layernorm_backward_dinp_naive'),
    {
      uniforms,
      buffers: [inp, weight, dout, dinp, mean, rstd],
      workgroups: k ? k.grid : [Math.ceil((B * T) / WG_C)],
    },
  );
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
    gpu.dispatch(reduce, {
      uniforms: REDUCE_PARAMS.pack({ K, C }),
      buffers: [dst, parts],
      workgroups: [Math.ceil(C / WG_C)],
    });
  }
}

/** The simple kernels: dinp += one invocation per row; dweight +=, dbias += one invocation per channel. */
export function layernormBackwardNaive(
  gpu: Gpu,
  { dinp, dweight, dbias }: { dinp: Bindable; dweight: Bindable; dbias: Bindable },
  { dout, inp, weight, mean, rstd }: BackwardInputs,
  { B, T, C }: LayernormDims,
): void {
  const uniforms = PARAMS.pack({ rows: B * T, C, eps: LAYERNORM_EPS, rows_per_chunk: 0 });
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
