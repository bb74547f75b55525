/**
 * The training method (PPO, DPO, reward model) and what DPO and reward-model runs need beyond the
 * PPO form: the preference pairs' source, DPOConfig / RewardConfig fields by TRL name (text as
 * typed, checked on every change), and the run's stats and shown pairs. Worker events of these
 * runs enter through `handlePreferenceMessage`, called by the studio store's one switch.
 */
import { create } from 'zustand';
import { hubDatasetFileUrl } from '../data/preferences.ts';
import type { TrainingLimits } from '../gpu/device.ts';
import { LORA_TARGETS, TRL_LORA_DEFAULTS, validateLoraConfig, type LoraConfig } from '../model/lora-table.ts';
import type {
  FromWorker,
  PairsSpec,
  PairView,
  PolicySpec,
  PreferenceRunSettings,
  RunSettings,
} from '../protocol.ts';
import { DPO_CONFIG_DEFAULTS, validateDPOConfig, type DPOConfig } from '../rl/dpo-config.ts';
import { REWARD_DEFAULTS, type RewardConfig } from '../rl/reward-model-trainer.ts';
import { validateTrainingArgs } from '../rl/training-args.ts';
import {
  demoBase,
  resolveSettings,
  type FieldError,
  type SettingsDraft,
  type SourceDraft,
} from './settings.ts';
import { useStudio } from './store.ts';

export type Method = 'ppo' | 'dpo' | 'reward';
export type PreferenceMethod = Exclude<Method, 'ppo'>;
export type DPOKey = keyof DPOConfig;
export type RewardKey = keyof RewardConfig;
export const DPO_KEYS = Object.keys(DPO_CONFIG_DEFAULTS) as DPOKey[];
export const REWARD_KEYS = Object.keys(REWARD_DEFAULTS) as RewardKey[];

/** Fields that take `none` (null). */
const NULLABLE = new Set<string>([
  'max_length',
  'max_prompt_length',
  'max_completion_length',
  'max_grad_norm',
  'center_rewards_coefficient',
]);

export interface PairsDraft {
  kind: 'url' | 'hub' | 'file';
  url: string;
  /** A Hub dataset repo and a file in it (resolve/{revision}/{file}). */
  repo: string;
  path: string;
  revision: string;
  /** A picked file, or a Blob handed over by startPreferenceRun. */
  blob: Blob | null;
  name: string;
}

/** LoRA switches by TRL ModelConfig's names, as typed. */
export type LoraKey =
  'use_peft' | 'lora_r' | 'lora_alpha' | 'lora_dropout' | 'lora_target_modules' | 'use_rslora';
export const LORA_KEYS: LoraKey[] = [
  'use_peft',
  'lora_r',
  'lora_alpha',
  'lora_dropout',
  'lora_target_modules',
  'use_rslora',
];

export interface MethodDraft {
  method: Method;
  pairs: PairsDraft;
  lora: Record<LoraKey, string>;
  dpo: Record<DPOKey, string>;
  reward: Record<RewardKey, string>;
}

const text = (v: unknown) => (v === null ? 'none' : String(v));
const asText = <K extends string>(c: Record<K, unknown>) =>
  Object.fromEntries(Object.entries(c).map(([k, v]) => [k, text(v)])) as Record<K, string>;

/**
 * The demo's settings (public/models/mini-imdb/pairs.jsonl, positive vs negative template reviews):
 * the preferences issue's learning run (batch 16, lr 5e-4, beta 0.1, 60 steps); lengths within the
 * demo policy's 64 positions.
 */
export function demoMethodDraft(method: Method = 'ppo'): MethodDraft {
  return {
    method,
    pairs: {
      kind: 'url',
      url: demoBase() + 'pairs.jsonl',
      repo: '',
      path: '',
      revision: 'main',
      blob: null,
      name: '',
    },
    lora: loraText(TRL_LORA_DEFAULTS, false),
    dpo: asText<DPOKey>({
      ...DPO_CONFIG_DEFAULTS,
      learning_rate: 5e-4,
      per_device_train_batch_size: 16,
      max_steps: 60,
      max_length: 64,
      max_prompt_length: 32,
    }),
    reward: asText<RewardKey>({
      ...REWARD_DEFAULTS,
      learning_rate: 1e-3,
      per_device_train_batch_size: 16,
      max_steps: 60,
      max_length: 64,
    }),
  };
}

