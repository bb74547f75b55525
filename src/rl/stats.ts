/**
 * PPO statistic names (TRL 0.9.6 legacy PPOTrainer.step / record_step_stats / log_stats), the one
 * list that trainer, worker and charts share, and the reductions that produce them.
 *
 * Scalars are numbers; "dists" are arrays TRL logs as histograms. Which code fills which name:
 *  - ppoLoss (loss.ts), per minibatch: LOSS_STAT_NAMES (TRL's loss() stats, flatten_dict'ed).
 *  - recordStepStats, per step: objective/*, ppo/mean_*, ppo/std_scores, tokens/*, and
 *    'ppo/' + each loss stat averaged over all minibatches of all PPO epochs, ppo/val/var_explained.
 *  - the trainer: ppo/learning_rate and the time/ppo/* timings (seconds).
 *  - envStats (TRL log_stats), from the raw scores the reward model gave: env/*.
 */
import { checkLength, maskedMean, mean, stdUnbiased, type NumArray } from './core.ts';

/** Scalar stats of one minibatch's loss, in TRL's order. */
export const LOSS_STAT_NAMES = [
  'loss/policy',
  'loss/value',
  'loss/total',
  'policy/entropy',
  'policy/approxkl',
  'policy/policykl',
  'policy/clipfrac',
  'policy/advantages_mean',
  'returns/mean',
  'returns/var',
  'val/vpred',
  'val/error',
  'val/clipfrac',
  'val/mean',
  'val/var',
] as const;
export type LossStatName = (typeof LOSS_STAT_NAMES)[number];
export type LossStats = Record<LossStatName, number>;

/** Scalars that recordStepStats fills. */
export const STEP_STAT_NAMES = [
  'objective/kl',
  'objective/kl_coef',
  'objective/entropy',
  'ppo/mean_non_score_reward',
  'ppo/mean_scores',
  'ppo/std_scores',
  'tokens/queries_len_mean',
  'tokens/queries_len_std',
  'tokens/responses_len_mean',
  'tokens/responses_len_std',
  ...LOSS_STAT_NAMES.map((k) => `ppo/${k}` as const),
  'ppo/val/var_explained',
] as const;
export type StepStatName = (typeof STEP_STAT_NAMES)[number];

/** Scalars that the trainer measures itself. */
export const TRAINER_STAT_NAMES = [
  'ppo/learning_rate',
  'time/ppo/forward_pass',
  'time/ppo/compute_rewards',
  'time/ppo/compute_advantages',
  'time/ppo/optimize_step',
  'time/ppo/calc_stats',
  'time/ppo/total',
] as const;
export type TrainerStatName = (typeof TRAINER_STAT_NAMES)[number];

/** Scalars of log_stats, from the raw (unscaled) scores. */
export const ENV_STAT_NAMES = ['env/reward_mean', 'env/reward_std'] as const;
export type EnvStatName = (typeof ENV_STAT_NAMES)[number];

/** Every scalar stat of a PPO step, in the order charts list them. */
export const SCALAR_STAT_NAMES = [...ENV_STAT_NAMES, ...STEP_STAT_NAMES, ...TRAINER_STAT_NAMES] as const;
export type ScalarStatName = (typeof SCALAR_STAT_NAMES)[number];

/** Array-valued stats (histograms in TRL's loggers). */
export const DIST_STAT_NAMES = [
  'objective/kl_dist',
  'objective/logprobs',
  'objective/ref_logprobs',
  'tokens/queries_dist',
  'tokens/responses_dist',
  'ppo/policy/advantages',
  'ppo/policy/ratio',
  'env/reward_dist',
] as const;
export type DistStatName = (typeof DIST_STAT_NAMES)[number];

export type StatName = ScalarStatName | DistStatName;

/**
 * stack_dicts(all_stats) then torch.mean(v, axis=0) for each scalar loss stat: the plain mean
 * over every minibatch of every PPO epoch (and of an epoch cut short by early stopping).
 * Keys come back prefixed 'ppo/', as record_step_stats writes them.
 */
