/**
 * attention: causal multi-head self-attention on GPT-2's c_attn output.
 *   qkv (B, T, 3C) -> out (B, T, C), heads concatenated; saves att (B, NH, T, T) for backward.
 *   q, k, v are qkv's three C-wide thirds, each split into NH heads of HS = C / NH channels.
 *   att[b,h,t,:] = softmax_j((q_t . k_j) / sqrt(HS)) over keys j <= t with mask[b,j] != 0.
 * mask (B, T) is an optional key padding mask (u32, 0 = padded). A query with no allowed key (a
 * padded position under left padding) gets, as `maskedRows` says:
 *   'uniform': att = 1/T over all T keys, as HF transformers' eager attention (its additive
 *              finfo.min mask leaves all T scores equal), so logits at padded positions match it;
 *   'zero':    att = 0 and out = 0, as torch SDPA (HF's default attn_implementation for GPT-2).
 * Such a row's weights are constants: backward sends no gradient to its q or to any k through it
 * (torch autograd would through `scores + finfo.min`, which only matters if dout there is non-zero;
 * losses mask padded positions, so it is zero). Backward accumulates dqkv +=.
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './attention.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', {
  T: 'u32',
  C: 'u32',
  NH: 'u32',
  HS: 'u32',
  has_mask: 'u32',
  masked_fill: 'u32',
  scale: 'f32',
});

type Floats = Float32Array | Float64Array;
type Mask = Int32Array | Uint32Array;

export interface AttentionDims {
  B: number;
  T: number;
  C: number;
  NH: number;
}

export type MaskedRows = 'uniform' | 'zero';

/**
 * The GPU kernels: 'rows' gives one invocation to each query row (and each key row's 4-channel group
 * in backward), with vec4 loads and no barriers; it needs HS % 4 == 0. 'workgroup' gives one workgroup
 * to each row, for any HS. attentionKernel picks 'rows' where it can.
 */
export type AttentionKernel = 'rows' | 'workgroup';

const MAX_HS = 256; // attention.wgsl's row_vec
const WG_ROWS = 64; // attention.wgsl's WG_ROWS

/** The kernels attentionForward and attentionBackward use unless told: 'rows' where HS % 4 == 0. */
export function attentionKernel({ C, NH }: AttentionDims): AttentionKernel {
  return (C / NH) % 4 === 0 ? 'rows' : 'workgroup';
}

/** Key j is visible to query t in batch row b. */
function allowed(mask: Mask | null, T: number, b: number, t: number, j: number): boolean {
  return j <= t && (mask === null || mask[b * T + j] !== 0);
}

/** CPU reference: writes out (B, T, C) and att (B, NH, T, T). */
export function attentionForwardCpu(
  { out, att }: { out: Floats; att: Floats },
  { qkv, mask }: { qkv: Floats; mask: Mask | null },
  { B, T, C, NH }: AttentionDims,
  maskedRows: MaskedRows = 'uniform',
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * 3 * C + h * HS;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) {
          if (!allowed(mask, T, b, t, j)) continue;
          const k = (b * T + j) * 3 * C + C + h * HS;
          let s = 0;
          for (let i = 0; i < HS; i++) s += qkv[q + i] * qkv[k + i];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j <= t; j++)
          if (allowed(mask, T, b, t, j)) sum += scores[j] = Math.exp(scores[j] - max);
        const fill = max === -Infinity && maskedRows === 'uniform' ? 1 / T : 0;
        const row = ((b * NH + h) * T + t) * T;
        for (let j = 0; j < T; j++) att[row + j] = allowed(mask, T, b, t, j) ? scores[j] / sum : fill;
        for (let i = 0; i < HS; i++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += att[row + j] * qkv[(b * T + j) * 3 * C + 2 * C + h * HS + i];
          out[(b * T + t) * C + h * HS + i] = acc;
        }
      }
    }
  }
}

