import { useMemo } from 'react';
import { DPO_CONFIG_DEFAULTS } from '../rl/dpo-config.ts';
import { REWARD_DEFAULTS } from '../rl/reward-model-trainer.ts';
import {
  DPO_KEYS,
  REWARD_KEYS,
  resolveLora,
  resolvePreferenceSettings,
  useMethod,
  type Method,
  type PairsDraft,
} from '../store/method.ts';
import type { FieldError } from '../store/settings.ts';
import { useStudio } from '../store/store.ts';
import { BoolField, FieldMessage, Segmented, TextField } from './fields.tsx';
import { LoraSettings } from './LoraSettings.tsx';

const METHODS: { id: Method; label: string; hint: string }[] = [
  { id: 'ppo', label: 'PPO', hint: 'TRL PPOTrainer against the reward model below' },
  {
    id: 'dpo',
    label: 'DPO',
    hint: 'TRL DPOTrainer on preference pairs; the reference is the initial policy',
  },
  {
    id: 'reward',
    label: 'Reward model',
    hint: 'TRL RewardTrainer: the policy GPT-2 with a one-logit score head',
  },
];

/** The fields most runs touch; the rest fold away. */
const MAIN: Record<'dpo' | 'reward', string[]> = {
  dpo: [
    'beta',
    'loss_type',
    'learning_rate',
    'per_device_train_batch_size',
    'max_steps',
    'max_length',
    'max_prompt_length',
    'seed',
  ],
  reward: [
    'learning_rate',
    'per_device_train_batch_size',
    'max_steps',
    'max_length',
    'center_rewards_coefficient',
    'seed',
  ],
};

/** The form's DPO / reward-model problems, by field (first one per field). */
export function useMethodErrors(): Map<string, string> {
  const draft = useMethod((s) => s.draft);
  const policy = useStudio((s) => s.draft.policy);
  return useMemo(() => {
    const m = new Map<string, string>();
    if (draft.method === 'ppo') {
      const errors: FieldError[] = [];
      resolveLora(draft.lora, errors);
      for (const e of errors) if (!m.has(e.field)) m.set(e.field, e.message);
      return m;
    }
    for (const e of resolvePreferenceSettings(draft, policy).errors)
      if (!m.has(e.field)) m.set(e.field, e.message);
    return m;
  }, [draft, policy]);
}

function PairsField({
  value,
  onChange,
  error,
}: {
  value: PairsDraft;
  onChange: (v: PairsDraft) => void;
  error?: string;
}) {
  const set = (patch: Partial<PairsDraft>) => onChange({ ...value, ...patch });
  const kinds: { kind: PairsDraft['kind']; label: string }[] = [
    { kind: 'url', label: 'URL' },
    { kind: 'hub', label: 'Hub dataset' },
    { kind: 'file', label: 'Local file' },
  ];
  return (
    <fieldset className="source" data-testid="pairs-source">
      <legend>Preference pairs (prompt, chosen, rejected)</legend>
      <Segmented label="Pairs source" options={kinds} value={value.kind} onChange={(kind) => set({ kind })} />
      {value.kind === 'url' && (
        <input
          aria-label="Pairs URL"
          placeholder="https://host/pairs.jsonl (.jsonl, .csv, .parquet)"
          value={value.url}
          onChange={(e) => set({ url: e.target.value })}
        />
      )}
      {value.kind === 'hub' && (
        <div className="row">
          <input
            aria-label="Pairs dataset"
            placeholder="owner/name"
            value={value.repo}
            onChange={(e) => set({ repo: e.target.value })}
          />
          <input
            aria-label="Pairs file in the dataset"
            placeholder="data/train.jsonl"
            value={value.path}
            onChange={(e) => set({ path: e.target.value })}
          />
        </div>
      )}
      {value.kind === 'file' && (
        <div className="row">
          <input
            type="file"
            aria-label="Pairs file"
            accept=".jsonl,.ndjson,.csv,.parquet"
            onChange={(e) => {
              const f = e.target.files?.[0] ?? null;
              set({ blob: f, name: f?.name ?? '' });
            }}
          />
          {value.blob && <span className="hint">{value.name}</span>}
        </div>
      )}
      <FieldMessage error={error} />
    </fieldset>
  );
}

