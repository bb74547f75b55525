import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PromptSet } from '../data/prompts.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { createNodeGpu } from '../gpu/node.ts';
import type { GPT2Config } from '../model/config.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { decode, GPT2_VOCAB_SIZE } from '../model/tokenizer.ts';
import type { MetricRow } from '../protocol.ts';
import { scalarReward, sentimentReward, type SentimentTarget } from '../reward/types.ts';
import { expectInt, expectObject, expectString } from '../rl/checkpoint.ts';
import {
  applyCheckpoint,
  clearCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointStore,
  type LoadedCheckpoint,
} from '../rl/checkpoint-io.ts';
import {
  CONFIG_KEYS,
  TRL_SENTIMENT,
  parsePPOConfig,
  parseRolloutSpec,
  type PPOConfig,
  type RolloutKey,
  type RolloutSpec,
} from '../rl/config.ts';
import type { SessionLora } from '../rl/lora-policy.ts';
import { TrainingSession } from '../rl/session.ts';
import { rolloutSettings } from '../rl/trainer.ts';
import { folderCheckpointStore } from './checkpoint-folder.ts';
import { parseCliArgs, positiveInt } from './args.ts';
import { checkOutFile, checkOutFolder, writeFolderAtomic } from './atomic-folder.ts';
import { maxBatchSize } from './batch-limits.ts';
import { UsageError, type Command } from './command.ts';
import { LORA_OPTIONS, LORA_USAGE, loadAdapterDir, parseLoraArgs } from './lora-args.ts';
import { MetricsLog } from './metrics-log.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadModelArgs } from './generate.ts';
import { loadPromptSet } from './prompts-arg.ts';
import { loadRewardArg } from './reward-arg.ts';

/** PPOConfig fields as CLI options, by their TRL names (`--batch_size 16`); steps and target are special. */
const OPTION_KEYS = CONFIG_KEYS.filter((k) => k !== 'steps' && k !== 'target');

/** The CLI's query/response options and the RolloutSpec fields they set. */
const ROLLOUT_OPTIONS: [string, RolloutKey][] = [
  ['query-min-tokens', 'query_min_tokens'],
  ['query-max-tokens', 'query_max_tokens'],
  ['response-min-length', 'response_min_length'],
  ['response-max-length', 'response_max_length'],
  ['min-prompt-chars', 'min_prompt_chars'],
];

/** TRL's sentiment preset; user prompt files are not filtered by length unless asked. */
const CLI_ROLLOUT: RolloutSpec = { ...TRL_SENTIMENT.rollout, min_prompt_chars: 0 };

/** What a resumed run needs to load its inputs again: state.json's `app` for the CLI. */
interface CliApp {
  model: string;
  reward: string;
  prompts: string;
  promptColumn: string | null;
  rollout: RolloutSpec;
}

function parseCliApp(v: unknown, at: string): CliApp {
  const o = expectObject(v, at);
  const r = expectObject(o.rollout, `${at}.rollout`);
  const rollout = Object.fromEntries(
    ROLLOUT_OPTIONS.map(([, k]) => [k, expectInt(r[k], `${at}.rollout.${k}`)]),
  ) as unknown as RolloutSpec;
  return {
    model: expectString(o.model, `${at}.model`),
    reward: expectString(o.reward, `${at}.reward`),
    prompts: expectString(o.prompts, `${at}.prompts`),
    promptColumn: o.promptColumn === null ? null : expectString(o.promptColumn, `${at}.promptColumn`),
    rollout,
  };
}

const OPTIONS = {
  ...MODEL_OPTIONS,
  reward: { type: 'string' },
  prompts: { type: 'string' },
  steps: { type: 'string' },
  // --target is the sentiment switch; a number there is TRL's PPOConfig.target (the KL target).
  target: { type: 'string' },
  sentiment: { type: 'string' },
  out: { type: 'string' },
  metrics: { type: 'string' },
  save_steps: { type: 'string' },
  'checkpoint-dir': { type: 'string' },
  'rows-per-pass': { type: 'string' },
  resume: { type: 'string' },
  'prompt-column': { type: 'string' },
  quiet: { type: 'boolean', default: false },
  ...LORA_OPTIONS,
  adapter: { type: 'string' },
  merge: { type: 'boolean', default: false },
  ...Object.fromEntries(ROLLOUT_OPTIONS.map(([o]) => [o, { type: 'string' }])),
  ...Object.fromEntries(OPTION_KEYS.map((k) => [k, { type: 'string' }])),
} as const;

