/**
 * entropy: the entropy of softmax(z), z = logits / temperature, per row of a logits chunk, as TRL's
 * entropy_from_logits computes it, and its backward; a thin layer over logprobs (no targets).
 *
 *   logits  (R, ldV)   chunk rows, V <= ldV columns used
 *   entropy (N)        H = logsumexp(z) - sum_j softmax(z)_j z_j      at row0 + r
 *   lse     (N)        logsumexp(z), saved for backward               at row0 + r
 *   dL/dlogits_j = -dentropy p_j (log p_j + H) / temperature,  p = softmax(z)
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

/** CPU reference in float64: entropy (R) of one chunk. */
export function entropyForwardCpu(logits: ArrayLike<number>, dims: LogitsDims): Float64Array {
  return logprobsForwardCpu(logits, null, dims).entropy;
}

/** CPU reference in float64: dlogits (R, ldV), padding columns 0; per-row inputs (R). */
export function entropyBackwardCpu(
  logits: ArrayLike<number>,
  {
    lse,
    entropy,
    dentropy,
  }: { lse: ArrayLike<number>; entropy: ArrayLike<number>; dentropy: ArrayLike<number> },
  dims: LogitsDims,
): Float64Array {
  return logprobsBackwardCpu(logits, { targets: null, lse, entropy, dlogprob: null, dentropy }, dims);
}

export function entropyForward(
  gpu: Gpu,
  { entropy, lse }: { entropy: Bindable; lse: Bindable },
  { logits }: { logits: Bindable },
  dims: LogitsDims,
): void {
  logprobsForward(gpu, { logprob: null, lse, entropy }, { logits, targets: null }, dims);
}

/** Overwrites dlogits (R, ldV) on columns < V; dlogits may be the logits chunk itself (in place). */
export function entropyBackward(
  gpu: Gpu,
  { dlogits }: { dlogits: Bindable },
  {
    logits,
    lse,
    entropy,
    dentropy,
  }: { logits: Bindable; lse: Bindable; entropy: Bindable; dentropy: Bindable },
  dims: LogitsDims,
): void {
  logprobsBackward(gpu, { dlogits }, { logits, targets: null, lse, entropy, dlogprob: null, dentropy }, dims);
}
