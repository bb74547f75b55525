/**
 * crossentropy: the mean next-token cross-entropy of transformers' ForCausalLMLoss, a thin layer over
 * logprobs (temperature 1):
 *
 *   targets (B*T)  labels shifted left by one; each sequence's last position ignored (-100)
 *   losses  (B*T)  -logprob[target], 0 where ignored   (the GPU writes logprob; losses = -logprob)
 *   loss           sum(losses) / count, count = rows whose target is not ignored (over all chunks)
 *   dlogits        logprobs backward with dlogprob = -dloss / count on every row (ignored rows get 0)
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import {
  logprobsBackward,
  logprobsBackwardCpu,
  logprobsForward,
  logprobsForwardCpu,
  type LogitsDims,
} from './logprobs.ts';

/** The label that transformers (and PyTorch's cross_entropy default) leave out of the loss. */
export const IGNORE_INDEX = -100;

/** Next-token targets (B*T) from labels (B, T): targets[b, t] = labels[b, t + 1], the last ignored. */
export function shiftLabels(labels: ArrayLike<number>, { B, T }: { B: number; T: number }): Int32Array {
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) targets[b * T + t] = labels[b * T + t + 1];
  }
  return targets;
}

/** Rows that count towards the mean: targets that are not ignored (negative). */
export function countTargets(targets: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] >= 0) count++;
  return count;
}

/** CPU reference in float64 for one chunk: losses (R), and loss = their sum / count. */
export function crossentropyForwardCpu(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: LogitsDims & { count: number },
): { losses: Float64Array; loss: number } {
  const logprob =
    logprobsForwardCpu(logits, targets, { ...dims, temperature: 1 }).logprob ?? new Float64Array(0);
  const losses = logprob.map((lp) => -lp);
  return { losses, loss: losses.reduce((a, b) => a + b, 0) / dims.count };
}

/** CPU reference in float64: dlogits (R, ldV) of dloss * loss; padding columns 0. */
export function crossentropyBackwardCpu(
  logits: ArrayLike<number>,
  { targets, lse }: { targets: ArrayLike<number>; lse: ArrayLike<number> },
  { count, dloss = 1, ...dims }: LogitsDims & { count: number; dloss?: number },
): Float64Array {
  const dlogprob = -dloss / count;
  return logprobsBackwardCpu(
    logits,
    { targets, lse, entropy: null, dlogprob, dentropy: null },
    { ...dims, temperature: 1 },
  );
}

/** The mean loss from the GPU's logprob of every row (ignored rows hold 0). */
export function crossentropyLoss(logprob: ArrayLike<number>, count: number): number {
  let sum = 0;
  for (let i = 0; i < logprob.length; i++) sum -= logprob[i];
  return sum / count;
}

/** logprob (= -loss per row), lse and entropy of the chunk's rows. */
export function crossentropyForward(
  gpu: Gpu,
  { logprob, lse, entropy }: { logprob: Bindable; lse: Bindable; entropy: Bindable },
  { logits, targets }: { logits: Bindable; targets: Bindable },
  dims: LogitsDims,
): void {
  logprobsForward(gpu, { logprob, lse, entropy }, { logits, targets }, { ...dims, temperature: 1 });
}

/** Overwrites dlogits (R, ldV) with d(dloss * loss)/dlogits; in place into the logits chunk is allowed. */
export function crossentropyBackward(
  gpu: Gpu,
  { dlogits }: { dlogits: Bindable },
  { logits, targets, lse }: { logits: Bindable; targets: Bindable; lse: Bindable },
  { count, dloss = 1, ...dims }: LogitsDims & { count: number; dloss?: number },
): void {
  if (!(count > 0)) throw new Error(`crossentropyBackward: count ${count}: no targets to average over`);
  logprobsBackward(
    gpu,
    { dlogits },
    { logits, targets, lse, entropy: null, dlogprob: -dloss / count, dentropy: null },
    { ...dims, temperature: 1 },
  );
}