export function loraText(c: LoraConfig, on: boolean): Record<LoraKey, string> {
  return {
    use_peft: String(on),
    lora_r: String(c.r),
    lora_alpha: String(c.alpha),
    lora_dropout: String(c.dropout),
    lora_target_modules: c.targetModules.join(','),
    use_rslora: String(c.useRslora),
  };
}

/** The LoRA settings of the form: null with use_peft off; errors by field name. */
export function resolveLora(d: Record<LoraKey, string>, errors: FieldError[]): LoraConfig | null {
  if (d.use_peft !== 'true') return null;
  const num = (k: LoraKey) => {
    const x = Number(d[k].trim());
    if (d[k].trim() === '' || !Number.isFinite(x))
      errors.push({ field: k, message: `must be a number, got "${d[k]}"` });
    return x;
  };
  const targetModules = d.lora_target_modules
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const bad = targetModules.find((t) => !(LORA_TARGETS as readonly string[]).includes(t));
  if (bad)
    errors.push({
      field: 'lora_target_modules',
      message: `"${bad}" is not one of ${LORA_TARGETS.join(', ')}`,
    });
  const c = {
    r: num('lora_r'),
    alpha: num('lora_alpha'),
    dropout: num('lora_dropout'),
    targetModules,
    useRslora: d.use_rslora === 'true',
  };
  if (errors.length) return null;
  try {
    return validateLoraConfig(c);
  } catch (e) {
    const message = (e as Error).message;
    // validateLoraConfig's messages open with the field's name.
    const field = LORA_KEYS.find((k) => message.startsWith(k)) ?? 'use_peft';
    errors.push({ field, message });
    return null;
  }
}

/**
 * A PPO run from the two forms: the PPO settings, and LoRA from the method form's switches (TRL's
 * ModelConfig names); every problem of both, by field.
 */
export function resolvePpoRun(
  studio: SettingsDraft,
  loraDraft: Record<LoraKey, string>,
): { settings: RunSettings | null; errors: FieldError[] } {
  const { settings, errors } = resolveSettings(studio);
  const loraErrors: FieldError[] = [];
  const lora = resolveLora(loraDraft, loraErrors);
  errors.push(...loraErrors);
  if (!settings || loraErrors.length) return { settings: null, errors };
  return { settings: { ...settings, lora }, errors };
}

/** The Hub GPT-2s by name and their parameter counts (transformers' GPT2LMHeadModel, tied head). */
export const GPT2_SIZES: Record<string, number> = {
  gpt2: 124_439_808,
  'gpt2-medium': 354_823_168,
  'gpt2-large': 774_030_080,
  'gpt2-xl': 1_557_611_200,
};

/**
 * Whether full fine-tuning of `params` parameters fits the adapter, by a simple count: the weights
 * as one f32 buffer (params x 4 B) must fit maxStorageBufferBindingSize, and weights, gradients and
 * Adam's two moments (params x 16 B) plus the reference's copy (x 4 B) should stay within what a
 * browser hands one tab (taken as 4 x maxBufferSize, browsers' per-buffer cap being a fraction of
 * the GPU's memory). A reason to propose LoRA, or null when it fits.
 */
export function fullFineTuneProblem(params: number, limits: TrainingLimits): string | null {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (params * 4 > limits.maxStorageBufferBindingSize)
    return `its weights (${gib(params * 4)}) exceed this GPU's largest storage buffer (${gib(limits.maxStorageBufferBindingSize)})`;
  if (params * 20 > 4 * limits.maxBufferSize)
    return `full fine-tuning holds about ${gib(params * 20)} (weights, gradients, Adam, reference) against this GPU's ${gib(limits.maxBufferSize)} buffers`;
  return null;
}

