/**
 * RUN.json: a run's settings as the CLI and the studio know them, for export to a TRL script.
 *
 *   { "kind": "ppo", "policy": SOURCE, "reward": SOURCE, "prompts": DATASET,
 *     "target": "positive" | "negative", "rollout": { query_min_tokens, ... }, "config": { ... } }
 *   { "kind": "dpo", "policy": SOURCE, "pairs": DATASET, "config": { ... } }
 *   { "kind": "reward", "model": SOURCE, "pairs": DATASET, "config": { ... } }
 *
 * SOURCE is {"kind": "hub", "repo": "lvwerra/gpt2-imdb", "revision": "main"} or {"kind": "path",
 * "path": "models/policy"}; DATASET is {"kind": "imdb"} (stanfordnlp/imdb, train), {"kind": "hub",
 * "repo", "split", "column"} or {"kind": "path", "path": "prompts.txt|.csv|.jsonl|.parquet", "column"}.
 * Preference pairs are in TRL's format: columns prompt, chosen, rejected.
 *
 * `config` holds the trainer's fields by their TRL names (PPO: TRL 0.9.6 PPOConfig, as src/rl/config.ts;
 * DPO: DPOConfig; reward: RewardConfig) and the LoRA fields of TRL's ModelConfig (use_peft, lora_r,
 * lora_alpha, lora_dropout, lora_target_modules, use_rslora). Missing fields take TRL's defaults;
 * unknown fields are refused, so a misspelt name cannot be silently dropped.
 */
import { PPOConfigError, TRL_DEFAULTS, validatePPOConfig, type PPOConfig } from '../rl/config.ts';
import type { SentimentTarget } from '../reward/types.ts';

export type Source = { kind: 'hub'; repo: string; revision: string | null } | { kind: 'path'; path: string };

export type Dataset =
  | { kind: 'hub'; repo: string; split: string; column: string | null }
  | { kind: 'path'; path: string; column: string | null };

/** TRL ModelConfig's LoRA fields (TRL 1.13 defaults). */
export interface LoraFields {
  use_peft: boolean;
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Module names, "all-linear", or null for peft's default for the architecture. */
  lora_target_modules: string[] | string | null;
  use_rslora: boolean;
}

export const LORA_DEFAULTS: Readonly<LoraFields> = Object.freeze({
  use_peft: false,
  lora_r: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  lora_target_modules: null,
  use_rslora: false,
});

/** The DPOConfig fields a run sets (TRL 1.13 defaults; max_prompt_length is applied by the script). */
export interface DPOFields {
  beta: number;
  loss_type: string;
  label_smoothing: number;
  learning_rate: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  /** -1: train num_train_epochs instead. */
  max_steps: number;
  num_train_epochs: number;
  max_length: number | null;
  /** Prompts keep their last max_prompt_length tokens (null: whole). */
  max_prompt_length: number | null;
  precompute_ref_log_probs: boolean;
  seed: number;
}

export const DPO_DEFAULTS: Readonly<DPOFields> = Object.freeze({
  beta: 0.1,
  loss_type: 'sigmoid',
  label_smoothing: 0,
  learning_rate: 1e-6,
  per_device_train_batch_size: 8,
  gradient_accumulation_steps: 1,
  max_steps: -1,
  num_train_epochs: 3,
  max_length: 1024,
  max_prompt_length: null,
  precompute_ref_log_probs: false,
  seed: 42,
});

/** DPOConfig.loss_type values of TRL 1.13. */
export const DPO_LOSS_TYPES = [
  'sigmoid',
  'hinge',
  'ipo',
  'exo_pair',
  'nca_pair',
  'robust',
  'bco_pair',
  'sppo_hard',
  'aot',
  'aot_unpaired',
  'apo_zero',
  'apo_down',
  'discopop',
  'sft',
  'sigmoid_norm',
] as const;

/** The RewardConfig fields a run sets (TRL 1.13 defaults). */
export interface RewardFields {
  learning_rate: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  max_steps: number;
  num_train_epochs: number;
  max_length: number | null;
  center_rewards_coefficient: number | null;
  seed: number;
}