/** Options a resumed run may set; everything else comes from the checkpoint. */
const RESUME_OPTIONS = new Set([
  'resume',
  'steps',
  'out',
  'metrics',
  'save_steps',
  'checkpoint-dir',
  'rows-per-pass',
  'merge',
  'quiet',
]);

type Values = Record<string, string | boolean | undefined>;

/** A new run's settings from the command line. */
function newRunSettings(v: Values): {
  config: PPOConfig;
  app: CliApp;
  target: SentimentTarget;
  steps: number;
} {
  if (!v.reward) throw new UsageError('--reward is required');
  if (!v.prompts) throw new UsageError('--prompts is required');
  if (!v.steps) throw new UsageError('--steps is required');
  const steps = positiveInt('--steps', v.steps as string);
  const raw: Record<string, string> = {};
  let target = (v.sentiment as string | undefined) ?? 'positive';
  if (typeof v.target === 'string') {
    if (v.target === 'positive' || v.target === 'negative') target = v.target;
    else raw.target = v.target;
  }
  if (target !== 'positive' && target !== 'negative')
    throw new UsageError(`--sentiment is positive or negative, got ${target}`);
  for (const k of OPTION_KEYS) if (typeof v[k] === 'string') raw[k] = v[k] as string;
  const parsed = parsePPOConfig(raw);
  if (!parsed.config) throw new UsageError(parsed.errors.map((e) => `--${e.field}: ${e.message}`).join('\n'));
  const rawRollout = Object.fromEntries(
    ROLLOUT_OPTIONS.filter(([o]) => typeof v[o] === 'string').map(([o, k]) => [k, v[o] as string]),
  );
  const r = parseRolloutSpec(rawRollout, CLI_ROLLOUT);
  if (!r.rollout) {
    const opt = (k: string) => ROLLOUT_OPTIONS.find(([, key]) => key === k)?.[0] ?? k;
    throw new UsageError(r.errors.map((e) => `--${opt(e.field)}: ${e.message}`).join('\n'));
  }
  const config = { ...parsed.config, steps: steps * parsed.config.batch_size };
  const model = (v.model ?? v.hub ?? v.url) as string | undefined;
  const reward = v.reward as string;
  return {
    config,
    target,
    steps,
    app: {
      model: v.model ? resolve(v.model as string) : (model ?? ''),
      // A local folder is kept as an absolute path, so that --resume works from any directory.
      reward: existsSync(reward) ? resolve(reward) : reward,
      prompts: resolve(v.prompts as string),
      promptColumn: (v['prompt-column'] as string | undefined) ?? null,
      rollout: r.rollout,
    },
  };
}

function loadPrompts(app: CliApp, seed: number): Promise<PromptSet> {
  const r = app.rollout;
  return loadPromptSet({
    path: app.prompts,
    column: app.promptColumn ?? undefined,
    minChars: r.min_prompt_chars,
    minTokens: r.query_min_tokens,
    maxTokensExclusive: r.query_max_tokens,
    seed,
  });
}

function metricLine(row: MetricRow): { step: number } & Record<string, number> {
  return { step: row.step, ...(row.stats as Record<string, number>) };
}