export function aggregateLossStats(all: readonly LossStats[]): Record<`ppo/${LossStatName}`, number> {
  if (all.length === 0) throw new Error('aggregateLossStats: no minibatch stats');
  const out = {} as Record<`ppo/${LossStatName}`, number>;
  for (const k of LOSS_STAT_NAMES) out[`ppo/${k}`] = mean(all.map((s) => s[k]));
  return out;
}

export interface StepStatInputs {
  /** [B] scores after scaling and clipping (what compute_rewards used). */
  scores: NumArray;
  /** [B, T] log-probs of the sampled tokens under the policy, before optimisation. */
  logprobs: NumArray;
  /** [B, T] the same under the reference model. */
  refLogprobs: NumArray;
  /** [B, T] -kl_coef * kls from computeRewards. */
  nonScoreRewards: NumArray;
  /** [B, T] per-token KL penalty from computeRewards. */
  kls: NumArray;
  /** [B, T] 1 on response tokens. */
  masks: NumArray;
  /** [B] token counts of each query and each response. */
  queryLens: NumArray;
  responseLens: NumArray;
  /** The loss stats of every minibatch of this step, in order. */
  trainStats: readonly LossStats[];
  /** kl_ctl.value used for this step's rewards (before the controller's update). */
  klCoef: number;
}

export interface StepStats {
  scalars: Record<StepStatName, number>;
  dists: Record<
    Exclude<DistStatName, 'ppo/policy/advantages' | 'ppo/policy/ratio' | 'env/reward_dist'>,
    Float64Array
  >;
}

/**
 * record_step_stats: kl_list[b] = sum_t kls*mask, objective/kl = mean_b kl_list (the number the
 * adaptive KL controller is updated with), objective/entropy = mean_b sum_t -logprobs*mask,
 * ppo/mean_non_score_reward = masked_mean(non_score_reward), scores mean and unbiased std, token
 * length mean and unbiased std, the loss stats averaged over minibatches, and
 * ppo/val/var_explained = 1 - ppo/val/error / ppo/returns/var (of the averages).
 */
export function recordStepStats(inp: StepStatInputs, { B, T }: { B: number; T: number }): StepStats {
  const { masks, kls, logprobs } = inp;
  for (const k of ['logprobs', 'refLogprobs', 'nonScoreRewards', 'kls', 'masks'] as const) {
    checkLength(`recordStepStats ${k} [B,T]`, inp[k], B * T);
  }
  for (const k of ['scores', 'queryLens', 'responseLens'] as const)
    checkLength(`recordStepStats ${k} [B]`, inp[k], B);
  const klList = new Float64Array(B);
  const negLogp = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      klList[b] += kls[b * T + t] * masks[b * T + t];
      negLogp[b] += -logprobs[b * T + t] * masks[b * T + t];
    }
  }
  const losses = aggregateLossStats(inp.trainStats);
  const scalars: Record<StepStatName, number> = {
    'objective/kl': mean(klList),
    'objective/kl_coef': inp.klCoef,
    'objective/entropy': mean(negLogp),
    'ppo/mean_non_score_reward': maskedMean(inp.nonScoreRewards, masks),
    'ppo/mean_scores': mean(inp.scores),
    'ppo/std_scores': stdUnbiased(inp.scores),
    'tokens/queries_len_mean': mean(inp.queryLens),
    'tokens/queries_len_std': stdUnbiased(inp.queryLens),
    'tokens/responses_len_mean': mean(inp.responseLens),
    'tokens/responses_len_std': stdUnbiased(inp.responseLens),
    ...losses,
    'ppo/val/var_explained': 1 - losses['ppo/val/error'] / losses['ppo/returns/var'],
  };
  return {
    scalars,
    dists: {
      'objective/kl_dist': klList,
      'objective/logprobs': Float64Array.from(inp.logprobs),
      'objective/ref_logprobs': Float64Array.from(inp.refLogprobs),
      'tokens/queries_dist': Float64Array.from(inp.queryLens),
      'tokens/responses_dist': Float64Array.from(inp.responseLens),
    },
  };
}

/** log_stats: env/reward_mean, env/reward_std (unbiased) of the raw scores [B]. */
export function envStats(rawScores: NumArray): Record<EnvStatName, number> {
  return { 'env/reward_mean': mean(rawScores), 'env/reward_std': stdUnbiased(rawScores) };
}
