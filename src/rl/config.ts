/**
 * PPO hyperparameters with TRL 0.9.6 PPOConfig's field names and defaults (trl/trainer/ppo_config.py).
 *
 * Left out, since they only concern TRL's Python machinery: tracking and hub fields (exp_name,
 * log_with, task_name, model_name, query_dataset, reward_model, tracker_*, accelerator_kwargs,
 * project_kwargs, push_to_hub_if_best_kwargs, compare_steps, remove_unused_columns), device-cache
 * and checkpointing switches, the deprecated forward_batch_size, and the fields TRL fills at run
 * time (world_size, backward_batch_size, global_*; see backwardBatchSize). The optimiser is
 * torch.optim.Adam with its defaults (betas 0.9/0.999, eps 1e-8, no weight decay).
 */
import { KL_PENALTIES, type KLPenalty } from './rewards.ts';

export interface PPOConfig {
  /** Seed for sampling and minibatch shuffling. */
  seed: number;
  /** Samples to train on in all; TRL's total_ppo_epochs = ceil(steps / batch_size). */
  steps: number;
  /** Adam learning rate. */
  learning_rate: number;
  /** Adapt the KL coefficient towards `target` (else keep init_kl_coef). */
  adap_kl_ctrl: boolean;
  /** Initial KL penalty coefficient (adaptive and fixed control). */
  init_kl_coef: number;
  /** Per-token KL estimate in the reward: 'kl' | 'abs' | 'mse' | 'full'. */
  kl_penalty: KLPenalty;
  /** Target mean per-sequence KL of the adaptive controller. */
  target: number;
  /** Horizon (in samples) of the adaptive controller. */
  horizon: number;
  /** Discount factor of GAE. */
  gamma: number;
  /** Lambda of GAE. */
  lam: number;
  /** Clip range of the policy ratio. */
  cliprange: number;
  /** Clip range of the value prediction around the old value. */
  cliprange_value: number;
  /** Weight of the value loss in the total loss. */
  vf_coef: number;
  /** Samples per PPO step (rollouts scored together). */
  batch_size: number;
  /** Samples per forward/backward pass (one optimiser step each). */
  mini_batch_size: number;
  /** Minibatches whose gradients accumulate before an optimiser step. */
  gradient_accumulation_steps: number;
  /** Passes over the batch per PPO step. */
  ppo_epochs: number;
  /** Gradient-norm clipping (null: none). */
  max_grad_norm: number | null;
  /** Stop a step's epochs early when policykl > 1.5 * target_kl. */
  early_stopping: boolean;
  /** KL bound of early stopping. */
  target_kl: number;
  /** Skip (zero the loss of) minibatches whose mean ratio exceeds this. */
  ratio_threshold: number;
  /** Divide scores by their running std. */
  use_score_scaling: boolean;
  /** Also subtract the running mean (only with use_score_scaling). */
  use_score_norm: boolean;
  /** Clip scores to [-score_clip, score_clip] (null: no clipping). */
  score_clip: number | null;
  /** Whiten rewards (scale only) before computing advantages. */
  whiten_rewards: boolean;
}

/** TRL 0.9.6 PPOConfig() defaults. */
export const TRL_DEFAULTS: Readonly<PPOConfig> = Object.freeze({
  seed: 0,
  steps: 20000,
  learning_rate: 1.41e-5,
  adap_kl_ctrl: true,
  init_kl_coef: 0.2,
  kl_penalty: 'kl',
  target: 6,
  horizon: 10000,
  gamma: 1,
  lam: 0.95,
  cliprange: 0.2,
  cliprange_value: 0.2,
  vf_coef: 0.1,
  batch_size: 128,
  mini_batch_size: 128,
  gradient_accumulation_steps: 1,
  ppo_epochs: 4,
  max_grad_norm: null,
  early_stopping: false,
  target_kl: 1,
  ratio_threshold: 10.0,
  use_score_scaling: false,
  use_score_norm: false,
  score_clip: null,
  whiten_rewards: false,
});

