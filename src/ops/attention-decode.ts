/**
 * attention-decode: the KV cache of token-by-token generation, and the attention of one new query per
 * row over it (the forward of GPT-2's attention for the last position only; no backward: generation
 * never trains).
 *
 *   kv (2, B, NH, maxT, HS)   kv[0] keys, kv[1] values; one (maxT, HS) slab per (b, h), so a head's
 *                             keys are contiguous along the cache
 *   kvCacheWrite     rows t < T of qkv (B, T, 3C) go to cache indices t0 + t:
 *                    kv[0, b, h, t0 + t, :] = k of qkv[b, t],  kv[1, b, h, t0 + t, :] = v of qkv[b, t]
 *                    (prefill: T = prompt length, t0 = 0; one decode step: T = 1, t0 = its index)
 *   attentionDecode  qkv (B, 3C) of the new tokens (their k, v already written at index Tk - 1);
 *                    out (B, C) = per head softmax_j(q . k_j / sqrt(HS)) @ v_j over the keys j < Tk
 *                    with mask[b, j] != 0, heads concatenated. mask (B, maxT) u32: 0 = a padded
 *                    prompt position. Causality is implicit: keys past Tk - 1 are not read.
 * Row b's result is what attentionForward gives its query at cache index Tk - 1 (see attention.ts).
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './attention-decode.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', {
  B: 'u32',
  C: 'u32',
  NH: 'u32',
  HS: 'u32',
  maxT: 'u32',
  T: 'u32',
  t0: 'u32',
  Tk: 'u32',
  scale: 'f32',
});

type Floats = Float32Array | Float64Array;
type Mask = Int32Array | Uint32Array;

export interface KvCacheDims {
  B: number;
  C: number;
  NH: number;
  /** Cache length: the stride of kv along t, and of mask. */
  maxT: number;
}

export interface KvWriteDims extends KvCacheDims {
  /** Rows per batch row in qkv. */
  T: number;
  /** Cache index that qkv's row 0 goes to. */
  t0: number;
}

export interface DecodeDims extends KvCacheDims {
  /** Keys 0 .. Tk-1 are read (the new token's own key is Tk - 1). */
  Tk: number;
}

const WG = 64; // attention-decode.wgsl
/** attention-decode.wgsl's workgroup arrays: the longest cache and the widest head. */
export const DECODE_MAX_T = 1024;
const MAX_HS = 256;

/** Floats in one KV cache (K and V) of these dims. */
export function kvCacheSize({ B, C, maxT }: KvCacheDims): number {
  return 2 * B * maxT * C;
}

/** CPU reference of kvCacheWrite. */
export function kvCacheWriteCpu({ kv }: { kv: Floats }, { qkv }: { qkv: Floats }, d: KvWriteDims): void {
  const { B, C, NH, maxT, T, t0 } = d;
  const HS = C / NH;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        const h = Math.floor(c / HS);
        const dst = ((b * NH + h) * maxT + t0 + t) * HS + (c % HS);
        kv[dst] = qkv[(b * T + t) * 3 * C + C + c];
        kv[dst + B * C * maxT] = qkv[(b * T + t) * 3 * C + 2 * C + c];
      }
    }
  }
}

/** CPU reference of attentionDecode, float64 accumulation: writes out (B, C). */
export function attentionDecodeCpu(
  { out }: { out: Floats },
  { qkv, kv, mask }: { qkv: Floats; kv: Floats; mask: Mask },
  { B, C, NH, maxT, Tk }: DecodeDims,
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const w = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const slab = (b * NH + h) * maxT * HS;
      let max = -Infinity;
      for (let j = 0; j < Tk; j++) {
        if (mask[b * maxT + j] === 0) continue;
        let s = 0;
        for (let i = 0; i < HS; i++) s += qkv[b * 3 * C + h * HS + i] * kv[slab + j * HS + i];
        w[j] = s * scale;
        max = Math.max(max, w[j]);
      }
      let sum = 0;
      for (let j = 0; j < Tk; j++) sum += w[j] = mask[b * maxT + j] === 0 ? 0 : Math.exp(w[j] - max);
      for (let i = 0; i < HS; i++) {
        let acc = 0;
        for (let j = 0; j < Tk; j++) acc += w[j] * kv[B * C * maxT + slab + j * HS + i];
        out[b * C + h * HS + i] = acc / sum;
      }
    }
  }
}

