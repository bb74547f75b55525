/**
 * attention_bidir: bidirectional (non-causal) multi-head self-attention with a key padding mask,
 * forward only, for encoder models (DistilBERT's reward classifier).
 *   qkv (B, T, 3C) -> out (B, T, C), heads concatenated. q, k, v are qkv's three C-wide thirds (the
 *   q_lin, k_lin and v_lin outputs side by side, as one fused GEMM writes them), each split into NH
 *   heads of HS = C / NH channels.
 *   att[b,h,t,:] = softmax_j((q_t . k_j) / sqrt(HS)) over all keys j with mask[b,j] != 0
 * mask (B, T) is an optional u32 key padding mask (0 = padded key). Padded queries are computed
 * like any other (they attend to the unmasked keys), as HF does. A batch row with no unmasked key
 * at all attends uniformly to its T keys (HF's eager attention: its finfo.min fill makes the scores
 * equal). att is not stored: nothing here needs a backward.
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './attention-bidir.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', {
  B: 'u32',
  T: 'u32',
  C: 'u32',
  NH: 'u32',
  has_mask: 'u32',
  scale: 'f32',
});

type Floats = Float32Array | Float64Array;
type Mask = Int32Array | Uint32Array;

export interface AttentionBidirDims {
  B: number;
  T: number;
  C: number;
  NH: number;
}

/**
 * 'naive': one invocation per (query, head, batch row), three passes over the keys; any HS.
 * 'tiled': keys and values staged through workgroup memory, online softmax in registers; needs
 * HS % 4 == 0 and HS <= 64 (every DistilBERT/BERT size: HS = 64).
 */
export type AttentionBidirKernel = 'naive' | 'tiled';

const WG_Q = 64; // attention-bidir.wgsl's queries per workgroup
const MAX_HS = 64; // attention-bidir.wgsl's 4 * MAX_HS4

/** The kernel attentionBidirForward uses unless told: 'tiled' where the head size allows. */
export function attentionBidirKernel({ C, NH }: AttentionBidirDims): AttentionBidirKernel {
  const HS = C / NH;
  return HS % 4 === 0 && HS <= MAX_HS ? 'tiled' : 'naive';
}

/** CPU reference: writes out (B, T, C). Float64 accumulation. */
export function attentionBidirForwardCpu(
  { out }: { out: Floats },
  { qkv, mask }: { qkv: Floats; mask: Mask | null },
  { B, T, C, NH }: AttentionBidirDims,
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    let hasKey = mask === null;
    for (let j = 0; j < T && !hasKey; j++) hasKey = mask![b * T + j] !== 0;
    const allowed = (j: number) => !hasKey || mask === null || mask[b * T + j] !== 0;
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * 3 * C + h * HS;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          const k = (b * T + j) * 3 * C + C + h * HS;
          let s = 0;
          for (let i = 0; i < HS; i++) s += qkv[q + i] * qkv[k + i];
          scores[j] = hasKey ? s * scale : 0; // no key at all: equal scores, uniform weights
          if (allowed(j)) max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < T; j++) {
          scores[j] = allowed(j) ? Math.exp(scores[j] - max) : 0;
          sum += scores[j];
        }
        const o = (b * T + t) * C + h * HS;
        for (let i = 0; i < HS; i++) {
          let acc = 0;
          for (let j = 0; j < T; j++) acc += scores[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * HS + i];
          out[o + i] = acc / sum;
        }
      }
    }
  }
}

/**
 * out (B, T, C) from qkv (B, T, 3C) and an optional u32 mask (B, T) on the GPU. `out` must not
 * share a buffer with qkv or mask.
 */
export function attentionBidirForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { qkv, mask }: { qkv: Bindable; mask: Bindable | null },
  dims: AttentionBidirDims,
  kernel: AttentionBidirKernel = attentionBidirKernel(dims),
): void {
  const { B, T, C, NH } = dims;
  if (!(Number.isInteger(C / NH) && C / NH > 0))
    throw new Error(`attentionBidir: C ${C} is not a multiple of NH ${NH}`);
  const HS = C / NH;
  if (kernel === 'tiled' && !(HS % 4 === 0 && HS <= MAX_HS)) {
    throw new Error(`attentionBidir: the tiled kernel needs HS % 4 == 0 and HS <= ${MAX_HS}, got HS ${HS}`);
  }
  if (B === 0 || T === 0) return;
  const pipeline =
    kernel === 'tiled'
      ? gpu.pipelines.get(wgsl, 'attention_bidir_tiled', { HS4: HS / 4 })
      : gpu.pipelines.get(wgsl, 'attention_bidir_naive');
  gpu.dispatch(pipeline, {
    uniforms: PARAMS.pack({ B, T, C, NH, has_mask: Boolean(mask), scale: 1 / Math.sqrt(HS) }),
    // With no mask, qkv is bound in its place; the kernels never read it then.
    buffers: [qkv, mask ?? qkv, out],
    workgroups: [Math.ceil(T / WG_Q), NH, B],
  });
}