/** One field's text as the type of its default, or why it cannot be. */
function parseField(key: string, raw: string, def: unknown): { value: unknown } | { error: string } {
  const t = raw.trim();
  if (NULLABLE.has(key) && (t === '' || t === 'none' || t === 'null')) return { value: null };
  if (typeof def === 'boolean') {
    if (t === 'true' || t === '1') return { value: true };
    if (t === 'false' || t === '0') return { value: false };
    return { error: `must be true or false, got "${raw}"` };
  }
  if (typeof def === 'string') return { value: t };
  if (t === '') return { error: 'is required' };
  const x = Number(t);
  return Number.isNaN(x) ? { error: `must be a number, got "${raw}"` } : { value: x };
}

/** Parses every field, then runs `validate` (which throws naming the first bad field). */
function resolveFields<T extends object>(
  draft: Record<string, string>,
  defaults: T,
  validate: (c: T) => T,
  errors: FieldError[],
): T | null {
  const out: Record<string, unknown> = {};
  const before = errors.length;
  for (const [k, def] of Object.entries(defaults)) {
    const r = parseField(k, draft[k] ?? '', def);
    if ('error' in r) errors.push({ field: k, message: r.error });
    else out[k] = r.value;
  }
  if (errors.length > before) return null;
  try {
    return validate(out as T);
  } catch (e) {
    const message = (e as Error).message;
    errors.push({ field: message.split(' ')[0], message });
    return null;
  }
}

export function validateRewardConfig(c: RewardConfig): RewardConfig {
  validateTrainingArgs(c);
  if (c.max_length !== null && !(Number.isInteger(c.max_length) && c.max_length > 0))
    throw new RangeError(`max_length must be a positive integer or none, got ${c.max_length}`);
  if (c.center_rewards_coefficient !== null && !(c.center_rewards_coefficient >= 0))
    throw new RangeError(
      `center_rewards_coefficient must be >= 0 or none, got ${c.center_rewards_coefficient}`,
    );
  return c;
}

function resolvePairs(p: PairsDraft, errors: FieldError[]): PairsSpec | null {
  const bad = (message: string) => (errors.push({ field: 'pairs', message }), null);
  if (p.kind === 'file')
    return p.blob
      ? { kind: 'blob', blob: p.blob, name: p.name || 'pairs.jsonl' }
      : bad('choose a pairs file (.jsonl, .csv or .parquet)');
  if (p.kind === 'hub') {
    if (!/^[\w.-]+\/[\w.-]+$/.test(p.repo.trim()))
      return bad(`"${p.repo}" is not a Hub dataset id (owner/name)`);
    if (!p.path.trim()) return bad('name the file in the dataset (e.g. data/train.jsonl)');
    return { kind: 'url', url: hubDatasetFileUrl(p.repo.trim(), p.path.trim(), p.revision.trim() || 'main') };
  }
  try {
    return { kind: 'url', url: new URL(p.url.trim(), location.href).href };
  } catch {
    return bad(`"${p.url}" is not a URL`);
  }
}

/** The policy source of the PPO form, as the worker takes it. */
function resolvePolicy(s: SourceDraft, errors: FieldError[]): PolicySpec | null {
  if (s.kind === 'hub') {
    if (!/^[\w.-]+\/[\w.-]+$/.test(s.repo.trim()))
      return (
        errors.push({ field: 'policy', message: `"${s.repo}" is not a Hub repo id (owner/name)` }),
        null
      );
    return { kind: 'hub', repo: s.repo.trim(), revision: s.revision.trim() || 'main' };
  }
  if (s.kind === 'files') {
    if (!s.files?.size) return (errors.push({ field: 'policy', message: 'choose the model folder' }), null);
    return { kind: 'files', files: s.files };
  }
  try {
    return { kind: 'url', base: new URL(s.url.trim(), location.href).href };
  } catch {
    return (errors.push({ field: 'policy', message: `"${s.url}" is not a URL` }), null);
  }
}