export const train: Command = {
  name: 'train',
  summary: 'run PPO (TRL 0.9.6 maths) headless and write the fine-tuned Hugging Face folder',
  usage:
    'rlhf-studio train (--model DIR | --hub REPO[@REV] | --url BASE) --reward DIR|URL|hub:REPO[@REV]\n' +
    '                  --prompts FILE --steps N [--target positive|negative] [--out DIR] [--metrics FILE.jsonl]\n' +
    '                  [--save_steps N] [--checkpoint-dir DIR] [--rows-per-pass N|all|auto]\n' +
    '                  [--response-min-length 4] [--response-max-length 16] [--query-min-tokens 2]\n' +
    '                  [--query-max-tokens 8] [--min-prompt-chars 0] [PPOConfig fields by TRL name]\n' +
    '                  [--use_peft [LoRA options] | --adapter DIR] [--merge]\n' +
    'rlhf-studio train --resume DIR [--steps N] [--out DIR] [--metrics FILE.jsonl] [--save_steps N] [--merge]\n' +
    MODEL_USAGE +
    '\n' +
    LORA_USAGE +
    '\n' +
    '  --adapter DIR        continue training a peft LoRA adapter folder (its settings; implies --use_peft)\n' +
    '  --merge              with LoRA: also write the merged full model to OUT/merged\n' +
    '  with LoRA, --out gets the peft adapter folder, with the value head in model.safetensors beside it\n' +
    '  --reward         a text classifier folder (ONNX, or DistilBERT weights), its URL, or hub:REPO; or a\n' +
    '                   GPT-2 reward model (rlhf-studio reward-train), whose logit is the reward\n' +
    '  --prompts        .txt (one per line), .csv/.jsonl (a text column) or .parquet (e.g. IMDb train)\n' +
    '  --steps          PPO steps (TRL PPOConfig.steps, counted in samples, is steps * batch_size); with\n' +
    '                   --resume, the total to reach (default: the checkpoint run’s)\n' +
    '  --target         positive|negative: the sentiment the reward favours (the raw logit of POSITIVE or\n' +
    "                   NEGATIVE); a number there is TRL's PPOConfig.target, the adaptive KL target\n" +
    '  --sentiment      the same switch, unambiguous\n' +
    '  --save_steps     save a checkpoint every N PPO steps (and at the end); Ctrl-C always saves one\n' +
    '  --checkpoint-dir where checkpoints go (default: the --resume folder, else OUT-checkpoint, else\n' +
    '                   ./rlhf-studio-checkpoint)\n' +
    '  --resume         continue the run saved in DIR exactly where it stopped (same models, prompts, settings)\n' +
    '  --rows-per-pass  full fine-tuning: rows per forward/backward pass; a mini-batch runs in parts of N\n' +
    '                   rows, each forward again before its backward (the same update, less memory, one\n' +
    '                   extra forward). auto (default): parts only when a pass would hold over 256 MiB of\n' +
    '                   activations (GPT-2 124M at TRL defaults: 13 rows); all: whole mini-batches\n' +
    '  queries are the first k tokens of a prompt, k uniform in [query-min-tokens, query-max-tokens)\n' +
    '  (TRL LengthSampler(2, 8)); responses are sampled with lengths in [response-min, response-max).\n' +
    `  PPOConfig fields: ${OPTION_KEYS.map((k) => `--${k}`).join(' ')}\n` +
    '  Ctrl-C finishes the PPO step in flight, saves a checkpoint (and --out), marks the metrics file\n' +
    '  {"end":"interrupted"} and exits 130; a second Ctrl-C exits at once.',
  async run(argv) {
    const { values } = parseCliArgs({ args: argv, options: OPTIONS });
    const v = values as Values;
    const resumeDir = v.resume as string | undefined;
    if (resumeDir !== undefined) {
      const extra = Object.keys(v).filter(
        (k) => v[k] !== undefined && v[k] !== false && !RESUME_OPTIONS.has(k),
      );
      if (extra.length)
        throw new UsageError(
          `--resume takes its settings from the checkpoint; ${extra.map((k) => `--${k}`).join(', ')} cannot change`,
        );
    }
    const saveSteps = v.save_steps === undefined ? 0 : positiveInt('--save_steps', v.save_steps as string);
    const rowsArg = (v['rows-per-pass'] as string | undefined) ?? 'auto';
    const rowsPerPass =
      rowsArg === 'auto' ? undefined : rowsArg === 'all' ? null : positiveInt('--rows-per-pass', rowsArg);
    // Outputs are checked before any work, so a long run cannot end on an unusable path.
    const out = v.out !== undefined ? checkOutFolder(v.out as string) : undefined;
    const metricsPath = v.metrics !== undefined ? checkOutFile(v.metrics as string, '--metrics') : undefined;
    const checkpointDir =
      (v['checkpoint-dir'] as string | undefined) ??
      resumeDir ??
      (out ? `${out.replace(/[/\\]+$/, '')}-checkpoint` : 'rlhf-studio-checkpoint');
    const store = folderCheckpointStore(checkpointDir);
    const quiet = v.quiet === true;
    const log = (s: string) => quiet || console.log(s);

    let gpu: Gpu | null = null;
    let session: TrainingSession | null = null;
    let disposeReward = () => {};
    try {
      let config: PPOConfig;
      let app: CliApp;
      let target: SentimentTarget;
      let totalSteps: number;
      let metrics: MetricRow[] = [];
      let model: LoadedGPT2;
      let ck: LoadedCheckpoint<CliApp> | null = null;
      let lora: SessionLora | null = null;
      if (resumeDir !== undefined) {
        ck = await loadCheckpoint(folderCheckpointStore(resumeDir), parseCliApp);
        app = ck.state.app;
        target = ck.state.target;
        config = ck.state.ppo;
        metrics = ck.state.metrics;
        totalSteps = v.steps === undefined ? ck.state.totalSteps : positiveInt('--steps', v.steps as string);
        model = ck.reference;
        lora = ck.lora;
      } else {
        const s = newRunSettings(v);
        ({ config, app, target } = s);
        totalSteps = s.steps;
        const m = await loadModelArgs(v as { model?: string; hub?: string; url?: string }, {
          valueHead: true,
        });
        model = m.loaded;
        lora = loraSpec(v, model.config, m.name);
      }
      if (model.config.vocab_size < GPT2_VOCAB_SIZE)
        throw new UsageError(
          `${app.model} has a vocabulary of ${model.config.vocab_size} tokens; train tokenizes prompts with ` +
            `GPT-2's ${GPT2_VOCAB_SIZE}`,
        );
      const prompts = await loadPrompts(app, config.seed);
      gpu = await createNodeGpu();
      const T = app.rollout.query_max_tokens - 1 + app.rollout.response_max_length - 1;
      const limit = maxBatchSize(gpu.adapter.limits, { C: model.config.n_embd, NH: model.config.n_head, T });
      if (config.batch_size > limit.maxBatch)
        throw new UsageError(
          `--batch_size ${config.batch_size} is more than this adapter allows for this model, ` +
            `${limit.maxBatch}: ${limit.reason}`,
        );
      const rewardModel = await loadRewardArg(app.reward, gpu);
      disposeReward = () => rewardModel.dispose();
      const oneLogit = rewardModel.labels.length === 1;
      const targetGiven =
        typeof v.sentiment === 'string' || v.target === 'positive' || v.target === 'negative';
      if (oneLogit && targetGiven)
        throw new UsageError(
          `--target/--sentiment picks a label of a sentiment classifier; ${app.reward} is a reward model ` +
            'with one logit (its score is the reward), so a target does not apply',
        );
      const reward = oneLogit ? scalarReward(rewardModel) : sentimentReward(rewardModel, target);
      session = new TrainingSession(gpu, {
        model,
        reward,
        prompts,
        decode,
        config,
        rollout: rolloutSettings(app.rollout),
        lora,
        ...(rowsPerPass !== undefined && { rowsPerPass }),
      });
      if (ck) applyCheckpoint(session, ck);
      const parts =
        session.rowsPerPass !== null && session.rowsPerPass < config.mini_batch_size
          ? `; mini-batches of ${config.mini_batch_size} in passes of ${session.rowsPerPass} rows`
          : '';
      const started =
        (ck
          ? `resumed ${resumeDir} at PPO step ${session.step} of ${totalSteps}`
          : `training ${app.model} for ${totalSteps} PPO steps of ${config.batch_size} ` +
            (oneLogit ? '(reward: the reward model score)' : `(target ${target})`)) + parts;
      return await runLoop({
        started,
        session,
        store,
        // A checkpoint folder holding another run is cleared before this run's first save.
        keepStore: ck !== null && resolve(resumeDir!) === resolve(checkpointDir),
        app,
        target,
        totalSteps,
        metrics,
        metricsPath,
        saveSteps,
        out,
        merge: lora !== null && v.merge === true,
        log,
      });
    } finally {
      session?.dispose();
      disposeReward();
      gpu?.dispose();
    }
  },
};

