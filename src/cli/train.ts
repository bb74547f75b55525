import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../gpu/node.ts';
import { decode } from '../model/tokenizer.ts';
import { TRL_DEFAULTS, validatePPOConfig, type PPOConfig } from '../rl/config.ts';
import { TrainingSession } from '../rl/session.ts';
import { TRL_SENTIMENT_ROLLOUT } from '../rl/trainer.ts';
import { sentimentReward, type SentimentTarget } from '../reward/types.ts';
import { UsageError, type Command } from './command.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadModelArgs } from './generate.ts';
import { loadPromptSet } from './prompts-arg.ts';
import { loadRewardArg } from './reward-arg.ts';

/** PPOConfig fields as CLI options, by their TRL names (`--batch_size 16`). */
const CONFIG_KEYS = Object.keys(TRL_DEFAULTS).filter(
  (k) => k !== 'steps' && k !== 'target',
) as (keyof PPOConfig)[];

/** A CLI string as the type of the field's TRL default (numbers, booleans, 'none' for null). */
function parseField(key: keyof PPOConfig, raw: string): unknown {
  const def = TRL_DEFAULTS[key];
  if (raw === 'none' || raw === 'null') return null;
  if (typeof def === 'boolean') {
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new UsageError(`--${key} takes true or false, got ${raw}`);
  }
  if (typeof def === 'string') return raw;
  // Numbers, and fields whose default is null (max_grad_norm, score_clip) but take numbers.
  const x = Number(raw);
  if (raw.trim() === '' || Number.isNaN(x)) throw new UsageError(`--${key} takes a number, got ${raw}`);
  return x;
}

function positiveInt(name: string, raw: string): number {
  const x = Number(raw);
  if (!Number.isInteger(x) || x <= 0) throw new UsageError(`--${name} takes a positive integer, got ${raw}`);
  return x;
}

