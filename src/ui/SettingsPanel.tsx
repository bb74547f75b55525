import { useMemo } from 'react';
import { TRL_DEFAULTS, fieldKind, parseDecimal, totalPpoEpochs } from '../rl/config.ts';
import { KL_PENALTIES } from '../rl/rewards.ts';
import {
  CONFIG_KEYS,
  PRESETS,
  ROLLOUT_KEYS,
  configText,
  resolveSettings,
  type ConfigKey,
  type PresetId,
  type SettingsDraft,
} from '../store/settings.ts';
import { useStudio } from '../store/store.ts';
import { BoolField, HELP, TextField } from './fields.tsx';
import { MemoryEstimate } from './MemoryEstimate.tsx';
import { PromptsField, SourceField } from './SourceField.tsx';

/** The hyperparameters most runs touch; the rest are under "More PPO settings". */
const MAIN_KEYS: ConfigKey[] = [
  'steps',
  'batch_size',
  'mini_batch_size',
  'ppo_epochs',
  'learning_rate',
  'init_kl_coef',
  'adap_kl_ctrl',
  'target',
  'cliprange',
  'vf_coef',
  'seed',
];

/** The form's problems, by field (first one per field). */
export function useSettingsErrors(): Map<string, string> {
  const draft = useStudio((s) => s.draft);
  return useMemo(() => {
    const m = new Map<string, string>();
    for (const e of resolveSettings(draft).errors) if (!m.has(e.field)) m.set(e.field, e.message);
    return m;
  }, [draft]);
}

function ConfigFields({
  keys,
  draft,
  errors,
  linked,
  setConfig,
}: {
  keys: ConfigKey[];
  draft: SettingsDraft;
  errors: Map<string, string>;
  linked: Set<string>;
  setConfig: (k: ConfigKey, v: string) => void;
}) {
  return (
    <div className="fields">
      {keys.map((k) => {
        const common = { name: k, value: draft.config[k], error: errors.get(k), linked: linked.has(k) };
        if (fieldKind(k) === 'boolean')
          return <BoolField key={k} {...common} onChange={(v) => setConfig(k, v)} />;
        if (k === 'kl_penalty') {
          return (
            <div className={`field${common.linked ? ' linked' : ''}`} key={k} title={HELP.kl_penalty}>
              <label htmlFor="kl_penalty">kl_penalty</label>
              <select id="kl_penalty" value={common.value} onChange={(e) => setConfig(k, e.target.value)}>
                {KL_PENALTIES.map((p) => (
                  <option key={p} value={p} disabled={p === 'full'}>
                    {p}
                  </option>
                ))}
              </select>
            </div>
          );
        }
        return <TextField key={k} {...common} onChange={(v) => setConfig(k, v)} />;
      })}
    </div>
  );
}

/** Everything a run is started with; locked while a run is going. */
export function SettingsPanel() {
  const draft = useStudio((s) => s.draft);
  const linkedList = useStudio((s) => s.linked);
  const problems = useStudio((s) => s.linkProblems);
  const phase = useStudio((s) => s.run.phase);
  const setDraft = useStudio((s) => s.setDraft);
  const applyPreset = useStudio((s) => s.applyPreset);
  const errors = useSettingsErrors();
  const linked = useMemo(() => new Set(linkedList), [linkedList]);
  const busy = !['idle', 'stopped', 'finished', 'failed'].includes(phase);
  const setConfig = (k: ConfigKey, v: string) => setDraft({ config: { ...draft.config, [k]: v } });
  const steps = parseDecimal(draft.config.steps) ?? 0;
  const batch = parseDecimal(draft.config.batch_size) ?? 0;
  const ppoSteps = steps > 0 && batch > 0 ? totalPpoEpochs({ steps, batch_size: batch }) : null;
  const more = CONFIG_KEYS.filter((k) => !MAIN_KEYS.includes(k));

  return (
    <section className="panel settings" aria-labelledby="settings-title" data-testid="settings">
      <h2 id="settings-title">Settings</h2>
      {linkedList.length > 0 && (
        <p className="link-note" data-testid="link-settings">
          Set by this page's link: <strong>{linkedList.join(', ')}</strong>
        </p>
      )}
      {problems.map((p) => (
        <p className="field-error" key={p}>
          Link: {p}
        </p>
      ))}
      <fieldset disabled={busy} className="plain">
        <div className="field">
          <label htmlFor="preset">Preset</label>
          <select
            id="preset"
            value={draft.preset}
            onChange={(e) => e.target.value !== 'custom' && applyPreset(e.target.value as PresetId)}
          >
            {Object.entries(PRESETS).map(([id, p]) => (
              <option key={id} value={id}>
                {p.label}
              </option>
            ))}
            <option value="custom">custom</option>
          </select>
          {draft.preset !== 'custom' && <p className="hint">{PRESETS[draft.preset].description}</p>}
        </div>
        <SourceField
          legend="Policy (GPT-2)"
          value={draft.policy}
          onChange={(policy) => setDraft({ policy })}
          error={errors.get('policy')}
          linked={linked.has('policy')}
        />
        <SourceField
          legend="Reward model"
          value={draft.reward}
          onChange={(reward) => setDraft({ reward })}
          error={errors.get('reward')}
          linked={linked.has('reward')}
        />
        <div className="field">
          <label htmlFor="reward-engine">Reward engine</label>
          <select
            id="reward-engine"
            value={draft.rewardEngine}
            onChange={(e) => setDraft({ rewardEngine: e.target.value as SettingsDraft['rewardEngine'] })}
          >
            <option value="auto">auto (ONNX if the folder has it)</option>
            <option value="onnx">ONNX (onnxruntime-web)</option>
            <option value="webgpu">DistilBERT on our WebGPU kernels</option>
          </select>
        </div>
        <PromptsField
          value={draft.prompts}
          onChange={(prompts) => setDraft({ prompts })}
          error={errors.get('prompts')}
          linked={linked.has('prompts')}
        />
        <fieldset className="group">
          <legend>
            PPO (TRL PPOConfig){' '}
            <button
              type="button"
              className="link"
              onClick={() => setDraft({ config: configText(TRL_DEFAULTS) })}
            >
              TRL defaults
            </button>
          </legend>
          <ConfigFields
            keys={MAIN_KEYS}
            draft={draft}
            errors={errors}
            linked={linked}
            setConfig={setConfig}
          />
          {ppoSteps !== null && (
            <p className="hint" data-testid="ppo-steps">
              = {ppoSteps} PPO steps of {batch} samples
            </p>
          )}
          <details open={more.some((k) => errors.has(k) || linked.has(k))}>
            <summary>More PPO settings</summary>
            <ConfigFields keys={more} draft={draft} errors={errors} linked={linked} setConfig={setConfig} />
          </details>
        </fieldset>
        <fieldset className="group">
          <legend>Queries, responses, checkpoints</legend>
          <div className="fields">
            {ROLLOUT_KEYS.map((k) => (
              <TextField
                key={k}
                name={k}
                value={draft.rollout[k]}
                error={errors.get(k)}
                linked={linked.has(k)}
                onChange={(v) => setDraft({ rollout: { ...draft.rollout, [k]: v } })}
              />
            ))}
            <TextField
              name="checkpoint_every"
              value={draft.checkpoint_every}
              error={errors.get('checkpoint_every')}
              linked={linked.has('checkpoint_every')}
              onChange={(checkpoint_every) => setDraft({ checkpoint_every })}
            />
          </div>
        </fieldset>
        <MemoryEstimate />
      </fieldset>
    </section>
  );
}
