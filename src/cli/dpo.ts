import { join } from 'node:path';
import { PromptFileError, tokenizePairs } from '../data/preferences.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { exportHFFolder } from '../model/hf-folder.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import { encode, GPT2_VOCAB_SIZE } from '../model/tokenizer.ts';
import { DPO_LOSS_TYPES, type DPOLossType } from '../rl/dpo.ts';
import {
  DPO_CONFIG_DEFAULTS,
  LR_SCHEDULER_TYPES,
  validateDPOConfig,
  type DPOConfig,
  type LRSchedulerType,
} from '../rl/dpo-config.ts';
import { LoraDPOTrainer } from '../rl/dpo-lora-trainer.ts';
import { DPOTrainer } from '../rl/dpo-trainer.ts';
import { parseCliArgs, positiveInt } from './args.ts';
import { checkOutFile, checkOutFolder, writeFolderAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';
import { readPairsArg } from './dpo-dump.ts';
import { loadModelArgs, MODEL_OPTIONS, MODEL_USAGE } from './generate.ts';
import { LORA_OPTIONS, LORA_USAGE, loadAdapterDir, parseLoraArgs, type LoraArgValues } from './lora-args.ts';
import { MetricsLog } from './metrics-log.ts';
import { loadModelDir } from './model-dir.ts';
import { fieldOptions, parseFields } from './training-options.ts';

/** The config's fields that take a word rather than a number. */
const WORD_FIELDS = { loss_type: DPO_LOSS_TYPES, lr_scheduler_type: LR_SCHEDULER_TYPES } as const;
/** The numeric and boolean fields, parsed by parseFields. */
function numericDefaults(): Omit<DPOConfig, keyof typeof WORD_FIELDS> {
  const out: Partial<DPOConfig> = { ...DPO_CONFIG_DEFAULTS };
  for (const k of Object.keys(WORD_FIELDS) as (keyof typeof WORD_FIELDS)[]) delete out[k];
  return out as Omit<DPOConfig, keyof typeof WORD_FIELDS>;
}
const NULLABLE = ['max_length', 'max_prompt_length', 'max_completion_length', 'max_grad_norm'] as const;

/** DPOConfig from the command line's TRL-named options over TRL 0.19's defaults, checked. */
export function dpoConfigArgs(values: Record<string, unknown>): DPOConfig {
  const numeric = parseFields(numericDefaults(), values, NULLABLE);
  const word = <K extends keyof typeof WORD_FIELDS>(k: K): (typeof WORD_FIELDS)[K][number] => {
    const raw = values[k];
    if (raw === undefined) return DPO_CONFIG_DEFAULTS[k];
    const allowed: readonly string[] = WORD_FIELDS[k];
    if (typeof raw !== 'string' || !allowed.includes(raw))
      throw new UsageError(`--${k} takes one of ${allowed.join(', ')}, got ${String(raw)}`);
    return raw as (typeof WORD_FIELDS)[K][number];
  };
  const config: DPOConfig = {
    ...numeric,
    loss_type: word('loss_type') as DPOLossType,
    lr_scheduler_type: word('lr_scheduler_type') as LRSchedulerType,
  };
  try {
    return validateDPOConfig(config);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export const dpoCommand: Command = {
  name: 'dpo',
  summary: "train a GPT-2 on preference pairs with DPO (TRL 0.19's DPOTrainer)",
  usage:
    'rlhf-studio dpo (--model DIR | --hub REPO[@REV] | --url BASE) [--ref DIR] --pairs FILE --out DIR\n' +
    '    [--metrics FILE.jsonl] [--quiet] [--use_peft [LoRA options] | --adapter DIR] [--merge] [DPOConfig fields]\n' +
    `${MODEL_USAGE}\n` +
    '  --ref DIR            the frozen reference (default: the initial policy; not with LoRA)\n' +
    '  --pairs FILE         .jsonl/.csv/.parquet with prompt, chosen, rejected: a path, an http(s) URL or\n' +
    '                       a Hub dataset file, hf://datasets/OWNER/NAME[@REV]/PATH\n' +
    '  --out DIR            the trained policy as a Hugging Face folder; with LoRA, the peft adapter folder\n' +
    `${LORA_USAGE}\n` +
    '  --adapter DIR        continue training a peft LoRA adapter folder (its settings; implies --use_peft)\n' +
    '  --merge              with LoRA: also write the merged full model to OUT/merged\n' +
    '  with LoRA only the adapters train and the reference is the base with the adapters off\n' +
    '  --metrics FILE       one JSON line per update: TRL stat names (loss, rewards/*, logps/*, logits/*)\n' +
    '  --save_steps N       also write DIR/checkpoint-N every N updates (TrainingArguments; default 500)\n' +
    `  DPOConfig fields (TRL 0.19 defaults): ${Object.keys(DPO_CONFIG_DEFAULTS)
      .map((k) => `--${k}`)
      .join(' ')}`,
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        ref: { type: 'string' },
        pairs: { type: 'string' },
        out: { type: 'string' },
        metrics: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        save_steps: { type: 'string' },
        ...LORA_OPTIONS,
        adapter: { type: 'string' },
        merge: { type: 'boolean', default: false },
        ...fieldOptions(DPO_CONFIG_DEFAULTS),
      },
    });
    if (!values.pairs) throw new UsageError('--pairs is required');
    const out = checkOutFolder(values.out);
    const metricsPath = values.metrics !== undefined ? checkOutFile(values.metrics, '--metrics') : undefined;
    const config = dpoConfigArgs(values);
    const saveSteps = values.save_steps === undefined ? 500 : positiveInt('--save_steps', values.save_steps);
    const loraFlags = loraFlagsArgs(values);
    const raw = await readPairsArg(values.pairs);
    const { loaded: policy, name } = await loadModelArgs(values);
    const ref = values.ref ? loadModelDir(values.ref) : null;
    const adapter = values.adapter !== undefined ? loadAdapterDir(values.adapter, policy.config) : null;
    const lora = adapter ? adapter.lora : loraFlags;
    const baseModel = adapter?.baseModel ?? name;
    if (raw.some((p) => p.kind === 'text') && policy.config.vocab_size !== GPT2_VOCAB_SIZE)
      throw new UsageError(`text pairs need GPT-2's vocabulary (${GPT2_VOCAB_SIZE}); give token ids instead`);
    let pairs;
    try {
      pairs = tokenizePairs(raw, encode, config);
    } catch (e) {
      if (e instanceof PromptFileError) throw new UsageError(e.message);
      throw e;
    }
    const longest = Math.max(...pairs.flatMap((p) => [p.chosen.ids.length, p.rejected.ids.length]));
    if (longest > policy.config.n_positions) {
      throw new UsageError(
        `a pair is ${longest} tokens long, past the model's n_positions ${policy.config.n_positions}: lower --max_length`,
      );
    }
    const gpu = await createNodeGpu();
    const quiet = values.quiet === true;
    let trainer: DPOTrainer | LoraDPOTrainer | null = null;
    let metrics: MetricsLog | undefined;
    try {
      if (lora) {
        trainer = new LoraDPOTrainer(gpu, policy, lora, pairs, config, adapter);
      } else {
        trainer = new DPOTrainer(gpu, { policy, ref }, pairs, config);
        await trainer.init();
      }
      if (!quiet) {
        const how = lora ? `LoRA r ${lora.r}, alpha ${lora.alpha} on ${lora.targetModules.join(',')}; ` : '';
        console.log(
          `DPO (${how}${config.loss_type}, beta ${config.beta}) on ${name}: ${pairs.length} pairs, ` +
            `${trainer.totalSteps} updates of ${config.per_device_train_batch_size} x ${config.gradient_accumulation_steps}`,
        );
      }
      if (metricsPath !== undefined) metrics = new MetricsLog(metricsPath);
      // The final folder keeps the checkpoint-N folders written into it during the run.
      const save = async (dir: string) => {
        const t = trainer!;
        const files =
          t instanceof LoraDPOTrainer
            ? await t.exportAdapter(baseModel)
            : exportHFFolder(policy.config, await t.readParams());
        writeFolderAtomic(dir, files, undefined, (name) => /^checkpoint-\d+$/.test(name));
        if (!quiet) console.log(`wrote ${dir}`);
      };
      while (!trainer.done) {
        const r = await trainer.step();
        if (r.step % saveSteps === 0 && !trainer.done) await save(join(out, `checkpoint-${r.step}`));
        metrics?.step({ step: r.step, ...r.stats });
        if (!quiet) {
          const s = r.stats;
          console.log(
            `step ${r.step}  loss ${s.loss.toFixed(4)}  accuracy ${s['rewards/accuracies'].toFixed(3)}  ` +
              `margin ${s['rewards/margins'].toFixed(4)}  lr ${s.learning_rate.toExponential(2)}`,
          );
        }
      }
      await save(out);
      if (trainer instanceof LoraDPOTrainer && values.merge === true) {
        const merged = join(out, 'merged');
        writeFolderAtomic(merged, await trainer.exportMerged());
        if (!quiet) console.log(`wrote ${merged} (adapters merged)`);
      }
      metrics?.end('complete');
    } catch (e) {
      metrics?.end('failed', { error: `${(e as Error).name}: ${(e as Error).message}` });
      throw e;
    } finally {
      trainer?.dispose();
      gpu.dispose();
    }
    return 0;
  },
};

/**
 * LoRA settings from --use_peft and its options (null without them), checked before anything loads;
 * --adapter DIR brings its own settings, and LoRA's reference is the base, so --ref is refused with it
 * (TRL refuses a ref_model given with a peft_config).
 */
function loraFlagsArgs(v: Record<string, unknown>): LoraConfig | null {
  if (v.adapter !== undefined) {
    const own = ['lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'use_rslora'].find(
      (k) => v[k] !== undefined && v[k] !== false,
    );
    if (own) throw new UsageError(`--adapter ${String(v.adapter)} has its own LoRA settings; drop --${own}`);
  }
  const flags = parseLoraArgs(v as LoraArgValues);
  const withLora = flags !== null || v.adapter !== undefined;
  if (v.merge === true && !withLora) throw new UsageError('--merge needs LoRA (--use_peft or --adapter DIR)');
  if (withLora && v.ref !== undefined)
    throw new UsageError('--ref: with LoRA the reference is the base with the adapters off; drop --ref');
  return flags;
}
