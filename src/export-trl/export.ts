/**
 * A run as a TRL project: the script for its kind, trl_config.json (every setting the script reads),
 * requirements.txt with the TRL version pinned, and launch.sh (accelerate launch, any number of GPUs).
 * Pure text, no Node imports, so the studio can offer the same files for download.
 *
 * PPO runs on TRL 0.9.6, whose PPOTrainer our maths follows (the classic PPOTrainer left TRL in
 * 0.12); DPO and reward models run on TRL 1.13.0's DPOTrainer and RewardTrainer.
 */
import { PPO_SCRIPT } from './ppo-script.ts';
import { DPO_SCRIPT, REWARD_SCRIPT } from './pairs-scripts.ts';
import type { Dataset, LoraFields, RunConfig, Source } from './run-config.ts';

export const TRL_PPO_VERSION = '0.9.6';
export const TRL_VERSION = '1.13.0';

/** File name -> text. */
export type TrlFiles = Map<string, string>;

/** A model as from_pretrained takes it. */
function model(s: Source): { name_or_path: string; revision: string | null } {
  return s.kind === 'hub'
    ? { name_or_path: s.repo, revision: s.revision }
    : { name_or_path: s.path, revision: null };
}

/** A data set as load_dataset takes it: a Hub repo and split, or a builder and data_files. */
function data(d: Dataset): {
  builder: string;
  data_files: string | null;
  split: string;
  column: string | null;
} {
  if (d.kind === 'hub') return { builder: d.repo, data_files: null, split: d.split, column: d.column };
  const ext = d.path.toLowerCase().split('.').pop();
  const builder = ext === 'txt' ? 'text' : ext === 'jsonl' ? 'json' : (ext ?? 'text');
  return { builder, data_files: d.path, split: 'train', column: builder === 'text' ? 'text' : d.column };
}

/** peft.LoraConfig's arguments, or null without use_peft. */
function loraConfig(l: LoraFields, taskType: 'CAUSAL_LM' | 'SEQ_CLS') {
  if (!l.use_peft) return null;
  return {
    r: l.lora_r,
    lora_alpha: l.lora_alpha,
    lora_dropout: l.lora_dropout,
    target_modules: l.lora_target_modules,
    use_rslora: l.use_rslora,
    bias: 'none',
    task_type: taskType,
  };
}

/** What the script reads: the run resolved into from_pretrained / load_dataset / TRL config arguments. */
export function trlConfig(run: RunConfig): Record<string, unknown> {
  if (run.kind === 'ppo') {
    return {
      kind: 'ppo',
      trl_version: TRL_PPO_VERSION,
      policy: model(run.policy),
      reward: model(run.reward),
      target_label: run.target === 'positive' ? 'POSITIVE' : 'NEGATIVE',
      prompts: data(run.prompts),
      rollout: run.rollout,
      ppo_config: run.config,
      lora: loraConfig(run.lora, 'CAUSAL_LM'),
    };
  }
  // Trainer logs go to stdout only; set report_to in trl_config.json to use a tracker.
  const logging = { logging_steps: 1, report_to: 'none' };
  if (run.kind === 'dpo') {
    const { max_prompt_length, loss_type, ...rest } = run.config;
    return {
      kind: 'dpo',
      trl_version: TRL_VERSION,
      policy: model(run.policy),
      pairs: data(run.pairs),
      max_prompt_length,
      dpo_config: { ...rest, loss_type: [loss_type], ...logging },
      lora: loraConfig(run.lora, 'CAUSAL_LM'),
    };
  }
  return {
    kind: 'reward',
    trl_version: TRL_VERSION,
    model: model(run.model),
    pairs: data(run.pairs),
    reward_config: { ...run.config, ...logging },
    lora: loraConfig(run.lora, 'SEQ_CLS'),
  };
}

const SCRIPTS = {
  ppo: { file: 'train_ppo.py', text: PPO_SCRIPT },
  dpo: { file: 'train_dpo.py', text: DPO_SCRIPT },
  reward: { file: 'train_reward.py', text: REWARD_SCRIPT },
} as const;

/** requirements.txt: TRL pinned, with the libraries of its time for 0.9.6. */
function requirements(run: RunConfig): string {
  const peft = run.lora.use_peft;
  if (run.kind === 'ppo') {
    // TRL 0.9.6 (July 2024) with the transformers/accelerate/datasets/peft releases of that month;
    // it needs numpy < 2 and tyro.
    return [
      `trl==${TRL_PPO_VERSION}`,
      'transformers==4.44.2',
      'accelerate==0.33.0',
      'datasets==2.21.0',
      'numpy<2',
      'tyro>=0.5.11',
      'torch>=2.1',
      ...(peft ? ['peft==0.12.0'] : []),
      '',
    ].join('\n');
  }
  return [
    `trl==${TRL_VERSION}`,
    'accelerate>=1.4.0',
    'datasets>=4.7.0',
    'torch>=2.4',
    ...(peft ? ['peft>=0.13.0'] : []),
    '',
  ].join('\n');
}

function launch(script: string): string {
  return `#!/bin/sh
# Runs ${script} on every GPU of this machine (accelerate config sets up several machines, DeepSpeed, FSDP):
#   pip install -r requirements.txt
#   accelerate config            # once per machine; or: accelerate launch --num_processes N ...
#   sh launch.sh [--output_dir DIR]
# A TRL PPO step gathers batch_size samples per process: with N processes, one step sees N * batch_size.
cd "$(dirname "$0")" && exec accelerate launch ${script} --config trl_config.json "$@"
`;
}

/** The files of the TRL project for `run`. */
export function exportTrl(run: RunConfig): TrlFiles {
  const { file, text } = SCRIPTS[run.kind];
  return new Map([
    [file, text],
    ['trl_config.json', JSON.stringify(trlConfig(run), null, 2) + '\n'],
    ['requirements.txt', requirements(run)],
    ['launch.sh', launch(file)],
  ]);
}
