/**
 * The studio's settings: the form's draft (text as typed), the two presets, the page URL's query,
 * and the check that turns a draft into RunSettings or into one message per bad field.
 *
 * Hyperparameters keep TRL 0.9.6 PPOConfig's names everywhere: in the form, in the link
 * (`?batch_size=16&learning_rate=3e-4`) and in RunSettings.config (validated by validatePPOConfig).
 */
import type { LocalFiles, PromptsSpec, RewardEngine, RunSettings } from '../protocol.ts';
import type { SentimentTarget } from '../reward/types.ts';
import {
  CONFIG_KEYS,
  ROLLOUT_KEYS,
  TRL_DEFAULTS,
  TRL_SENTIMENT,
  parseDecimal,
  parsePPOConfig,
  parseRolloutSpec,
  type ConfigKey,
  type FieldError,
  type PPOConfig,
  type RolloutKey,
  type RolloutSpec,
} from '../rl/config.ts';

export { CONFIG_KEYS, ROLLOUT_KEYS, type ConfigKey, type FieldError, type RolloutKey };

export type SourceKind = 'hub' | 'url' | 'files';

/** A model source as the form holds it: every kind's fields, the chosen one in `kind`. */
export interface SourceDraft {
  kind: SourceKind;
  repo: string;
  revision: string;
  url: string;
  files: LocalFiles | null;
}

export interface PromptsDraft {
  kind: PromptsSpec['kind'];
  url: string;
  file: File | null;
}

export type PresetId = 'mini-imdb' | 'gpt2-imdb';

export interface SettingsDraft {
  preset: PresetId | 'custom';
  policy: SourceDraft;
  reward: SourceDraft;
  rewardEngine: RewardEngine;
  prompts: PromptsDraft;
  target: SentimentTarget;
  /** PPOConfig fields as typed ('' or 'none' is null for max_grad_norm and score_clip). */
  config: Record<ConfigKey, string>;
  rollout: Record<RolloutKey, string>;
  checkpoint_every: string;
}

const text = (v: unknown) => (v === null ? 'none' : String(v));
/** A PPOConfig as the form's text. */
export const configText = (c: Readonly<PPOConfig>) =>
  Object.fromEntries(CONFIG_KEYS.map((k) => [k, text(c[k])])) as Record<ConfigKey, string>;
const rolloutText = (r: RolloutSpec) =>
  Object.fromEntries(ROLLOUT_KEYS.map((k) => [k, text(r[k])])) as Record<RolloutKey, string>;

const emptySource: SourceDraft = { kind: 'url', repo: '', revision: 'main', url: '', files: null };
const hub = (repo: string): SourceDraft => ({ ...emptySource, kind: 'hub', repo });
const url = (u: string): SourceDraft => ({ ...emptySource, kind: 'url', url: u });

/** The built-in demo's folder, served by this app (public/models/mini-imdb/). */
export function demoBase(): string {
  return new URL(`${import.meta.env.BASE_URL}models/mini-imdb/`, location.href).href;
}

export interface Preset {
  label: string;
  description: string;
  draft: () => Omit<SettingsDraft, 'preset' | 'target'>;
}

export const PRESETS: Record<PresetId, Preset> = {
  'mini-imdb': {
    label: 'mini-IMDb demo (built in)',
    description:
      'A tiny GPT-2 and a tiny DistilBERT sentiment classifier trained on template reviews, served by this ' +
      'app: learns in minutes on any GPU. batch_size 16, mini_batch_size 8, learning_rate 3e-4.',
    draft: () => ({
      policy: url(demoBase() + 'policy'),
      reward: url(demoBase() + 'reward'),
      rewardEngine: 'auto',
      prompts: { kind: 'url', url: demoBase() + 'prompts.txt', file: null },
      config: configText({
        ...TRL_DEFAULTS,
        batch_size: 16,
        mini_batch_size: 8,
        learning_rate: 3e-4,
        steps: 1600,
      }),
      rollout: rolloutText({ ...TRL_SENTIMENT.rollout, min_prompt_chars: 0 }),
      checkpoint_every: '10',
    }),
  },
  'gpt2-imdb': {
    label: 'GPT-2 IMDb (TRL example)',
    description:
      "TRL's gpt2-sentiment example: lvwerra/gpt2-imdb tuned against lvwerra/distilbert-imdb on IMDb " +
      'reviews longer than 200 characters, with TRL PPOConfig defaults (batch_size 128). Needs a real GPU.',
    draft: () => ({
      policy: hub('lvwerra/gpt2-imdb'),
      reward: hub('lvwerra/distilbert-imdb'),
      rewardEngine: 'auto',
      prompts: { kind: 'imdb', url: '', file: null },
      config: configText(TRL_SENTIMENT.config),
      rollout: rolloutText(TRL_SENTIMENT.rollout),
      checkpoint_every: '10',
    }),
  },
};

