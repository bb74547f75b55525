/**
 * The largest PPO batch the adapter's limits allow, computed from the model's shapes, so that a
 * batch too big for the GPU is refused before any work with the limit that binds.
 *
 *  - grid: the encoder and attention kernels put the batch on one dispatch dimension
 *    (encoder (C/WG, T, B), attention (T/WG, NH, B)), so B <= maxComputeWorkgroupsPerDimension;
 *  - buffers: GPT-2's per-layer activations are single buffers, the largest being the attention
 *    probabilities (B, NH, T, T) and the MLP hidden (B, T, 4C) in f32; each must fit one storage
 *    binding and one buffer: B * max(NH T T, 4 T C) * 4 bytes <= min(maxStorageBufferBindingSize,
 *    maxBufferSize).
 *
 * T is the longest sequence a step can make: query-max-tokens - 1 + response-max-length - 1.
 */
import type { TrainingLimits } from '../gpu/device.ts';

export interface BatchShape {
  /** GPT-2 width and heads. */
  C: number;
  NH: number;
  /** Longest query + response, in tokens. */
  T: number;
}

export interface BatchLimit {
  maxBatch: number;
  /** Which limit binds, in words. */
  reason: string;
}

export function maxBatchSize(
  limits: Pick<
    TrainingLimits,
    'maxComputeWorkgroupsPerDimension' | 'maxStorageBufferBindingSize' | 'maxBufferSize'
  >,
  { C, NH, T }: BatchShape,
): BatchLimit {
  const grid = limits.maxComputeWorkgroupsPerDimension;
  const perSeq = Math.max(NH * T * T, 4 * T * C) * 4;
  const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const byBuffers = Math.floor(binding / perSeq);
  return byBuffers < grid
    ? {
        maxBatch: byBuffers,
        reason:
          `one layer's activations take ${perSeq} bytes per sequence (T ${T}, C ${C}, NH ${NH}) and a ` +
          `buffer binding holds ${binding} bytes on this adapter`,
      }
    : {
        maxBatch: grid,
        reason: `the batch is one dispatch dimension, at most ${grid} workgroups on this adapter`,
      };
}