/** The run a DPO / reward-model draft asks for, or its problems by field. */
export function resolvePreferenceSettings(
  d: MethodDraft,
  policyDraft: SourceDraft,
): { settings: PreferenceRunSettings | null; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const policy = resolvePolicy(policyDraft, errors);
  const pairs = resolvePairs(d.pairs, errors);
  const lora = resolveLora(d.lora, errors);
  if (d.method === 'dpo') {
    const config = resolveFields(d.dpo, DPO_CONFIG_DEFAULTS, validateDPOConfig, errors);
    if (!config || !policy || !pairs || errors.length) return { settings: null, errors };
    return { settings: { method: 'dpo', policy, pairs, config, lora }, errors };
  }
  const config = resolveFields(d.reward, REWARD_DEFAULTS, validateRewardConfig, errors);
  if (!config || !policy || !pairs || errors.length) return { settings: null, errors };
  return { settings: { method: 'reward', policy, pairs, config, lora }, errors };
}

export interface PrefMetricRow {
  step: number;
  stats: Record<string, number>;
  seconds: number;
}

export interface MethodState {
  draft: MethodDraft;
  /** The method of the run on screen (null: none started here). */
  running: PreferenceMethod | null;
  metrics: PrefMetricRow[];
  pairs: { step: number; rows: PairView[] } | null;
  setMethod(method: Method): void;
  setDraft(patch: Partial<MethodDraft>): void;
}

export const useMethod = create<MethodState>()((set) => ({
  draft: demoMethodDraft(),
  running: null,
  metrics: [],
  pairs: null,
  // The panel follows the switch: a finished run's charts give way to the new method's.
  setMethod: (method) =>
    set((s) => ({ draft: { ...s.draft, method }, running: null, metrics: [], pairs: null })),
  setDraft: (patch) => set((s) => ({ draft: { ...s.draft, ...patch } })),
}));

/**
 * A resumed PPO run (a reload, a lost device) brings its own LoRA settings from its checkpoint: the
 * form's switches show them, so what is on screen is what trains (and what the estimate counts).
 */
export function showResumedLora(lora: LoraConfig | null): void {
  useMethod.setState((s) => ({
    draft: { ...s.draft, lora: lora ? loraText(lora, true) : { ...s.draft.lora, use_peft: 'false' } },
  }));
}

/** The pref-step / pref-pairs worker messages. */
export function handlePreferenceMessage(
  msg: Extract<FromWorker, { type: 'pref-step' | 'pref-pairs' }>,
): void {
  if (msg.type === 'pref-step') {
    const row = { step: msg.step, stats: msg.stats, seconds: msg.seconds };
    useMethod.setState((s) => ({ metrics: [...s.metrics, row] }));
  } else useMethod.setState({ pairs: { step: msg.step, rows: msg.rows } });
}

type Send = (settings: PreferenceRunSettings) => void;
let sendRun: Send | null = null;

/** The engine client registers how a run reaches the worker (the store holds no worker). */
export function setPreferenceRunSender(send: Send): void {
  sendRun = send;
}

/** Starts the form's DPO / reward-model run; returns its problems (empty when it started). */
export function startFormPreferenceRun(): FieldError[] {
  const { draft } = useMethod.getState();
  const { settings, errors } = resolvePreferenceSettings(draft, useStudio.getState().draft.policy);
  if (!settings) return errors;
  if (!sendRun) return [{ field: 'engine', message: 'the engine is not started' }];
  useStudio.getState().beginRun();
  useMethod.setState({ running: settings.method, metrics: [], pairs: null });
  sendRun(settings);
  return [];
}

/**
 * Starts a DPO (`'dpo'`) or reward-model (`'reward'`) run on in-memory preference pairs, e.g. the
 * JSONL Blob the feedback mode collects: one JSON object per line with `prompt`, `chosen` and
 * `rejected` text (TRL's preference format; .csv or .parquet bytes work too when `name` says so).
 * The policy and the DPOConfig / RewardConfig fields are the form's; the method switch moves to
 * `method`. Returns the form's problems (by field) when it cannot start, else an empty list; the
 * run then reports through the studio store (phase, errors) and this one (stats, pairs).
 */
export function startPreferenceRun(
  method: PreferenceMethod,
  pairs: Blob,
  name = 'feedback.jsonl',
): FieldError[] {
  useMethod.getState().setDraft({
    method,
    pairs: { ...useMethod.getState().draft.pairs, kind: 'file', blob: pairs, name },
  });
  return startFormPreferenceRun();
}
