import { useId } from 'react';
import type { ConfigKey, RolloutKey } from '../store/settings.ts';

/** One line under a field: its problem, announced to screen readers. */
export function FieldMessage({ error, id }: { error?: string; id?: string }) {
  if (!error) return null;
  return (
    <span className="field-error" role="alert" id={id}>
      {error}
    </span>
  );
}

/** What each setting does (TRL 0.9.6 PPOConfig's docs, shortened), shown as the field's title. */
export const HELP: Partial<Record<ConfigKey | RolloutKey | 'checkpoint_every', string>> = {
  steps: 'Samples to train on in all (TRL counts samples): PPO steps = ceil(steps / batch_size)',
  batch_size: 'Samples per PPO step (rollouts scored together)',
  mini_batch_size: 'Samples per forward/backward pass (one optimiser step each)',
  gradient_accumulation_steps: 'Minibatches whose gradients add up before an optimiser step',
  ppo_epochs: 'Passes over the batch per PPO step',
  learning_rate: 'Adam learning rate',
  init_kl_coef: 'Initial KL penalty coefficient',
  adap_kl_ctrl: 'Adapt the KL coefficient towards target',
  target: 'Target KL of the adaptive controller (not the sentiment)',
  horizon: 'Horizon, in samples, of the adaptive KL controller',
  kl_penalty: "Per-token KL estimate in the reward: kl, abs or mse ('full' is not supported)",
  gamma: 'GAE discount',
  lam: 'GAE lambda',
  cliprange: 'Clip range of the policy ratio',
  cliprange_value: 'Clip range of the value prediction',
  vf_coef: 'Weight of the value loss',
  max_grad_norm: 'Clip the gradient norm to this (none: no clipping)',
  early_stopping: 'Stop a step early when policy KL > 1.5 * target_kl',
  target_kl: 'KL bound of early stopping',
  ratio_threshold: 'Skip minibatches whose mean ratio exceeds this',
  use_score_scaling: 'Divide scores by their running std',
  use_score_norm: 'Also subtract the running mean (with use_score_scaling)',
  score_clip: 'Clip scores to [-score_clip, score_clip] (none: no clipping)',
  whiten_rewards: 'Whiten rewards before computing advantages',
  seed: 'Seed of sampling, minibatch order and prompt order',
  query_min_tokens: 'Shortest query, in GPT-2 tokens (TRL LengthSampler(2, 8))',
  query_max_tokens: 'One past the longest query (exclusive)',
  response_min_length: 'Shortest response, in tokens (TRL LengthSampler(4, 16))',
  response_max_length: 'One past the longest response (exclusive)',
  min_prompt_chars: 'Keep prompts longer than this many characters (TRL: 200)',
  checkpoint_every: 'Save a checkpoint to this browser (OPFS) every N PPO steps; 0: never',
};

/** A labelled text input for one setting, with its error and a mark when the page's link set it. */
export function TextField({
  name,
  value,
  onChange,
  error,
  linked,
}: {
  name: string;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  linked: boolean;
}) {
  const id = useId();
  return (
    <div
      className={`field${error ? ' invalid' : ''}${linked ? ' linked' : ''}`}
      title={HELP[name as ConfigKey]}
    >
      <label htmlFor={id}>{name}</label>
      <input
        id={id}
        name={name}
        value={value}
        spellCheck={false}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-err` : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      <FieldMessage error={error} id={`${id}-err`} />
    </div>
  );
}

/** A checkbox for a boolean setting, kept as 'true' / 'false' in the draft. */
export function BoolField({
  name,
  value,
  onChange,
  linked,
  error,
}: {
  name: string;
  value: string;
  onChange: (v: string) => void;
  linked: boolean;
  error?: string;
}) {
  const id = useId();
  return (
    <div className={`field bool${linked ? ' linked' : ''}`} title={HELP[name as ConfigKey]}>
      <input
        id={id}
        type="checkbox"
        checked={value === 'true'}
        onChange={(e) => onChange(String(e.target.checked))}
      />
      <label htmlFor={id}>{name}</label>
      <FieldMessage error={error} />
    </div>
  );
}

/** A radio group drawn as segmented buttons: one of `options`, by its `kind`. */
export function Segmented<K extends string>({
  label,
  options,
  value,
  onChange,
  testId,
}: {
  label: string;
  options: readonly { kind: K; label: string; title?: string }[];
  value: K;
  onChange: (kind: K) => void;
  testId?: string;
}) {
  const id = useId();
  return (
    <div className="segmented" role="radiogroup" aria-label={label} data-testid={testId}>
      {options.map((o) => (
        <label key={o.kind} title={o.title}>
          <input
            type="radio"
            name={`${id}-kind`}
            value={o.kind}
            checked={value === o.kind}
            onChange={() => onChange(o.kind)}
          />
          {o.label}
        </label>
      ))}
    </div>
  );
}

/** How many queries to evaluate: 1 to 256 (evaluate.ts's bound), typed as a number. */
export function QueryCount({
  id,
  label,
  value,
  onChange,
}: {
  id?: string;
  label?: string;
  value: number;
  onChange: (n: number) => void;
}) {
  return (
    <input
      id={id}
      aria-label={label}
      className="narrow"
      type="number"
      min={1}
      max={256}
      value={value}
      onChange={(e) => onChange(Math.max(1, Math.min(256, Math.round(Number(e.target.value)) || 1)))}
    />
  );
}
