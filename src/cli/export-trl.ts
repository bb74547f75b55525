import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exportTrl } from '../export-trl/export.ts';
import {
  parseRunConfig,
  RunConfigError,
  type Dataset,
  type RunConfig,
  type Source,
} from '../export-trl/run-config.ts';
import { UsageError, type Command } from './command.ts';

/** Local paths in RUN.json are relative to its folder; the script gets them absolute. */
function absolute(run: RunConfig, base: string): RunConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const src = (s: Source): Source => (s.kind === 'path' ? { ...s, path: abs(s.path) } : s);
  const ds = (d: Dataset): Dataset => (d.kind === 'path' ? { ...d, path: abs(d.path) } : d);
  if (run.kind === 'ppo')
    return { ...run, policy: src(run.policy), reward: src(run.reward), prompts: ds(run.prompts) };
  if (run.kind === 'dpo') return { ...run, policy: src(run.policy), pairs: ds(run.pairs) };
  return { ...run, model: src(run.model), pairs: ds(run.pairs) };
}

export const exportTrlCommand: Command = {
  name: 'export-trl',
  summary: 'write a TRL script + config for a run (PPO, DPO, reward model), for accelerate launch on GPUs',
  usage:
    'rlhf-studio export-trl --config RUN.json --out DIR\n' +
    '  RUN.json  {"kind": "ppo", "policy": SOURCE, "reward": SOURCE, "prompts": DATA, "target": "positive",\n' +
    '             "rollout": {...}, "config": {PPOConfig fields by TRL name, LoRA fields}}\n' +
    '            {"kind": "dpo", "policy": SOURCE, "pairs": DATA, "config": {DPOConfig fields, LoRA fields}}\n' +
    '            {"kind": "reward", "model": SOURCE, "pairs": DATA, "config": {RewardConfig fields, LoRA fields}}\n' +
    '  SOURCE    {"kind": "hub", "repo": "lvwerra/gpt2-imdb", "revision": "main"} | {"kind": "path", "path": DIR}\n' +
    '  DATA      {"kind": "imdb"} | {"kind": "hub", "repo": R, "split": S, "column": C} |\n' +
    '            {"kind": "path", "path": FILE.txt|.csv|.jsonl|.parquet, "column": C}; pairs: prompt, chosen, rejected\n' +
    '  LoRA      use_peft, lora_r, lora_alpha, lora_dropout, lora_target_modules, use_rslora (a peft LoraConfig)\n' +
    '  Paths are relative to RUN.json. DIR gets train_<kind>.py, trl_config.json, requirements.txt (TRL\n' +
    '  0.9.6 for PPO, 1.13.0 for DPO and reward models) and launch.sh (accelerate launch).',
  async run(argv) {
    const { values: v } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, out: { type: 'string' } },
    });
    if (!v.config) throw new UsageError('--config RUN.json is required');
    if (!v.out) throw new UsageError('--out DIR is required');
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(v.config, 'utf8'));
    } catch (e) {
      throw new UsageError(`${v.config}: ${(e as Error).message}`);
    }
    let run: RunConfig;
    try {
      run = parseRunConfig(json);
    } catch (e) {
      if (e instanceof RunConfigError) throw new UsageError(`${v.config}: ${e.message}`);
      throw e;
    }
    const files = exportTrl(absolute(run, dirname(resolve(v.config))));
    mkdirSync(v.out, { recursive: true });
    for (const [name, text] of files) writeFileSync(join(v.out, name), text);
    chmodSync(join(v.out, 'launch.sh'), 0o755);
    console.log(`wrote ${[...files.keys()].map((f) => join(v.out!, f)).join(', ')}`);
    return 0;
  },
};
