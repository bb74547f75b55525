/**
 * The studio's run settings as RUN.json for src/export-trl (checked there by parseRunConfig). Models
 * and data picked as local files or given by URL become relative paths the script reads
 * (models/policy, models/reward, data/NAME), listed in `local` for the user to put there.
 */
import { DPO_DEFAULTS, REWARD_DEFAULTS, type Dataset, type Source } from '../export-trl/run-config.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import type {
  PairsSpec,
  PolicySpec,
  PreferenceRunSettings,
  PromptsSpec,
  RewardSpec,
  RunSettings,
} from '../protocol.ts';

/** A model source as from_pretrained reads it; `local` collects what the user must copy in. */
function source(s: PolicySpec | RewardSpec, dir: string, local: string[]): Source {
  if (s.kind === 'hub') return { kind: 'hub', repo: s.repo, revision: s.revision || null };
  local.push(
    `${dir}/: ${s.kind === 'files' ? 'the model folder picked in the studio' : 'the files at ' + ('base' in s ? s.base : s.url)}`,
  );
  return { kind: 'path', path: dir };
}

function fileName(urlOrName: string): string {
  return urlOrName.split(/[/?#]/).filter(Boolean).pop() ?? 'data.txt';
}

function dataset(d: PromptsSpec | PairsSpec, local: string[]): Dataset | { kind: 'imdb' } {
  if (d.kind === 'imdb') return { kind: 'imdb' };
  const name =
    d.kind === 'url' ? fileName(new URL(d.url, 'http://studio.invalid/').pathname) : fileName(d.name);
  local.push(`data/${name}: ${d.kind === 'url' ? d.url : 'the file picked in the studio'}`);
  return { kind: 'path', path: `data/${name}`, column: null };
}

function loraFields(l: LoraConfig | null): Record<string, unknown> {
  if (!l) return { use_peft: false };
  return {
    use_peft: true,
    lora_r: l.r,
    lora_alpha: l.alpha,
    lora_dropout: l.dropout,
    lora_target_modules: [...l.targetModules],
    use_rslora: l.useRslora,
  };
}

/** The fields of `config` that `defaults` names (RUN.json refuses others). */
function pick(config: object, defaults: object): Record<string, unknown> {
  const c = config as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(defaults)
      .filter((k) => k in c)
      .map((k) => [k, c[k]]),
  );
}

export type RunJson = { run: Record<string, unknown>; local: string[] };

/** RUN.json of a PPO run's settings, and the local files its script expects. */
export function ppoRunJson(settings: RunSettings): RunJson {
  const local: string[] = [];
  const run = {
    kind: 'ppo',
    policy: source(settings.policy, 'models/policy', local),
    reward: source(settings.reward, 'models/reward', local),
    prompts: dataset(settings.prompts, local),
    target: settings.target,
    rollout: settings.rollout,
    config: { ...settings.config, ...loraFields(settings.lora) },
  };
  return { run, local };
}

/** RUN.json of a DPO or reward-model run's settings (LoRA as TRL ModelConfig's fields). */
export function preferenceRunJson(settings: PreferenceRunSettings): RunJson {
  const local: string[] = [];
  const model = source(settings.policy, 'models/policy', local);
  const pairs = dataset(settings.pairs, local);
  const lora = loraFields(settings.lora);
  const run =
    settings.method === 'dpo'
      ? { kind: 'dpo', policy: model, pairs, config: { ...pick(settings.config, DPO_DEFAULTS), ...lora } }
      : { kind: 'reward', model, pairs, config: { ...pick(settings.config, REWARD_DEFAULTS), ...lora } };
  return { run, local };
}