/** CPU reference (llm.c attention_backward, through allowed scores only): dqkv +=. */
export function attentionBackwardCpu(
  { dqkv }: { dqkv: Floats },
  { dout, qkv, att, mask }: { dout: Floats; qkv: Floats; att: Floats; mask: Mask | null },
  { B, T, C, NH }: AttentionDims,
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const datt = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * NH + h) * T + t) * T;
        const o = (b * T + t) * C + h * HS;
        const q = (b * T + t) * 3 * C + h * HS;
        let attDotDatt = 0;
        for (let j = 0; j < T; j++) {
          const v = (b * T + j) * 3 * C + 2 * C + h * HS;
          let d = 0;
          for (let i = 0; i < HS; i++) {
            d += dout[o + i] * qkv[v + i];
            dqkv[v + i] += att[row + j] * dout[o + i]; // dv
          }
          datt[j] = d;
          if (allowed(mask, T, b, t, j)) attDotDatt += att[row + j] * d;
        }
        for (let j = 0; j <= t; j++) {
          if (!allowed(mask, T, b, t, j)) continue;
          const dpreatt = att[row + j] * (datt[j] - attDotDatt) * scale;
          const k = (b * T + j) * 3 * C + C + h * HS;
          for (let i = 0; i < HS; i++) {
            dqkv[q + i] += dpreatt * qkv[k + i];
            dqkv[k + i] += dpreatt * qkv[q + i];
          }
        }
      }
    }
  }
}

export function attentionForward(
  gpu: Gpu,
  { out, att }: { out: Bindable; att: Bindable },
  { qkv, mask }: { qkv: Bindable; mask: Bindable | null },
  dims: AttentionDims,
  maskedRows: MaskedRows = 'uniform',
  kernel: AttentionKernel = attentionKernel(dims),
): void {
  const rows = checkKernel(kernel, dims);
  gpu.dispatch(gpu.pipelines.get(wgsl, rows ? 'attention_forward_vec4' : 'attention_forward'), {
    uniforms: uniforms(dims, mask !== null, maskedRows === 'uniform'),
    // With no mask, qkv is bound in its place; the kernel never reads it.
    buffers: [qkv, mask ?? qkv, att, out],
    workgroups: rows ? [Math.ceil(dims.T / WG_ROWS), dims.NH, dims.B] : [dims.T, dims.NH, dims.B],
  });
}

/** dqkv += through att. dpreatt (B, NH, T, T) is scratch; its contents are overwritten. */
export function attentionBackward(
  gpu: Gpu,
  { dqkv, dpreatt }: { dqkv: Bindable; dpreatt: Bindable },
  { dout, qkv, att, mask }: { dout: Bindable; qkv: Bindable; att: Bindable; mask: Bindable | null },
  dims: AttentionDims,
  kernel: AttentionKernel = attentionKernel(dims),
): void {
  const { T, C, NH, B } = dims;
  const args = {
    // The fill of fully masked rows only matters to the forward; backward reads it from att.
    uniforms: uniforms(dims, mask !== null, false),
    buffers: [qkv, mask ?? qkv, att, dout, dpreatt, dqkv],
  };
  if (checkKernel(kernel, dims)) {
    const keyGroups = (T * C) / NH / 4; // (key row, 4 channels) pairs per head
    gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_backward_query_vec4'), {
      ...args,
      workgroups: [Math.ceil(T / WG_ROWS), NH, B],
    });
    gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_backward_key_vec4'), {
      ...args,
      workgroups: [Math.ceil(keyGroups / WG_ROWS), NH, B],
    });
  } else {
    gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_backward_query'), { ...args, workgroups: [T, NH, B] });
    gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_backward_key'), { ...args, workgroups: [T, NH, B] });
  }
}

/** True for the 'rows' kernels; throws if they cannot take these dims. */
function checkKernel(kernel: AttentionKernel, { C, NH }: AttentionDims): boolean {
  if (kernel === 'rows' && (C / NH) % 4 !== 0)
    throw new Error(`attention: the 'rows' kernels need HS % 4 == 0, got HS=${C / NH}`);
  return kernel === 'rows';
}

function uniforms({ T, C, NH }: AttentionDims, hasMask: boolean, fillMaskedRows: boolean): Uint8Array {
  const HS = C / NH;
  if (!Number.isInteger(HS) || HS > MAX_HS) throw new Error(`attention: C=${C} NH=${NH} gives HS=${HS}`);
  return PARAMS.pack({
    T,
    C,
    NH,
    HS,
    has_mask: hasMask,
    masked_fill: fillMaskedRows,
    scale: 1 / Math.sqrt(HS),
  });
}