export const REWARD_DEFAULTS: Readonly<RewardFields> = Object.freeze({
  learning_rate: 1e-4,
  per_device_train_batch_size: 8,
  gradient_accumulation_steps: 1,
  max_steps: -1,
  num_train_epochs: 3,
  max_length: 1024,
  center_rewards_coefficient: null,
  seed: 42,
});

/** Query and response lengths and the prompt filter of TRL's gpt2-sentiment example. */
export interface Rollout {
  query_min_tokens: number;
  query_max_tokens: number;
  response_min_length: number;
  response_max_length: number;
  min_prompt_chars: number;
}

export const ROLLOUT_DEFAULTS: Readonly<Rollout> = Object.freeze({
  query_min_tokens: 2,
  query_max_tokens: 8,
  response_min_length: 4,
  response_max_length: 16,
  min_prompt_chars: 200,
});

export type RunConfig =
  | {
      kind: 'ppo';
      policy: Source;
      reward: Source;
      prompts: Dataset;
      target: SentimentTarget;
      rollout: Rollout;
      config: PPOConfig;
      lora: LoraFields;
    }
  | { kind: 'dpo'; policy: Source; pairs: Dataset; config: DPOFields; lora: LoraFields }
  | { kind: 'reward'; model: Source; pairs: Dataset; config: RewardFields; lora: LoraFields };

/** A bad RUN.json; the message names the field (e.g. `config.beta`). */
export class RunConfigError extends Error {
  override name = 'RunConfigError';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(where: string, msg: string): never {
  throw new RunConfigError(`${where}: ${msg}`);
}

function onlyKeys(o: Obj, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) fail(`${where}.${k}`, `unknown field; known: ${allowed.join(', ')}`);
}

function str(o: Obj, k: string, where: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v.trim() === '')
    fail(`${where}.${k}`, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function optStr(o: Obj, k: string, where: string): string | null {
  return o[k] === undefined || o[k] === null ? null : str(o, k, where);
}

function source(v: unknown, where: string): Source {
  if (!isObj(v)) fail(where, 'must be {"kind": "hub", "repo": ...} or {"kind": "path", "path": ...}');
  if (v.kind === 'hub') {
    onlyKeys(v, ['kind', 'repo', 'revision'], where);
    return { kind: 'hub', repo: str(v, 'repo', where), revision: optStr(v, 'revision', where) };
  }
  if (v.kind === 'path') {
    onlyKeys(v, ['kind', 'path'], where);
    return { kind: 'path', path: str(v, 'path', where) };
  }
  if (v.kind === 'url' || v.kind === 'files')
    fail(
      where,
      `a '${v.kind}' source cannot be exported: TRL loads models from the Hub or a folder on the machine`,
    );
  fail(`${where}.kind`, `must be "hub" or "path", got ${JSON.stringify(v.kind)}`);
}

function dataset(v: unknown, where: string): Dataset {
  if (!isObj(v))
    fail(where, 'must be {"kind": "imdb"}, {"kind": "hub", "repo": ...} or {"kind": "path", "path": ...}');
  if (v.kind === 'imdb') {
    onlyKeys(v, ['kind'], where);
    return { kind: 'hub', repo: 'stanfordnlp/imdb', split: 'train', column: 'text' };
  }
  if (v.kind === 'hub') {
    onlyKeys(v, ['kind', 'repo', 'split', 'column'], where);
    return {
      kind: 'hub',
      repo: str(v, 'repo', where),
      split: optStr(v, 'split', where) ?? 'train',
      column: optStr(v, 'column', where),
    };
  }
  if (v.kind === 'path') {
    onlyKeys(v, ['kind', 'path', 'column'], where);
    const path = str(v, 'path', where);
    if (!/\.(txt|csv|jsonl|json|parquet)$/i.test(path))
      fail(`${where}.path`, `must end in .txt, .csv, .jsonl, .json or .parquet, got ${path}`);
    return { kind: 'path', path, column: optStr(v, 'column', where) };
  }
  if (v.kind === 'url' || v.kind === 'file')
    fail(where, `a '${v.kind}' data set cannot be exported: give a Hub data set or a file path`);
  fail(`${where}.kind`, `must be "imdb", "hub" or "path", got ${JSON.stringify(v.kind)}`);
}

type Check = (v: unknown) => string | null;
const num =
  (ok: (x: number) => boolean, range: string): Check =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && ok(v)
      ? null
      : `must be a number ${range}, got ${JSON.stringify(v)}`;
const int =
  (ok: (x: number) => boolean, range: string): Check =>
  (v) =>
    Number.isSafeInteger(v) && ok(v as number)
      ? null
      : `must be an integer ${range}, got ${JSON.stringify(v)}`;
const bool: Check = (v) =>
  typeof v === 'boolean' ? null : `must be true or false, got ${JSON.stringify(v)}`;
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null ? null : c(v);

const LORA_CHECKS: Record<keyof LoraFields, Check> = {
  use_peft: bool,
  lora_r: int((x) => x >= 1, '>= 1'),
  lora_alpha: num((x) => x > 0, '> 0'),
  lora_dropout: num((x) => x >= 0 && x < 1, 'in [0, 1)'),
  lora_target_modules: (v) =>
    v === null ||
    (typeof v === 'string' && v !== '') ||
    (Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'string' && m !== ''))
      ? null
      : `must be a list of module names, "all-linear" or null, got ${JSON.stringify(v)}`,
  use_rslora: bool,
};

