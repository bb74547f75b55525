/**
 * TRL's RewardTrainer.compute_loss (TRL 1.x, trl/trainer/reward_trainer.py), in float64, with its
 * gradient: for n pairs with scores r_c (chosen) and r_r (rejected), optional margins m,
 *
 *   loss = mean_i -logsigmoid(r_c[i] - r_r[i] - m[i])
 *        + center_rewards_coefficient * mean_i (r_c[i] + r_r[i])^2      (when the coefficient is set)
 *
 *   d loss / d r_c[i] = (-sigmoid(-x_i) + 2 c (r_c[i] + r_r[i])) / n,   x_i = r_c[i] - r_r[i] - m[i]
 *   d loss / d r_r[i] = ( sigmoid(-x_i) + 2 c (r_c[i] + r_r[i])) / n
 *
 * and the stats of the step by the names the studio charts (the issue's; TRL 1.x logs `accuracy`
 * and `margin` under the same definitions).
 */
import { checkLength, type NumArray } from './core.ts';

export const REWARD_STAT_NAMES = [
  'loss',
  'accuracy',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/margins',
] as const;
export type RewardStatName = (typeof REWARD_STAT_NAMES)[number];
export type RewardStats = Record<RewardStatName, number>;

export interface RewardLossOut {
  loss: number;
  /** d loss / d r_c, (n). */
  dchosen: Float64Array;
  /** d loss / d r_r, (n). */
  drejected: Float64Array;
  stats: RewardStats;
}

/** -logsigmoid(x) = softplus(-x) = log(1 + e^-x), without overflow for large |x|. */
export function negLogSigmoid(x: number): number {
  return x >= 0 ? Math.log1p(Math.exp(-x)) : -x + Math.log1p(Math.exp(x));
}

/** sigmoid(x) without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function rewardModelLoss(
  chosen: NumArray,
  rejected: NumArray,
  {
    margin = null,
    centerRewardsCoefficient = null,
  }: { margin?: NumArray | null; centerRewardsCoefficient?: number | null } = {},
): RewardLossOut {
  const n = chosen.length;
  if (n === 0) throw new Error('reward loss: no pairs');
  checkLength('rejected', rejected, n);
  if (margin) checkLength('margin', margin, n);
  const c = centerRewardsCoefficient ?? 0;
  const dchosen = new Float64Array(n);
  const drejected = new Float64Array(n);
  let nll = 0;
  let center = 0;
  let correct = 0;
  let sumC = 0;
  let sumR = 0;
  for (let i = 0; i < n; i++) {
    const x = chosen[i] - rejected[i] - (margin ? margin[i] : 0);
    const s = chosen[i] + rejected[i];
    nll += negLogSigmoid(x);
    center += s * s;
    const g = sigmoid(-x);
    dchosen[i] = (-g + 2 * c * s) / n;
    drejected[i] = (g + 2 * c * s) / n;
    if (chosen[i] > rejected[i]) correct++;
    sumC += chosen[i];
    sumR += rejected[i];
  }
  const loss = nll / n + (centerRewardsCoefficient === null ? 0 : c * (center / n));
  const stats: RewardStats = {
    loss,
    accuracy: correct / n,
    'rewards/chosen': sumC / n,
    'rewards/rejected': sumR / n,
    'rewards/margins': (sumC - sumR) / n,
  };
  return { loss, dchosen, drejected, stats };
}