interface LoopInput {
  session: TrainingSession;
  store: CheckpointStore;
  keepStore: boolean;
  app: CliApp;
  target: SentimentTarget;
  totalSteps: number;
  metrics: MetricRow[];
  metricsPath: string | undefined;
  saveSteps: number;
  out: string | undefined;
  /** LoRA: also write the merged full model to OUT/merged. */
  merge: boolean;
  log: (s: string) => void;
  /** Said once Ctrl-C is handled, just before the first step. */
  started: string;
}

/** Steps until done or interrupted (SIGINT); returns the exit code (0, or 130 after Ctrl-C). */
async function runLoop(inp: LoopInput): Promise<number> {
  const { session, store, metrics, metricsPath, log } = inp;
  // A resumed run's metrics file starts with the checkpoint's rows, so that it reads like one run's.
  const metricsLog = metricsPath !== undefined ? new MetricsLog(metricsPath) : undefined;
  for (const row of metrics) metricsLog?.step(metricLine(row));
  let cleared = inp.keepStore;
  const save = async () => {
    if (!cleared) await clearCheckpoint(store);
    cleared = true;
    return saveCheckpoint(store, {
      session,
      totalSteps: inp.totalSteps,
      target: inp.target,
      marks: [],
      metrics,
      app: inp.app,
    });
  };

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      console.error('rlhf-studio train: second interrupt, exiting without saving');
      // Die of the signal itself (status 130 in a shell): process.exit() would run Dawn's teardown
      // while GPU work is in flight, which can abort the process instead.
      process.off('SIGINT', onSigint);
      process.kill(process.pid, 'SIGINT');
      return;
    }
    interrupted = true;
    console.error(
      `\nrlhf-studio train: interrupted; finishing PPO step ${session.step}, then saving a checkpoint ` +
        '(Ctrl-C again to quit at once)',
    );
  };
  process.on('SIGINT', onSigint);
  log(inp.started);
  const startStep = session.step;
  try {
    let lastSaved = -1;
    while (session.step < inp.totalSteps && !interrupted) {
      const t0 = performance.now();
      const r = await session.trainStep();
      const st = r.stats;
      const row: MetricRow = {
        step: r.step,
        stats: st,
        target: inp.target,
        seconds: (performance.now() - t0) / 1000,
        tokens: Math.round(
          session.trainer.config.batch_size *
            ((st['tokens/queries_len_mean'] ?? 0) + (st['tokens/responses_len_mean'] ?? 0)),
        ),
        gpuBytes: session.gpu.allocatedBytes,
        gpuPeakBytes: session.gpu.peakBytes,
      };
      metrics.push(row);
      metricsLog?.step(metricLine(row));
      log(
        `step ${r.step}  reward ${st['env/reward_mean']?.toFixed(3)}  kl ${st['objective/kl']?.toFixed(3)}  ` +
          `kl_coef ${st['objective/kl_coef']?.toFixed(4)}  loss ${st['ppo/loss/total']?.toFixed(4)}  ` +
          `${st['time/ppo/total']?.toFixed(1)} s`,
      );
      if (inp.saveSteps > 0 && session.step % inp.saveSteps === 0 && !interrupted) {
        await save();
        lastSaved = session.step;
        log(`checkpoint of step ${session.step} saved in ${store.where}`);
      }
    }
    if ((interrupted || inp.saveSteps > 0) && lastSaved !== session.step) {
      await save();
      lastSaved = session.step;
      log(`checkpoint of step ${session.step} saved in ${store.where}`);
    }
    if (interrupted) {
      console.error(
        `rlhf-studio train: interrupted after ${session.step} PPO steps; checkpoint saved in ${store.where}\n` +
          `  continue with: rlhf-studio train --resume ${store.where}`,
      );
    }
    if (inp.out !== undefined) {
      writeFolderAtomic(inp.out, await session.exportFolder());
      log(`wrote ${inp.out}${session.lora ? ' (peft adapter and value head)' : ''}`);
      if (inp.merge) {
        const merged = join(inp.out, 'merged');
        writeFolderAtomic(merged, await session.exportMergedFolder());
        log(`wrote ${merged} (adapters merged)`);
      }
    }
    if (interrupted) {
      metricsLog?.end('interrupted', { message: `checkpoint of step ${session.step} in ${store.where}` });
      return 130;
    }
    metricsLog?.end('complete');
    return 0;
  } catch (e) {
    const err = e as Error;
    metricsLog?.end('failed', { error: `${err.name}: ${err.message}` });
    const done = session.step - startStep;
    const kept = [
      metricsLog && `${metricsLog.path} holds the completed steps`,
      inp.out !== undefined && `${inp.out} was not written`,
    ].filter(Boolean);
    throw new Error(
      `training stopped after ${done} new steps (at PPO step ${session.step}): ${err.name}: ${err.message}` +
        (kept.length ? ` (${kept.join('; ')})` : ''),
      { cause: e },
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** LoRA from --use_peft and its options, or from --adapter DIR (whose settings win); null without either. */
function loraSpec(v: Values, config: GPT2Config, baseModel: string): SessionLora | null {
  if (typeof v.adapter !== 'string') {
    const flags = parseLoraArgs(v);
    if (v.merge === true && !flags) throw new UsageError('--merge needs LoRA (--use_peft or --adapter DIR)');
    return flags ? { config: flags, baseModel } : null;
  }
  const own = ['lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'use_rslora'].find((k) => v[k]);
  if (own) throw new UsageError(`--adapter ${v.adapter} has its own LoRA settings; drop --${own}`);
  const adapter = loadAdapterDir(v.adapter, config, { valueHead: true });
  return { config: adapter.lora, adapter, baseModel: adapter.baseModel ?? baseModel };
}
