/**
 * LoRA switches by TRL ModelConfig's names (use_peft, lora_r, lora_alpha, lora_dropout,
 * lora_target_modules, use_rslora), presets that put gpt2-medium and gpt2-large within reach with
 * LoRA on, and a proposal to switch LoRA on when full fine-tuning will not fit the GPU.
 */
import { TRL_LORA_DEFAULTS } from '../model/lora-table.ts';
import { GPT2_SIZES, LORA_KEYS, fullFineTuneProblem, loraText, useMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import { BoolField, TextField } from './fields.tsx';

/** TRL ModelConfig's defaults on every Conv1D of a block (the LoRA issue's r 16 setting). */
const PRESET_LORA = { ...TRL_LORA_DEFAULTS, targetModules: ['c_attn', 'c_proj', 'c_fc'] };

const LORA_PRESETS: { repo: string; label: string }[] = [
  { repo: 'openai-community/gpt2-medium', label: 'gpt2-medium (355M) + LoRA' },
  { repo: 'openai-community/gpt2-large', label: 'gpt2-large (774M) + LoRA' },
];

/** Parameters of the form's policy, when known: a Hub GPT-2 by name, else the last run's. */
function usePolicyParams(): { params: number; name: string } | null {
  const policy = useStudio((s) => s.draft.policy);
  const info = useStudio((s) => s.run.info);
  if (policy.kind === 'hub') {
    const name = policy.repo.trim().split('/').pop() ?? '';
    if (name in GPT2_SIZES) return { params: GPT2_SIZES[name], name };
  }
  return info ? { params: info.modelShape.params, name: info.policy } : null;
}

export function LoraSettings({ errors }: { errors: Map<string, string> }) {
  const lora = useMethod((s) => s.draft.lora);
  const setDraft = useMethod((s) => s.setDraft);
  const limits = useStudio((s) => s.adapter?.limits ?? null);
  const known = usePolicyParams();
  const on = lora.use_peft === 'true';
  const problem = known && limits && !on ? fullFineTuneProblem(known.params, limits) : null;
  const set = (k: string, v: string) => setDraft({ lora: { ...lora, [k]: v } });
  const preset = (repo: string) => {
    const studio = useStudio.getState();
    studio.setDraft({ policy: { ...studio.draft.policy, kind: 'hub', repo, revision: 'main' } });
    setDraft({ lora: loraText(PRESET_LORA, true) });
  };
  return (
    <fieldset className="group" data-testid="lora-settings">
      <legend>LoRA (TRL ModelConfig, peft)</legend>
      <div className="field">
        <label htmlFor="lora-preset">Preset</label>
        <select id="lora-preset" value="" onChange={(e) => e.target.value && preset(e.target.value)}>
          <option value="">choose…</option>
          {LORA_PRESETS.map((p) => (
            <option key={p.repo} value={p.repo}>
              {p.label}
            </option>
          ))}
        </select>
      </div>
      {problem && (
        <p className="field-error" role="alert" data-testid="lora-proposal">
          Full fine-tuning of {known!.name} will likely not fit: {problem}.{' '}
          <button
            type="button"
            className="link"
            onClick={() => setDraft({ lora: loraText(PRESET_LORA, true) })}
          >
            Use LoRA
          </button>
        </p>
      )}
      <div className="fields">
        {LORA_KEYS.map((k) => {
          const common = {
            name: k,
            value: lora[k],
            error: errors.get(k),
            linked: false,
            onChange: (v: string) => set(k, v),
          };
          if (k === 'use_peft' || k === 'use_rslora') return <BoolField key={k} {...common} />;
          return on ? <TextField key={k} {...common} /> : null;
        })}
      </div>
    </fieldset>
  );
}
