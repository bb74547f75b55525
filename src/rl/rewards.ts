/**
 * Per-token rewards: TRL 0.9.6 PPOTrainer._kl_penalty and PPOTrainer.compute_rewards.
 *
 *   kl[b,t]              = penalty(logprob[b,t], ref_logprob[b,t])            (see KLPenalty)
 *   non_score_reward[b,t] = -kl_coef * kl[b,t]
 *   reward[b,t]          = non_score_reward[b,t] + (t == last[b] ? score[b] : 0)
 *
 * where last[b] is the last index t with masks[b,t] != 0 (mask.nonzero()[-1]). Rewards are NOT
 * masked here: query and padding positions carry -kl_coef*kl too; compute_advantages masks them.
 */
import { checkLength, type NumArray } from './core.ts';

/**
 * TRL's kl_penalty modes, with d = logprob - ref_logprob:
 *  'kl' d, 'abs' |d|, 'mse' d^2/2, 'full' sum_v p_v (logp_v - ref_logp_v) = KL(p || ref) over the
 *  vocabulary (F.kl_div(ref, logp, log_target=True).sum(-1)), which needs full [.., V] log-probs.
 */
export type KLPenalty = 'kl' | 'abs' | 'mse' | 'full';

export const KL_PENALTIES: readonly KLPenalty[] = ['kl', 'abs', 'mse', 'full'];

/**
 * _kl_penalty over N positions. For 'kl' | 'abs' | 'mse', logprob and refLogprob are [N]
 * (log-prob of the sampled token). For 'full' they are [N, V] log-probs of the whole vocabulary
 * (log_softmax of the logits) and V must be given. Returns [N].
 */
export function klPenalty(
  { logprob, refLogprob }: { logprob: NumArray; refLogprob: NumArray },
  { N, V }: { N: number; V?: number },
  mode: KLPenalty,
): Float64Array {
  const out = new Float64Array(N);
  if (mode === 'full') {
    if (V === undefined) throw new Error("klPenalty 'full': V (vocabulary size) is required");
    checkLength("klPenalty 'full' logprob [N,V]", logprob, N * V);
    checkLength("klPenalty 'full' refLogprob [N,V]", refLogprob, N * V);
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let v = 0; v < V; v++) {
        const lp = logprob[n * V + v];
        s += Math.exp(lp) * (lp - refLogprob[n * V + v]);
      }
      out[n] = s;
    }
    return out;
  }
  checkLength('klPenalty logprob [N]', logprob, N);
  checkLength('klPenalty refLogprob [N]', refLogprob, N);
  for (let n = 0; n < N; n++) {
    const d = logprob[n] - refLogprob[n];
    if (mode === 'kl') out[n] = d;
    else if (mode === 'abs') out[n] = Math.abs(d);
    else if (mode === 'mse') out[n] = 0.5 * d * d;
    else throw new Error(`klPenalty: unknown mode '${String(mode)}'`);
  }
  return out;
}

export interface Rewards {
  /** [B, T] score on the last response token plus the KL penalty everywhere. */
  rewards: Float64Array;
  /** [B, T] -kl_coef * kls. */
  nonScoreRewards: Float64Array;
  /** [B, T] the per-token penalty of the chosen mode. */
  kls: Float64Array;
}

/**
 * compute_rewards(scores, logprobs, ref_logprobs, masks) with kl_ctl.value = klCoef.
 * scores [B]; masks [B, T]; logprobs and refLogprobs [B, T] (or [B, T, V] full log-probs for
 * klPenalty 'full'). Throws when a row of masks has no nonzero entry (TRL raises IndexError).
 */
export function computeRewards(
  {
    scores,
    logprobs,
    refLogprobs,
    masks,
  }: { scores: NumArray; logprobs: NumArray; refLogprobs: NumArray; masks: NumArray },
  { B, T, V }: { B: number; T: number; V?: number },
  { klCoef, klPenalty: mode }: { klCoef: number; klPenalty: KLPenalty },
): Rewards {
  checkLength('computeRewards scores [B]', scores, B);
  checkLength('computeRewards masks [B,T]', masks, B * T);
  const kls = klPenalty({ logprob: logprobs, refLogprob: refLogprobs }, { N: B * T, V }, mode);
  const nonScoreRewards = new Float64Array(B * T);
  for (let i = 0; i < B * T; i++) nonScoreRewards[i] = -klCoef * kls[i];
  const rewards = Float64Array.from(nonScoreRewards);
  for (let b = 0; b < B; b++) {
    const last = lastNonzero(masks, b, T);
    if (last < 0) throw new Error(`computeRewards: masks row ${b} has no response token (all zero)`);
    rewards[b * T + last] += scores[b];
  }
  return { rewards, nonScoreRewards, kls };
}

/** The last t with masks[b,t] != 0, or -1. */
export function lastNonzero(masks: NumArray, b: number, T: number): number {
  for (let t = T - 1; t >= 0; t--) if (masks[b * T + t] !== 0) return t;
  return -1;
}
