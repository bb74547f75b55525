/**
 * Generalised advantage estimation: TRL 0.9.6 PPOTrainer.compute_advantages.
 *
 *   values  = values * mask;  rewards = rewards * mask
 *   rewards = masked_whiten(rewards, mask, shift_mean=False)          if whiten_rewards
 *   delta[t] = rewards[t] + gamma * values[t+1] - values[t]             (values[T] = 0)
 *   gae[t]   = delta[t] + gamma * lam * gae[t+1]                        (gae[T] = 0)
 *   returns  = gae + values                                             (before whitening)
 *   advantages = masked_whiten(gae, mask)                               (mean 0, unit variance)
 *
 * The recursion runs over the whole row, query and padding included (masked values and rewards are
 * 0 there), exactly as TRL; only masked positions enter the whitening statistics.
 */
import { checkLength, maskedWhiten, type NumArray } from './core.ts';

export interface AdvantageSettings {
  /** Discount factor (PPOConfig.gamma). */
  gamma: number;
  /** GAE lambda (PPOConfig.lam). */
  lam: number;
  /** Whiten the masked rewards (scale only) before GAE (PPOConfig.whiten_rewards). */
  whitenRewards: boolean;
}

export interface Advantages {
  /** [B, T] values * mask. */
  values: Float64Array;
  /** [B, T] whitened GAE advantages. */
  advantages: Float64Array;
  /** [B, T] un-whitened GAE advantages + masked values. */
  returns: Float64Array;
}

/** compute_advantages(values, rewards, mask): values, rewards, masks are [B, T]. */
export function computeAdvantages(
  { values, rewards, masks }: { values: NumArray; rewards: NumArray; masks: NumArray },
  { B, T }: { B: number; T: number },
  { gamma, lam, whitenRewards }: AdvantageSettings,
): Advantages {
  checkLength('computeAdvantages values [B,T]', values, B * T);
  checkLength('computeAdvantages rewards [B,T]', rewards, B * T);
  checkLength('computeAdvantages masks [B,T]', masks, B * T);
  const mvalues = new Float64Array(B * T);
  let mrewards: Float64Array = new Float64Array(B * T);
  for (let i = 0; i < B * T; i++) {
    mvalues[i] = values[i] * masks[i];
    mrewards[i] = rewards[i] * masks[i];
  }
  if (whitenRewards) mrewards = maskedWhiten(mrewards, masks, { shiftMean: false });

  const gae = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const next = t < T - 1 ? mvalues[b * T + t + 1] : 0;
      const delta = mrewards[b * T + t] + gamma * next - mvalues[b * T + t];
      last = delta + gamma * lam * last;
      gae[b * T + t] = last;
    }
  }
  const returns = new Float64Array(B * T);
  for (let i = 0; i < B * T; i++) returns[i] = gae[i] + mvalues[i];
  return { values: mvalues, advantages: maskedWhiten(gae, masks), returns };
}