export const DEFAULT_PRESET: PresetId = 'mini-imdb';

export function presetDraft(id: PresetId, target: SentimentTarget = 'positive'): SettingsDraft {
  return { preset: id, target, ...PRESETS[id].draft() };
}

/* ------------------------------------------------------------------------------------------------ */
/* The page URL's query                                                                              */

export interface LinkSettings {
  draft: SettingsDraft;
  /** The settings the link set, by name (policy, reward, prompts, target, batch_size, ...). */
  linked: string[];
  /** Query parameters that could not be used, each with why. */
  problems: string[];
}

const URL_LIKE = /^(https?:|blob:|\/|\.\.?\/)/;
const REPO = /^[\w.-]+(\/[\w.-]+)?$/;

/** "owner/name@rev", a URL or path (made absolute against the page), or "demo". */
function sourceFromLink(value: string, role: 'policy' | 'reward', base: string): SourceDraft | string {
  const v = value.trim();
  if (v === 'demo' || v === 'mini-imdb') return url(demoBase() + role);
  if (URL_LIKE.test(v)) return url(new URL(v, base).href);
  const [repo, revision = 'main'] = v.split('@');
  if (!REPO.test(repo))
    return `${role}=${value} is neither a URL nor a Hugging Face repo id (owner/name[@revision])`;
  return { ...hub(repo), revision };
}

function absoluteUrl(value: string, base: string): string | null {
  try {
    return new URL(value, base).href;
  } catch {
    return null;
  }
}

/**
 * Settings from a query string such as `?policy=<url or repo>&reward=...&prompts=<url>&target=negative
 * &batch_size=16`: the preset (`preset=gpt2-imdb`, else the demo) with the link's values on top.
 * Values are kept as typed; resolveSettings reports the bad ones.
 */
export function settingsFromLink(search: string, base: string): LinkSettings {
  const q = new URLSearchParams(search);
  const problems: string[] = [];
  const linked: string[] = [];
  const presetParam = q.get('preset');
  let preset: PresetId = DEFAULT_PRESET;
  if (presetParam !== null) {
    if (presetParam in PRESETS) preset = presetParam as PresetId;
    else problems.push(`preset=${presetParam}: the presets are ${Object.keys(PRESETS).join(', ')}`);
  }
  const d = presetDraft(preset);
  for (const [key, value] of q) {
    if (key === 'preset') continue;
    linked.push(key);
    if (key === 'policy' || key === 'reward') {
      const s = sourceFromLink(value, key, base);
      if (typeof s === 'string') problems.push(s);
      else d[key] = s;
    } else if (key === 'policy_revision' || key === 'reward_revision') {
      d[key === 'policy_revision' ? 'policy' : 'reward'].revision = value;
    } else if (key === 'reward_engine') {
      if (value === 'auto' || value === 'onnx' || value === 'webgpu') d.rewardEngine = value;
      else problems.push(`reward_engine=${value}: use auto, onnx or webgpu`);
    } else if (key === 'prompts') {
      const url = value === 'imdb' ? null : absoluteUrl(value, base);
      if (value === 'imdb') d.prompts = { kind: 'imdb', url: '', file: null };
      else if (url) d.prompts = { kind: 'url', url, file: null };
      else problems.push(`prompts=${value}: use a URL or imdb`);
    } else if (key === 'sentiment' || (key === 'target' && (value === 'positive' || value === 'negative'))) {
      if (value === 'positive' || value === 'negative') d.target = value;
      else problems.push(`${key}=${value}: use positive or negative`);
    } else if (key === 'checkpoint_every') {
      d.checkpoint_every = value;
    } else if ((ROLLOUT_KEYS as string[]).includes(key)) {
      d.rollout[key as RolloutKey] = value;
    } else if ((CONFIG_KEYS as string[]).includes(key)) {
      // `target` with a number is TRL's PPOConfig.target, the adaptive KL controller's target.
      d.config[key as ConfigKey] = value;
    } else {
      linked.pop();
      problems.push(`${key}: not a setting (hyperparameters use TRL PPOConfig names, e.g. batch_size)`);
    }
  }
  d.preset = linked.length ? 'custom' : preset;
  return { draft: d, linked, problems };
}

