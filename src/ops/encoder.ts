/**
 * encoder: out (B, T, C) = wte[ids (B, T)] (V, C) + wpe[pos (B, T)] (maxT, C).
 * Position ids are explicit per token (left-padded rows start their positions after the padding).
 * ids and pos are u32 buffers on the GPU (non-negative i32 has the same bits).
 * Backward accumulates dwte += and dwpe += deterministically, without float atomics: ids and pos are
 * known on the CPU, so encoderBuckets groups the (b,t) indices by table row there; the kernel sums
 * each group in a fixed order and only touches rows that occur (wte is 50257 x 768).
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './encoder.wgsl';

/** The shader's uniform structs (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', { B: 'u32', T: 'u32', C: 'u32' });
export const BUCKET_PARAMS = uniformStruct('BucketParams', { C: 'u32', rows: 'u32' });

type Floats = Float32Array | Float64Array;
type Indices = Int32Array | Uint32Array;

export interface EncoderDims {
  B: number;
  T: number;
  C: number;
}

const WG = 64; // encoder.wgsl's workgroup size

/** CPU reference: out[b,t,:] = wte[ids[b,t], :] + wpe[pos[b,t], :]. */
export function encoderForwardCpu(
  { out }: { out: Floats },
  { ids, pos, wte, wpe }: { ids: Indices; pos: Indices; wte: Floats; wpe: Floats },
  { B, T, C }: EncoderDims,
): void {
  for (let bt = 0; bt < B * T; bt++) {
    for (let c = 0; c < C; c++) out[bt * C + c] = wte[ids[bt] * C + c] + wpe[pos[bt] * C + c];
  }
}

/** CPU reference: dwte[ids[b,t], :] += dout[b,t,:], dwpe[pos[b,t], :] += dout[b,t,:]. */
export function encoderBackwardCpu(
  { dwte, dwpe }: { dwte: Floats; dwpe: Floats },
  { dout, ids, pos }: { dout: Floats; ids: Indices; pos: Indices },
  { B, T, C }: EncoderDims,
): void {
  for (let bt = 0; bt < B * T; bt++) {
    for (let c = 0; c < C; c++) {
      dwte[ids[bt] * C + c] += dout[bt * C + c];
      dwpe[pos[bt] * C + c] += dout[bt * C + c];
    }
  }
}

export function encoderForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { ids, pos, wte, wpe }: { ids: Bindable; pos: Bindable; wte: Bindable; wpe: Bindable },
  { B, T, C }: EncoderDims,
): void {
  gpu.dispatch(gpu.pipelines.get(wgsl, 'encoder_forward'), {
    uniforms: PARAMS.pack({ B, T, C }),
    buffers: [out, ids, pos, wte, wpe],
    workgroups: [Math.ceil(C / WG), T, B],
  });
}

/** The (b,t) indices of one batch grouped by wte row and by wpe row, uploaded for encoderBackward. */
export interface EncoderBuckets {
  /** u32 [row (n) | start (n + 1) | item (B*T)], see bucketize. */
  wte: GPUBuffer;
  wteRows: number;
  wpe: GPUBuffer;
  wpeRows: number;
}

/** Groups the batch's indices on the CPU and uploads them; reusable for every backward on this batch. */
export function encoderBuckets(gpu: Gpu, { ids, pos }: { ids: Indices; pos: Indices }): EncoderBuckets {
  const wte = bucketize(ids);
  const wpe = bucketize(pos);
  return {
    wte: gpu.upload(wte.data, 'encoder buckets wte'),
    wteRows: wte.rows,
    wpe: gpu.upload(wpe.data, 'encoder buckets wpe'),
    wpeRows: wpe.rows,
  };
}

export function destroyEncoderBuckets(gpu: Gpu, buckets: EncoderBuckets): void {
  gpu.destroy(buckets.wte);
  gpu.destroy(buckets.wpe);
}

/** dwte += and dwpe += the dout rows of every (b,t), summed per table row in increasing (b,t) order. */
export function encoderBackward(
  gpu: Gpu,
  { dwte, dwpe }: { dwte: Bindable; dwpe: Bindable },
  { dout, buckets }: { dout: Bindable; buckets: EncoderBuckets },
  { C }: EncoderDims,
): void {
  const pipeline = gpu.pipelines.get(wgsl, 'encoder_backward_buckets');
  const groupsC = Math.ceil(C / WG);
  gpu.dispatch(pipeline, {
    uniforms: BUCKET_PARAMS.pack({ C, rows: buckets.wteRows }),
    buffers: [dwte, dout, buckets.wte],
    workgroups: [buckets.wteRows, groupsC],
  });
  gpu.dispatch(pipeline, {
    uniforms: BUCKET_PARAMS.pack({ C, rows: buckets.wpeRows }),
    buffers: [dwpe, dout, buckets.wpe],
    workgroups: [buckets.wpeRows, groupsC],
  });
}

/**
 * Counting sort of the flat indices 0..keys.length-1 by key: returns the distinct keys ascending
 * (row), where each one's indices begin in item (start, with start[n] = keys.length), and the
 * indices grouped by key, increasing within a group. Packed as [row | start | item].
 */
export function bucketize(keys: Indices): { data: Uint32Array; rows: number } {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] < 0) throw new Error(`encoder: negative index ${keys[i]} at ${i}`);
    let g = groups.get(keys[i]);
    if (!g) groups.set(keys[i], (g = []));
    g.push(i);
  }
  const row = [...groups.keys()].sort((a, b) => a - b);
  const n = row.length;
  const data = new Uint32Array(2 * n + 1 + keys.length);
  let next = 0;
  row.forEach((key, k) => {
    data[k] = key;
    data[n + k] = next;
    for (const i of groups.get(key) ?? []) data[2 * n + 1 + next++] = i;
  });
  data[2 * n] = next;
  return { data, rows: n };
}