export const train: Command = {
  name: 'train',
  summary: 'run PPO (TRL 0.9.6 maths) headless and write the fine-tuned Hugging Face folder',
  usage:
    'rlhf-studio train (--model DIR | --hub REPO[@REV] | --url BASE) --reward DIR|URL|hub:REPO[@REV]\n' +
    '                  --prompts FILE --steps N [--target positive|negative] [--out DIR] [--metrics FILE.jsonl]\n' +
    '                  [--response-min-length 4] [--response-max-length 16] [--query-min-tokens 2]\n' +
    '                  [--query-max-tokens 8] [--min-prompt-chars 0] [PPOConfig fields by TRL name]\n' +
    MODEL_USAGE +
    '\n' +
    '  --reward         a text classifier folder (ONNX, or DistilBERT weights), its URL, or hub:REPO\n' +
    '  --prompts        .txt (one per line), .csv/.jsonl (a text column) or .parquet (e.g. IMDb train)\n' +
    '  --steps          PPO steps (TRL PPOConfig.steps, counted in samples, is steps * batch_size)\n' +
    '  --target         positive|negative: the sentiment the reward favours (the raw logit of POSITIVE or\n' +
    "                   NEGATIVE); a number there is TRL's PPOConfig.target, the adaptive KL target\n" +
    '  --sentiment      the same switch, unambiguous\n' +
    '  queries are the first k tokens of a prompt, k uniform in [query-min-tokens, query-max-tokens)\n' +
    '  (TRL LengthSampler(2, 8)); responses are sampled with lengths in [response-min, response-max).\n' +
    `  PPOConfig fields: ${CONFIG_KEYS.map((k) => `--${k}`).join(' ')}`,
  async run(argv) {
    const options = {
      ...MODEL_OPTIONS,
      reward: { type: 'string' },
      prompts: { type: 'string' },
      steps: { type: 'string' },
      // --target is the issue's sentiment switch; a number there is TRL's PPOConfig.target (the KL target).
      target: { type: 'string' },
      sentiment: { type: 'string' },
      out: { type: 'string' },
      metrics: { type: 'string' },
      'response-min-length': { type: 'string' },
      'response-max-length': { type: 'string' },
      'query-min-tokens': { type: 'string', default: '2' },
      'query-max-tokens': { type: 'string', default: '8' },
      'min-prompt-chars': { type: 'string', default: '0' },
      'prompt-column': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      ...Object.fromEntries(CONFIG_KEYS.map((k) => [k, { type: 'string' }])),
    } as const;
    const { values } = parseArgs({ args: argv, options });
    const v = values as Record<string, string | boolean | undefined>;
    if (!v.reward) throw new UsageError('--reward is required');
    if (!v.prompts) throw new UsageError('--prompts is required');
    if (!v.steps) throw new UsageError('--steps is required');
    const steps = positiveInt('steps', v.steps as string);
    const overrides: Record<string, unknown> = {};
    let target = (v.sentiment as string | undefined) ?? 'positive';
    if (typeof v.target === 'string') {
      if (v.target === 'positive' || v.target === 'negative') target = v.target;
      else overrides.target = parseField('target', v.target);
    }
    if (target !== 'positive' && target !== 'negative') {
      throw new UsageError(`--sentiment is positive or negative, got ${target}`);
    }

    for (const k of CONFIG_KEYS) if (typeof v[k] === 'string') overrides[k] = parseField(k, v[k] as string);
    let config: PPOConfig;
    try {
      config = validatePPOConfig({ ...TRL_DEFAULTS, ...overrides });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    config = { ...config, steps: steps * config.batch_size };
    const rollout = {
      ...TRL_SENTIMENT_ROLLOUT,
      responseMinLength: positiveInt('response-min-length', (v['response-min-length'] as string) ?? '4'),
      responseMaxLength: positiveInt('response-max-length', (v['response-max-length'] as string) ?? '16'),
    };
    if (rollout.responseMaxLength <= rollout.responseMinLength) {
      throw new UsageError('--response-max-length (exclusive) must exceed --response-min-length');
    }

    const prompts = await loadPromptSet({
      path: v.prompts as string,
      column: v['prompt-column'] as string | undefined,
      minChars: Number(v['min-prompt-chars']),
      minTokens: positiveInt('query-min-tokens', v['query-min-tokens'] as string),
      maxTokensExclusive: positiveInt('query-max-tokens', v['query-max-tokens'] as string),
      seed: config.seed,
    });

    const { loaded, name } = await loadModelArgs(v as { model?: string; hub?: string; url?: string }, {
      valueHead: true,
    });
    const gpu = await createNodeGpu();
    const rewardModel = await loadRewardArg(v.reward as string, gpu);
    const reward = sentimentReward(rewardModel, target as SentimentTarget);
    const session = new TrainingSession(gpu, { model: loaded, reward, prompts, decode, config, rollout });
    const quiet = v.quiet === true;
    if (!quiet)
      console.log(`training ${name} for ${steps} PPO steps of ${config.batch_size} (target ${target})`);
    const metrics = v.metrics as string | undefined;
    if (metrics) writeFileSync(metrics, '');
    try {
      for (let s = 0; s < steps; s++) {
        const r = await session.trainStep();
        const line = { step: r.step, ...r.stats };
        if (metrics) appendFileSync(metrics, JSON.stringify(line) + '\n');
        if (!quiet) {
          const st = r.stats;
          console.log(
            `step ${r.step}  reward ${st['env/reward_mean']?.toFixed(3)}  kl ${st['objective/kl']?.toFixed(3)}  ` +
              `kl_coef ${st['objective/kl_coef']?.toFixed(4)}  loss ${st['ppo/loss/total']?.toFixed(4)}  ` +
              `${st['time/ppo/total']?.toFixed(1)} s`,
          );
        }
      }
      if (v.out) {
        const out = v.out as string;
        mkdirSync(out, { recursive: true });
        for (const [file, bytes] of await session.exportFolder()) writeFileSync(join(out, file), bytes);
        if (!quiet) console.log(`wrote ${out}`);
      }
    } finally {
      session.dispose();
      rewardModel.dispose();
      gpu.dispose();
    }
    return 0;
  },
};