/* ------------------------------------------------------------------------------------------------ */
/* Validation                                                                                        */

function intField(field: string, raw: string, min: number, errors: FieldError[]): number {
  const x = parseDecimal(raw) ?? NaN;
  if (!Number.isSafeInteger(x) || x < min) {
    errors.push({ field, message: `must be an integer >= ${min}, got "${raw}"` });
  }
  return x;
}

type ResolvedSource =
  | { kind: 'hub'; repo: string; revision: string }
  | { kind: 'url'; href: string }
  | { kind: 'files'; files: LocalFiles };

function resolveSource(
  role: 'policy' | 'reward',
  s: SourceDraft,
  errors: FieldError[],
): ResolvedSource | null {
  if (s.kind === 'hub') {
    const repo = s.repo.trim();
    if (!REPO.test(repo))
      errors.push({ field: role, message: `"${s.repo}" is not a Hub repo id (owner/name)` });
    return { kind: 'hub', repo, revision: s.revision.trim() || 'main' };
  }
  if (s.kind === 'url') {
    try {
      return { kind: 'url', href: new URL(s.url.trim(), location.href).href };
    } catch {
      errors.push({ field: role, message: `"${s.url}" is not a URL` });
      return null;
    }
  }
  if (!s.files || s.files.size === 0) {
    errors.push({ field: role, message: 'choose the model folder (or its files)' });
    return null;
  }
  return { kind: 'files', files: s.files };
}

function resolvePrompts(p: PromptsDraft, errors: FieldError[]): PromptsSpec | null {
  if (p.kind === 'imdb') return { kind: 'imdb' };
  if (p.kind === 'url') {
    try {
      return { kind: 'url', url: new URL(p.url.trim(), location.href).href };
    } catch {
      errors.push({ field: 'prompts', message: `"${p.url}" is not a URL` });
      return null;
    }
  }
  if (!p.file) {
    errors.push({ field: 'prompts', message: 'choose a prompt file (.txt, .csv, .jsonl or .parquet)' });
    return null;
  }
  return { kind: 'file', file: p.file, name: p.file.name };
}

/** The PPOConfig of a draft, or one error per bad field (then the cross-field checks). */
export function resolveConfig(draft: Record<ConfigKey, string>): {
  config: PPOConfig | null;
  errors: FieldError[];
} {
  return parsePPOConfig(draft);
}

/** RunSettings from a draft, or every problem with it. */
export function resolveSettings(d: SettingsDraft): { settings: RunSettings | null; errors: FieldError[] } {
  const { config, errors } = resolveConfig(d.config);
  if (config && config.kl_penalty === 'full') {
    errors.push({
      field: 'kl_penalty',
      message: "'full' needs whole distributions; the trainer supports kl, abs, mse",
    });
  }
  const policy = resolveSource('policy', d.policy, errors);
  const reward = resolveSource('reward', d.reward, errors);
  const prompts = resolvePrompts(d.prompts, errors);
  const rolloutResult = parseRolloutSpec(d.rollout, TRL_SENTIMENT.rollout);
  errors.push(...rolloutResult.errors);
  const r: RolloutSpec | null = rolloutResult.rollout;
  const checkpointEvery = intField('checkpoint_every', d.checkpoint_every, 0, errors);
  if (errors.length || !config || !r || !policy || !reward || !prompts) return { settings: null, errors };
  return {
    settings: {
      policy: policy.kind === 'url' ? { kind: 'url', base: policy.href } : policy,
      reward: reward.kind === 'url' ? { kind: 'url', url: reward.href } : reward,
      rewardEngine: d.rewardEngine,
      prompts,
      target: d.target,
      config,
      rollout: r,
      checkpointEvery,
      // The LoRA switches live on the method form: resolvePpoRun (method.ts) fills this in.
      lora: null,
    },
    errors,
  };
}