function uniforms(
  { B, C, NH, maxT }: KvCacheDims,
  { T = 0, t0 = 0, Tk = 0 }: { T?: number; t0?: number; Tk?: number },
): Uint8Array {
  const HS = C / NH;
  if (!Number.isInteger(HS) || HS > MAX_HS)
    throw new Error(`attention-decode: C=${C} NH=${NH} gives HS=${HS}`);
  return PARAMS.pack({ B, C, NH, HS, maxT, T, t0, Tk, scale: 1 / Math.sqrt(HS) });
}

/** kv[:, b, :, t0 + t] = k, v of qkv[b, t] for t < T. */
export function kvCacheWrite(
  gpu: Gpu,
  { kv }: { kv: Bindable },
  { qkv }: { qkv: Bindable },
  d: KvWriteDims,
): void {
  if (d.t0 + d.T > d.maxT)
    throw new Error(`kvCacheWrite: rows ${d.t0}..${d.t0 + d.T} overrun maxT ${d.maxT}`);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'kv_cache_write'), {
    uniforms: uniforms(d, d),
    buffers: [qkv, kv],
    workgroups: [Math.ceil(d.C / WG), d.T, d.B],
  });
}

function checkDecode({ Tk, maxT }: DecodeDims): void {
  if (!(Tk >= 1 && Tk <= maxT)) throw new Error(`attentionDecode: Tk ${Tk} is outside 1..maxT (${maxT})`);
}

/**
 * out (B, C) for the new queries in qkv (B, 3C), with vec4 loads and workgroup reductions; needs
 * HS % 4 == 0 and Tk <= DECODE_MAX_T, else use attentionDecodeSimple.
 */
export function attentionDecode(
  gpu: Gpu,
  { out }: { out: Bindable },
  { qkv, kv, mask }: { qkv: Bindable; kv: Bindable; mask: Bindable },
  d: DecodeDims,
): void {
  checkDecode(d);
  if ((d.C / d.NH) % 4 !== 0)
    throw new Error(`attentionDecode: head size ${d.C / d.NH} is not a multiple of 4`);
  if (d.Tk > DECODE_MAX_T) throw new Error(`attentionDecode: Tk ${d.Tk} exceeds ${DECODE_MAX_T}`);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_decode'), {
    uniforms: uniforms(d, d),
    buffers: [qkv, mask, kv, out],
    workgroups: [d.NH, d.B],
  });
}

/** The simple kernel (one invocation per (b, h), serial loops, any head size): the reference. */
export function attentionDecodeSimple(
  gpu: Gpu,
  { out }: { out: Bindable },
  { qkv, kv, mask }: { qkv: Bindable; kv: Bindable; mask: Bindable },
  d: DecodeDims,
): void {
  checkDecode(d);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'attention_decode_simple'), {
    uniforms: uniforms(d, d),
    buffers: [qkv, mask, kv, out],
    workgroups: [Math.ceil((d.B * d.NH) / WG)],
  });
}

/** attentionDecode where it applies (HS % 4 == 0, Tk <= DECODE_MAX_T), else the simple kernel. */
export function attentionDecodeAuto(
  gpu: Gpu,
  outs: { out: Bindable },
  ins: { qkv: Bindable; kv: Bindable; mask: Bindable },
  d: DecodeDims,
): void {
  const fast = (d.C / d.NH) % 4 === 0 && d.Tk <= DECODE_MAX_T;
  (fast ? attentionDecode : attentionDecodeSimple)(gpu, outs, ins, d);
}
