/**
 * Optional score scaling, normalisation and clipping at the start of TRL 0.9.6 PPOTrainer.step:
 *
 *   if use_score_scaling:
 *     running.update(scores)
 *     factor = running.std + eps(float32)
 *     scores = use_score_norm ? (scores - running.mean) / factor : scores / factor
 *   if score_clip is not None:
 *     scores = clip(scores, -score_clip, score_clip)
 *
 * The running statistics include the current batch. TRL's scores are float32, hence the float32
 * machine epsilon; use_score_norm alone (without use_score_scaling) does nothing, as in TRL.
 */
import { mean, type NumArray } from './core.ts';

/** torch.finfo(torch.float32).eps */
export const F32_EPS = 2 ** -23;

/**
 * trl.trainer.utils.RunningMoments (single process): running mean and variance of a stream,
 * merged batch by batch (Chan et al.), starting from mean 0, var 1, count 1e-24.
 */
export class RunningMoments {
  mean = 0;
  std = 1;
  var = 1;
  count = 1e-24;

  /**
   * Merges the batch xs; returns the batch's own mean and unbiased std (TRL returns them too).
   * `std` becomes the unbiased std of everything seen: sqrt(var * count / (count - 1)).
   */
  update(xs: NumArray): { mean: number; std: number } {
    const n = xs.length;
    const xsMean = mean(xs);
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (xs[i] - xsMean) ** 2;
    const xsVar = ss / n; // torch.var_mean(unbiased=False)

    const delta = xsMean - this.mean;
    const totCount = this.count + n;
    const newSum = xsVar * n;
    // correct the old sum of squares for the shift of the mean
    const oldSum = this.var * this.count + (delta ** 2 * this.count * n) / totCount;
    const totSum = oldSum + newSum;

    this.mean += (delta * n) / totCount;
    this.var = totSum / totCount;
    this.std = Math.sqrt((this.var * totCount) / (totCount - 1));
    this.count = totCount;
    return { mean: xsMean, std: Math.sqrt((xsVar * n) / (n - 1)) };
  }
}

export interface ScoreSettings {
  use_score_scaling: boolean;
  use_score_norm: boolean;
  score_clip: number | null;
}

/**
 * The scores [B] that compute_rewards sees. Updates `running` when use_score_scaling (one
 * RunningMoments per trainer, kept across steps). Returns a new array.
 */
export function scaleScores(
  scores: NumArray,
  running: RunningMoments,
  settings: ScoreSettings,
): Float64Array {
  const out = Float64Array.from(scores);
  if (settings.use_score_scaling) {
    running.update(out);
    const factor = running.std + F32_EPS;
    for (let i = 0; i < out.length; i++) {
      out[i] = settings.use_score_norm ? (out[i] - running.mean) / factor : out[i] / factor;
    }
  }
  const clip = settings.score_clip;
  if (clip !== null) {
    for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(out[i], -clip), clip);
  }
  return out;
}