function ConfigFields({
  keys,
  values,
  defaults,
  errors,
  onChange,
}: {
  keys: string[];
  values: Record<string, string>;
  defaults: object;
  errors: Map<string, string>;
  onChange: (k: string, v: string) => void;
}) {
  return (
    <div className="fields">
      {keys.map((k) => {
        const common = {
          name: k,
          value: values[k],
          error: errors.get(k),
          linked: false,
          onChange: (v: string) => onChange(k, v),
        };
        return typeof (defaults as Record<string, unknown>)[k] === 'boolean' ? (
          <BoolField key={k} {...common} />
        ) : (
          <TextField key={k} {...common} />
        );
      })}
    </div>
  );
}

/** The method switch and, for DPO and reward models, the pairs and the trainer's config by TRL name. */
export function MethodSettings() {
  const draft = useMethod((s) => s.draft);
  const setDraft = useMethod((s) => s.setDraft);
  const setMethod = useMethod((s) => s.setMethod);
  const phase = useStudio((s) => s.run.phase);
  const errors = useMethodErrors();
  const busy = !['idle', 'stopped', 'finished', 'failed'].includes(phase);
  const m = draft.method;
  return (
    <section className="panel settings method" aria-label="Training method" data-testid="method-settings">
      <fieldset disabled={busy} className="plain">
        <Segmented
          label="Method"
          testId="method-switch"
          options={METHODS.map((x) => ({ kind: x.id, label: x.label, title: x.hint }))}
          value={m}
          onChange={setMethod}
        />
        <p className="hint">{METHODS.find((x) => x.id === m)!.hint}</p>
        <LoraSettings errors={errors} />
        {m !== 'ppo' && (
          <>
            <PairsField
              value={draft.pairs}
              onChange={(pairs) => setDraft({ pairs })}
              error={errors.get('pairs')}
            />
            {errors.has('policy') && <FieldMessage error={`policy: ${errors.get('policy')}`} />}
            <fieldset className="group">
              <legend>{m === 'dpo' ? 'DPO (TRL DPOConfig)' : 'Reward model (TRL RewardConfig)'}</legend>
              {m === 'dpo' ? (
                <>
                  <ConfigFields
                    keys={MAIN.dpo}
                    values={draft.dpo}
                    defaults={DPO_CONFIG_DEFAULTS}
                    errors={errors}
                    onChange={(k, v) => setDraft({ dpo: { ...draft.dpo, [k]: v } })}
                  />
                  <details open={DPO_KEYS.some((k) => !MAIN.dpo.includes(k) && errors.has(k))}>
                    <summary>More DPO settings</summary>
                    <ConfigFields
                      keys={DPO_KEYS.filter((k) => !MAIN.dpo.includes(k))}
                      values={draft.dpo}
                      defaults={DPO_CONFIG_DEFAULTS}
                      errors={errors}
                      onChange={(k, v) => setDraft({ dpo: { ...draft.dpo, [k]: v } })}
                    />
                  </details>
                </>
              ) : (
                <>
                  <ConfigFields
                    keys={MAIN.reward}
                    values={draft.reward}
                    defaults={REWARD_DEFAULTS}
                    errors={errors}
                    onChange={(k, v) => setDraft({ reward: { ...draft.reward, [k]: v } })}
                  />
                  <details open={REWARD_KEYS.some((k) => !MAIN.reward.includes(k) && errors.has(k))}>
                    <summary>More reward-model settings</summary>
                    <ConfigFields
                      keys={REWARD_KEYS.filter((k) => !MAIN.reward.includes(k))}
                      values={draft.reward}
                      defaults={REWARD_DEFAULTS}
                      errors={errors}
                      onChange={(k, v) => setDraft({ reward: { ...draft.reward, [k]: v } })}
                    />
                  </details>
                </>
              )}
            </fieldset>
          </>
        )}
      </fieldset>
    </section>
  );
}