const DPO_CHECKS: Record<keyof DPOFields, Check> = {
  beta: num((x) => x > 0, '> 0'),
  loss_type: (v) =>
    (DPO_LOSS_TYPES as readonly unknown[]).includes(v)
      ? null
      : `must be one of ${DPO_LOSS_TYPES.join(', ')}, got ${JSON.stringify(v)}`,
  label_smoothing: num((x) => x >= 0 && x < 0.5, 'in [0, 0.5)'),
  learning_rate: num((x) => x > 0, '> 0'),
  per_device_train_batch_size: int((x) => x >= 1, '>= 1'),
  gradient_accumulation_steps: int((x) => x >= 1, '>= 1'),
  max_steps: int((x) => x === -1 || x >= 1, '>= 1 (or -1: use num_train_epochs)'),
  num_train_epochs: num((x) => x > 0, '> 0'),
  max_length: orNull(int((x) => x >= 1, '>= 1 (or null)')),
  max_prompt_length: orNull(int((x) => x >= 1, '>= 1 (or null)')),
  precompute_ref_log_probs: bool,
  seed: int((x) => x >= 0, '>= 0'),
};

const REWARD_CHECKS: Record<keyof RewardFields, Check> = {
  learning_rate: DPO_CHECKS.learning_rate,
  per_device_train_batch_size: DPO_CHECKS.per_device_train_batch_size,
  gradient_accumulation_steps: DPO_CHECKS.gradient_accumulation_steps,
  max_steps: DPO_CHECKS.max_steps,
  num_train_epochs: DPO_CHECKS.num_train_epochs,
  max_length: DPO_CHECKS.max_length,
  center_rewards_coefficient: orNull(num((x) => x >= 0, '>= 0 (or null)')),
  seed: DPO_CHECKS.seed,
};

const ROLLOUT_CHECKS: Record<keyof Rollout, Check> = {
  query_min_tokens: int((x) => x >= 1, '>= 1'),
  query_max_tokens: int((x) => x >= 2, '>= 2'),
  response_min_length: int((x) => x >= 1, '>= 1'),
  response_max_length: int((x) => x >= 2, '>= 2'),
  min_prompt_chars: int((x) => x >= 0, '>= 0'),
};

/** defaults overridden by `given`'s fields among `checks`, each checked; other fields of `given` are left to the caller. */
function fields<T extends object>(
  given: Obj,
  defaults: Readonly<T>,
  checks: Record<keyof T, Check>,
  where: string,
): T {
  const out: Obj = { ...defaults };
  for (const k of Object.keys(checks)) {
    if (given[k] !== undefined) out[k] = given[k];
    const problem = checks[k as keyof T](out[k]);
    if (problem) fail(`${where}.${k}`, problem);
  }
  return out as T;
}