/** An invalid PPOConfig; `field` names the offending field. */
export class PPOConfigError extends Error {
  override name = 'PPOConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`PPOConfig.${field}: ${message}`);
  }
}

type Check = (v: unknown) => string | null;

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const num =
  (ok: (x: number) => boolean, range: string): Check =>
  (v) =>
    isNum(v) && ok(v) ? null : `must be a finite number ${range}, got ${String(v)}`;
const int =
  (min: number): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min ? null : `must be an integer >= ${min}, got ${String(v)}`;
const bool: Check = (v) => (typeof v === 'boolean' ? null : `must be true or false, got ${String(v)}`);
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null ? null : c(v);

const CHECKS: Record<keyof PPOConfig, Check> = {
  seed: int(0),
  steps: int(1),
  learning_rate: num((x) => x > 0, '> 0'),
  adap_kl_ctrl: bool,
  init_kl_coef: num((x) => x >= 0, '>= 0'),
  kl_penalty: (v) =>
    (KL_PENALTIES as readonly unknown[]).includes(v)
      ? null
      : `must be one of ${KL_PENALTIES.join(', ')}, got ${String(v)}`,
  target: num((x) => x > 0, '> 0'),
  horizon: num((x) => x > 0, '> 0'),
  gamma: num((x) => x >= 0 && x <= 1, 'in [0, 1]'),
  lam: num((x) => x >= 0 && x <= 1, 'in [0, 1]'),
  cliprange: num((x) => x > 0 && x < 1, 'in (0, 1)'),
  cliprange_value: num((x) => x > 0, '> 0'),
  vf_coef: num((x) => x >= 0, '>= 0'),
  batch_size: int(1),
  mini_batch_size: int(1),
  gradient_accumulation_steps: int(1),
  ppo_epochs: int(1),
  max_grad_norm: orNull(num((x) => x > 0, '> 0 (or null)')),
  early_stopping: bool,
  target_kl: num((x) => x > 0, '> 0'),
  // The mean ratio starts at 1 in every step; a threshold below 1 would skip most minibatches.
  ratio_threshold: num((x) => x >= 1, '>= 1'),
  use_score_scaling: bool,
  use_score_norm: bool,
  score_clip: orNull(num((x) => x > 0, '> 0 (or null)')),
  whiten_rewards: bool,
};

/**
 * TRL_DEFAULTS overridden by the defined fields of `partial`, checked field by field (type, finiteness, range), then
 * for consistency: batch_size must be a multiple of mini_batch_size * gradient_accumulation_steps
 * (TRL's exact_div). Unknown fields are refused, so a misspelt or camelCase name cannot be
 * silently ignored. Throws PPOConfigError naming the first bad field.
 */
export function validatePPOConfig(
  partial: Partial<PPOConfig> | Readonly<Record<string, unknown>> = {},
): PPOConfig {
  for (const key of Object.keys(partial)) {
    if (!(key in CHECKS)) throw new PPOConfigError(key, 'unknown field (TRL PPOConfig names are snake_case)');
  }
  const cfg: Record<string, unknown> = { ...TRL_DEFAULTS };
  for (const [key, v] of Object.entries(partial)) if (v !== undefined) cfg[key] = v;
  for (const key of Object.keys(CHECKS) as (keyof PPOConfig)[]) {
    const problem = CHECKS[key](cfg[key]);
    if (problem) throw new PPOConfigError(key, problem);
  }
  const c = cfg as unknown as PPOConfig;
  const bbs = backwardBatchSize(c);
  if (c.batch_size % bbs !== 0) {
    throw new PPOConfigError(
      'batch_size',
      `must be a multiple of mini_batch_size * gradient_accumulation_steps = ${bbs}, got ${c.batch_size}`,
    );
  }
  return c;
}

