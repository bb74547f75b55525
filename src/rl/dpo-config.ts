/**
 * DPOConfig of TRL 0.19.0 (trl/trainer/dpo_config.py), the fields a single-device run of our DPO
 * uses, over transformers' TrainingArguments (src/rl/training-args.ts), plus the learning-rate
 * schedule and the update count of the Trainer:
 *
 *   schedule   lr_scheduler_type "linear" (default): warmup W updates from 0, then linear decay to 0
 *                lr_k = lr * k / W                     for k < W
 *                lr_k = lr * (N - k) / (N - W)         after  (get_linear_schedule_with_warmup)
 *              "constant": lr;  "constant_with_warmup": lr * min(1, k / W)
 *              W = warmup_steps when > 0, else ceil(warmup_ratio * N)
 *   updates    N = max_steps when > 0, else ceil(num_train_epochs * U), U = ceil(ceil(rows / batch) / GA)
 *              (an epoch's last update may accumulate fewer micro-batches)
 */
import { DPO_TOKENIZE_DEFAULTS, type PreferenceTokenizeConfig } from '../data/preferences.ts';
import { DPO_LOSS_TYPES, type DPOLossSettings, type DPOLossType } from './dpo.ts';
import { TRAINING_ARGS_DEFAULTS, validateTrainingArgs, type TrainingArgs } from './training-args.ts';

export const LR_SCHEDULER_TYPES = ['linear', 'constant', 'constant_with_warmup'] as const;
export type LRSchedulerType = (typeof LR_SCHEDULER_TYPES)[number];

export interface DPOConfig extends TrainingArgs, PreferenceTokenizeConfig {
  /** Micro-batches per update; the loss of each is divided by the update's micro-batch count. */
  gradient_accumulation_steps: number;
  lr_scheduler_type: LRSchedulerType;
  warmup_steps: number;
  warmup_ratio: number;
  /** Temperature of the implicit reward; the loss ignores the reference as beta -> 0. */
  beta: number;
  loss_type: DPOLossType;
  label_smoothing: number;
  /** Reference log-probs of every pair computed once before training; the reference is then freed. */
  precompute_ref_log_probs: boolean;
}

/** TRL 0.19.0's DPOConfig defaults (learning_rate 1e-6 overrides TrainingArguments' 5e-5). */
export const DPO_CONFIG_DEFAULTS: DPOConfig = {
  ...TRAINING_ARGS_DEFAULTS,
  ...DPO_TOKENIZE_DEFAULTS,
  learning_rate: 1e-6,
  gradient_accumulation_steps: 1,
  lr_scheduler_type: 'linear',
  warmup_steps: 0,
  warmup_ratio: 0,
  beta: 0.1,
  loss_type: 'sigmoid',
  label_smoothing: 0,
  precompute_ref_log_probs: false,
};

/** Checks every field; throws a RangeError naming the first bad one. */
export function validateDPOConfig(c: DPOConfig): DPOConfig {
  validateTrainingArgs(c);
  const bad = (k: keyof DPOConfig, want: string) => {
    throw new RangeError(`${k} must be ${want}, got ${String(c[k])}`);
  };
  if (!(Number.isInteger(c.gradient_accumulation_steps) && c.gradient_accumulation_steps > 0))
    bad('gradient_accumulation_steps', 'a positive integer');
  if (!LR_SCHEDULER_TYPES.includes(c.lr_scheduler_type))
    bad('lr_scheduler_type', `one of ${LR_SCHEDULER_TYPES.join(', ')}`);
  if (!(Number.isInteger(c.warmup_steps) && c.warmup_steps >= 0)) bad('warmup_steps', 'an integer >= 0');
  if (!(c.warmup_ratio >= 0 && c.warmup_ratio <= 1)) bad('warmup_ratio', 'in [0, 1]');
  if (!(c.beta > 0 && Number.isFinite(c.beta))) bad('beta', 'a number > 0');
  if (!DPO_LOSS_TYPES.includes(c.loss_type)) bad('loss_type', `one of ${DPO_LOSS_TYPES.join(', ')}`);
  if (!(c.label_smoothing >= 0 && c.label_smoothing < 0.5)) bad('label_smoothing', 'in [0, 0.5)');
  for (const k of ['max_length', 'max_prompt_length', 'max_completion_length'] as const) {
    const v = c[k];
    if (v !== null && !(Number.isInteger(v) && v > 0)) bad(k, 'a positive integer or none');
  }
  return c;
}

export function lossSettings(c: DPOConfig): DPOLossSettings {
  return { beta: c.beta, lossType: c.loss_type, labelSmoothing: c.label_smoothing };
}

/** Updates per epoch over `rows` pairs: ceil(ceil(rows / batch) / GA). */
export function updatesPerEpoch(rows: number, c: DPOConfig): number {
  return Math.max(
    1,
    Math.ceil(Math.ceil(rows / c.per_device_train_batch_size) / c.gradient_accumulation_steps),
  );
}

/** N: the updates of a run over `rows` pairs. */
export function dpoTotalSteps(rows: number, c: DPOConfig): number {
  if (c.max_steps > 0) return c.max_steps;
  return Math.ceil(c.num_train_epochs * updatesPerEpoch(rows, c));
}

/** W: warmup updates of a run of `total` updates. */
export function warmupSteps(total: number, c: DPOConfig): number {
  return c.warmup_steps > 0 ? c.warmup_steps : Math.ceil(c.warmup_ratio * total);
}

/** The learning rate of update k (0-based) of `total`. */
export function scheduledLearningRate(c: DPOConfig, k: number, total: number): number {
  const W = warmupSteps(total, c);
  const lr = c.learning_rate;
  if (c.lr_scheduler_type === 'constant') return lr;
  if (k < W) return (lr * k) / Math.max(1, W);
  if (c.lr_scheduler_type === 'constant_with_warmup') return lr;
  return (lr * Math.max(0, total - k)) / Math.max(1, total - W);
}