/** The trainer fields and the LoRA fields of `config`, with unknown names refused. */
function splitConfig(
  v: unknown,
  trainerKeys: readonly string[],
  where: string,
): { trainer: Obj; lora: LoraFields } {
  if (v !== undefined && !isObj(v)) fail(where, 'must be an object of fields by their TRL names');
  const c = v ?? {};
  onlyKeys(c, [...trainerKeys, ...Object.keys(LORA_CHECKS)], where);
  const trainer = Object.fromEntries(Object.entries(c).filter(([k]) => trainerKeys.includes(k)));
  return { trainer, lora: fields(c, LORA_DEFAULTS, LORA_CHECKS, where) };
}

const PPO_KEYS = Object.keys(TRL_DEFAULTS);

/** Parses and checks RUN.json's object; throws RunConfigError naming the first bad field. */
export function parseRunConfig(v: unknown): RunConfig {
  if (!isObj(v)) fail('RUN.json', 'must be a JSON object');
  const kind = v.kind;
  if (kind === 'ppo') {
    onlyKeys(v, ['kind', 'policy', 'reward', 'prompts', 'target', 'rollout', 'config'], 'RUN.json');
    const { trainer, lora } = splitConfig(v.config, PPO_KEYS, 'config');
    let config: PPOConfig;
    try {
      config = validatePPOConfig(trainer);
    } catch (e) {
      if (e instanceof PPOConfigError) fail(`config.${e.field}`, e.message.replace(/^PPOConfig\.\w+: /, ''));
      throw e;
    }
    if (config.kl_penalty === 'full')
      fail('config.kl_penalty', "'full' is not exported (the studio's trainer does not run it)");
    const target = v.target ?? 'positive';
    if (target !== 'positive' && target !== 'negative')
      fail('target', `must be "positive" or "negative", got ${JSON.stringify(target)}`);
    if (v.rollout !== undefined && !isObj(v.rollout)) fail('rollout', 'must be an object');
    const given = (v.rollout ?? {}) as Obj;
    onlyKeys(given, Object.keys(ROLLOUT_CHECKS), 'rollout');
    const rollout = fields(given, ROLLOUT_DEFAULTS, ROLLOUT_CHECKS, 'rollout');
    if (rollout.query_max_tokens <= rollout.query_min_tokens)
      fail('rollout.query_max_tokens', 'is exclusive and must exceed query_min_tokens');
    if (rollout.response_max_length <= rollout.response_min_length)
      fail('rollout.response_max_length', 'is exclusive and must exceed response_min_length');
    return {
      kind,
      policy: source(v.policy, 'policy'),
      reward: source(v.reward, 'reward'),
      prompts: dataset(v.prompts, 'prompts'),
      target,
      rollout,
      config,
      lora,
    };
  }
  if (kind === 'dpo') {
    onlyKeys(v, ['kind', 'policy', 'pairs', 'config'], 'RUN.json');
    const { trainer, lora } = splitConfig(v.config, Object.keys(DPO_CHECKS), 'config');
    return {
      kind,
      policy: source(v.policy, 'policy'),
      pairs: dataset(v.pairs, 'pairs'),
      config: fields(trainer, DPO_DEFAULTS, DPO_CHECKS, 'config'),
      lora,
    };
  }
  if (kind === 'reward') {
    onlyKeys(v, ['kind', 'model', 'pairs', 'config'], 'RUN.json');
    const { trainer, lora } = splitConfig(v.config, Object.keys(REWARD_CHECKS), 'config');
    return {
      kind,
      model: source(v.model, 'model'),
      pairs: dataset(v.pairs, 'pairs'),
      config: fields(trainer, REWARD_DEFAULTS, REWARD_CHECKS, 'config'),
      lora,
    };
  }
  fail('RUN.json.kind', `must be "ppo", "dpo" or "reward", got ${JSON.stringify(kind)}`);
}