/* ------------------------------------------------------------------------------------------------ */
/* Parsing from text (the CLI's options, the studio's form and page link)                           */

export type ConfigKey = keyof PPOConfig;
/** Every PPOConfig field, in TRL's order. */
export const CONFIG_KEYS = Object.keys(TRL_DEFAULTS) as ConfigKey[];

/** How a field is typed as text: by its TRL default's type; max_grad_norm and score_clip also take none. */
export type FieldKind = 'integer' | 'number' | 'boolean' | 'choice' | 'number-or-none';

const INTEGER_KEYS = new Set<ConfigKey>([
  'seed',
  'steps',
  'batch_size',
  'mini_batch_size',
  'gradient_accumulation_steps',
  'ppo_epochs',
]);

export function fieldKind(key: ConfigKey): FieldKind {
  const def = TRL_DEFAULTS[key];
  if (def === null) return 'number-or-none';
  if (typeof def === 'boolean') return 'boolean';
  if (typeof def === 'string') return 'choice';
  return INTEGER_KEYS.has(key) ? 'integer' : 'number';
}

/** Decimal numbers only: no hex (0x4), no empty string, no Infinity/NaN spelt out. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal number written as text, or null when it is not one. */
export function parseDecimal(raw: string): number | null {
  const t = raw.trim();
  return DECIMAL.test(t) ? Number(t) : null;
}

/** One field's text as its type (not yet range-checked), or why it cannot be. */
export function parseConfigField(key: ConfigKey, raw: string): { value: unknown } | { error: string } {
  const t = raw.trim();
  const kind = fieldKind(key);
  if (kind === 'number-or-none' && (t === '' || t === 'none' || t === 'null')) return { value: null };
  if (kind === 'boolean') {
    if (t === 'true' || t === '1') return { value: true };
    if (t === 'false' || t === '0') return { value: false };
    return { error: `must be true or false, got "${raw}"` };
  }
  if (kind === 'choice') return { value: t };
  if (t === '') return { error: 'is required' };
  const x = parseDecimal(t);
  if (x === null) return { error: `must be a number, got "${raw}"` };
  return { value: x };
}

/** A problem with one field of a form or command line. */
export interface FieldError {
  field: string;
  message: string;
}

const BATCH_KEYS: ConfigKey[] = ['batch_size', 'mini_batch_size', 'gradient_accumulation_steps'];

/**
 * Batch sizes that make a lone field pass the cross-field check (batch_size a multiple of
 * mini_batch_size * gradient_accumulation_steps), so that a field is judged on its own first.
 */
function batchProbe(key: ConfigKey, value: unknown): Partial<PPOConfig> {
  if (!BATCH_KEYS.includes(key) || typeof value !== 'number') return {};
  return {
    batch_size: value,
    mini_batch_size: key === 'mini_batch_size' ? value : 1,
    gradient_accumulation_steps: key === 'gradient_accumulation_steps' ? value : 1,
  };
}

/** "PPOConfig.batch_size: must be ..." -> "must be ...". */
function stripField(e: PPOConfigError): string {
  return e.message.replace(`PPOConfig.${e.field}: `, '');
}

/**
 * A PPOConfig from text fields: `base` (TRL_DEFAULTS unless given) overridden by each field of `raw`.
 * Returns the config, or one error per bad field (each judged alone), then the cross-field checks.
 */
