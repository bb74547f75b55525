/**
 * DPO statistic names (TRL 0.19 DPOTrainer.get_batch_loss_metrics, without the `eval_` prefix),
 * the one list trainer, CLI and charts share, and their reductions. Per micro-batch of n pairs:
 *   loss                 mean of the per-pair losses
 *   rewards/chosen       mean beta (pc - rc);   rewards/rejected  mean beta (pr - rr)
 *   rewards/accuracies   mean [chosen reward > rejected reward]
 *   rewards/margins      mean (chosen reward - rejected reward)
 *   logps/chosen         mean pc;   logps/rejected   mean pr   (means over tokens for ipo)
 *   logits/chosen        mean logit over the chosen completions' rows and the vocabulary; same for rejected
 * A step's value is the mean over its micro-batches (TRL stores each micro-batch's metrics and
 * averages them when it logs; here every step is logged). The trainer adds learning_rate,
 * grad_norm (before clipping) and epoch, as the Trainer logs them.
 */
import { mean } from './core.ts';
import type { DPOLoss } from './dpo.ts';

export const DPO_BATCH_STAT_NAMES = [
  'loss',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/accuracies',
  'rewards/margins',
  'logps/chosen',
  'logps/rejected',
  'logits/chosen',
  'logits/rejected',
] as const;
export type DPOBatchStatName = (typeof DPO_BATCH_STAT_NAMES)[number];
export type DPOBatchStats = Record<DPOBatchStatName, number>;

export const DPO_TRAINER_STAT_NAMES = ['learning_rate', 'grad_norm', 'epoch'] as const;
export type DPOTrainerStatName = (typeof DPO_TRAINER_STAT_NAMES)[number];

export const DPO_STAT_NAMES = [...DPO_BATCH_STAT_NAMES, ...DPO_TRAINER_STAT_NAMES] as const;
export type DPOStatName = (typeof DPO_STAT_NAMES)[number];
export type DPOStats = Record<DPOStatName, number>;

/** The stats of one micro-batch. */
export function dpoBatchStats(
  loss: DPOLoss,
  policy: { chosen: ArrayLike<number>; rejected: ArrayLike<number> },
  meanLogits: { chosen: number; rejected: number },
): DPOBatchStats {
  const { chosenRewards: cr, rejectedRewards: rr } = loss;
  return {
    loss: loss.loss,
    'rewards/chosen': mean(cr),
    'rewards/rejected': mean(rr),
    'rewards/accuracies': mean(cr.map((c, i) => (c > rr[i] ? 1 : 0))),
    'rewards/margins': mean(cr.map((c, i) => c - rr[i])),
    'logps/chosen': mean(policy.chosen),
    'logps/rejected': mean(policy.rejected),
    'logits/chosen': meanLogits.chosen,
    'logits/rejected': meanLogits.rejected,
  };
}

/** The mean of each stat over a step's micro-batches. */
export function meanBatchStats(all: readonly DPOBatchStats[]): DPOBatchStats {
  if (all.length === 0) throw new Error('meanBatchStats: no micro-batch stats');
  const out = {} as DPOBatchStats;
  for (const k of DPO_BATCH_STAT_NAMES) out[k] = mean(all.map((s) => s[k]));
  return out;
}