export function parsePPOConfig(
  raw: Partial<Record<string, string>>,
  base: Readonly<PPOConfig> = TRL_DEFAULTS,
): { config: PPOConfig | null; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const values: Record<string, unknown> = { ...base };
  for (const [key, text] of Object.entries(raw)) {
    if (text === undefined) continue;
    if (!(CONFIG_KEYS as string[]).includes(key)) {
      errors.push({ field: key, message: 'not a PPOConfig field (TRL names are snake_case)' });
      continue;
    }
    const k = key as ConfigKey;
    const r = parseConfigField(k, text);
    if ('error' in r) {
      errors.push({ field: k, message: r.error });
      continue;
    }
    try {
      validatePPOConfig({ ...batchProbe(k, r.value), [k]: r.value });
      values[k] = r.value;
    } catch (e) {
      errors.push({ field: k, message: e instanceof PPOConfigError ? stripField(e) : String(e) });
    }
  }
  if (errors.length) return { config: null, errors };
  try {
    return { config: validatePPOConfig(values), errors };
  } catch (e) {
    if (!(e instanceof PPOConfigError)) throw e;
    return { config: null, errors: [{ field: e.field, message: stripField(e) }] };
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Queries and responses, and the TRL sentiment preset                                               */

/** Query and response lengths, as TRL's gpt2-sentiment example draws them, and the review filter. */
export interface RolloutSpec {
  /** Queries are the first k tokens of a prompt, k uniform in [query_min_tokens, query_max_tokens). */
  query_min_tokens: number;
  query_max_tokens: number;
  /** Response lengths uniform in [response_min_length, response_max_length). */
  response_min_length: number;
  response_max_length: number;
  /** Prompts are kept when longer than this many characters (TRL: len(review) > 200). */
  min_prompt_chars: number;
}

export type RolloutKey = keyof RolloutSpec;
export const ROLLOUT_KEYS: RolloutKey[] = [
  'query_min_tokens',
  'query_max_tokens',
  'response_min_length',
  'response_max_length',
  'min_prompt_chars',
];

/** RolloutSpec from text fields over `base`, or one error per bad field. */
export function parseRolloutSpec(
  raw: Partial<Record<RolloutKey, string>>,
  base: Readonly<RolloutSpec>,
): { rollout: RolloutSpec | null; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const r = { ...base };
  for (const k of ROLLOUT_KEYS) {
    const text = raw[k];
    if (text === undefined) continue;
    const min = k === 'min_prompt_chars' ? 0 : 1;
    const x = parseDecimal(text);
    if (x === null || !Number.isSafeInteger(x) || x < min)
      errors.push({ field: k, message: `must be an integer >= ${min}, got "${text}"` });
    else r[k] = x;
  }
  if (errors.length) return { rollout: null, errors };
  if (r.query_max_tokens <= r.query_min_tokens)
    errors.push({ field: 'query_max_tokens', message: 'must exceed query_min_tokens (it is exclusive)' });
  if (r.response_max_length <= r.response_min_length)
    errors.push({
      field: 'response_max_length',
      message: 'must exceed response_min_length (it is exclusive)',
    });
  return errors.length ? { rollout: null, errors } : { rollout: r, errors };
}

/**
 * TRL's gpt2-sentiment example (examples/scripts/ppo.py, 0.9.6): PPOConfig defaults, queries of
 * LengthSampler(2, 8) tokens from reviews longer than 200 characters, responses of LengthSampler(4, 16).
 */
export const TRL_SENTIMENT: Readonly<{ config: Readonly<PPOConfig>; rollout: Readonly<RolloutSpec> }> =
  Object.freeze({
    config: TRL_DEFAULTS,
    rollout: Object.freeze({
      query_min_tokens: 2,
      query_max_tokens: 8,
      response_min_length: 4,
      response_max_length: 16,
      min_prompt_chars: 200,
    }),
  });

/** Samples per optimiser step: mini_batch_size * gradient_accumulation_steps. */
export function backwardBatchSize(
  c: Pick<PPOConfig, 'mini_batch_size' | 'gradient_accumulation_steps'>,
): number {
  return c.mini_batch_size * c.gradient_accumulation_steps;
}

/** TRL's total_ppo_epochs: ceil(steps / batch_size), the number of PPO steps. */
export function totalPpoEpochs(c: Pick<PPOConfig, 'steps' | 'batch_size'>): number {
  return Math.ceil(c.steps / c.batch_size);
}
