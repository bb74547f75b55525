import { join } from 'node:path';
import { createNodeGpu } from '../gpu/node.ts';
import { encode } from '../model/tokenizer.ts';
import { loadGPT2RewardFolder } from '../reward/gpt2-reward-folder.ts';
import { tokenizeRewardPairs } from '../rl/reward-model-data.ts';
import { REWARD_DEFAULTS, RewardModelTrainer, type RewardConfig } from '../rl/reward-model-trainer.ts';
import { validateTrainingArgs } from '../rl/training-args.ts';
import { parseCliArgs } from './args.ts';
import { checkOutFile, checkOutFolder, writeFolderAtomic } from './atomic-folder.ts';
import { LORA_OPTIONS, LORA_USAGE, parseLoraArgs } from './lora-args.ts';
import { UsageError, type Command } from './command.ts';
import { MetricsLog } from './metrics-log.ts';
import { readModelFiles, readPairsFile } from './reward-dump.ts';
import { fieldOptions, parseFields } from './training-options.ts';

export const rewardTrainCommand: Command = {
  name: 'reward-train',
  summary: 'train a GPT-2 reward model (TRL RewardTrainer) on preference pairs',
  usage:
    'rlhf-studio reward-train --model DIR --pairs FILE --out DIR [--metrics FILE.jsonl] [--eval_pairs FILE]\n' +
    '                         [--use_peft [LoRA options] [--merge]] [RewardConfig fields by TRL name]\n' +
    '  --model       a GPT-2 folder (the score head starts as transformers draws it) or a GPT-2 reward model\n' +
    '  --pairs       .jsonl/.csv/.parquet rows with prompt, chosen, rejected (or the *_ids conformance form)\n' +
    '  --eval_pairs  held-out pairs: their accuracy, loss and rewards before and after training\n' +
    '  --out         the reward model folder (GPT2ForSequenceClassification, num_labels 1); with LoRA,\n' +
    "                peft's adapter folder (task SEQ_CLS: adapters on the body, the score head trained in full)\n" +
    `${LORA_USAGE}\n` +
    '  --merge       with LoRA: also write the merged reward model to OUT/merged\n' +
    `  RewardConfig: ${Object.keys(REWARD_DEFAULTS)
      .map((k) => `--${k}`)
      .join(' ')}\n` +
    `  defaults: ${JSON.stringify(REWARD_DEFAULTS)}`,
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        pairs: { type: 'string' },
        eval_pairs: { type: 'string' },
        out: { type: 'string' },
        metrics: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        ...LORA_OPTIONS,
        merge: { type: 'boolean', default: false },
        ...fieldOptions(REWARD_DEFAULTS),
      },
    });
    if (!values.model || !values.pairs) throw new UsageError('--model and --pairs are required');
    const out = checkOutFolder(values.out);
    const lora = parseLoraArgs(values);
    if (values.merge && !lora) throw new UsageError('--merge needs LoRA (--use_peft)');
    const metricsPath = values.metrics !== undefined ? checkOutFile(values.metrics, '--metrics') : undefined;
    let config: RewardConfig;
    try {
      config = validateTrainingArgs(
        parseFields(REWARD_DEFAULTS, values, ['max_length', 'center_rewards_coefficient', 'max_grad_norm']),
      );
      if (config.max_length !== null && !(Number.isInteger(config.max_length) && config.max_length > 0))
        throw new RangeError(`max_length must be a positive integer or none, got ${config.max_length}`);
    } catch (e) {
      throw e instanceof UsageError ? e : new UsageError((e as Error).message);
    }
    const model = loadGPT2RewardFolder(readModelFiles(values.model), { seed: config.seed });
    const tokenize = async (path: string) => {
      const t = tokenizeRewardPairs(await readPairsFile(path), encode, { maxLength: config.max_length });
      if (t.dropped.length && !values.quiet)
        console.log(`${path}: ${t.dropped.length} pairs longer than max_length ${config.max_length} dropped`);
      return t.pairs;
    };
    const pairs = await tokenize(values.pairs);
    const evalPairs = values.eval_pairs ? await tokenize(values.eval_pairs) : null;
    const gpu = await createNodeGpu();
    const trainer = new RewardModelTrainer(
      gpu,
      model.config,
      model.params,
      model.padTokenId,
      pairs,
      config,
      lora,
      values.model,
    );
    let metrics: MetricsLog | undefined;
    const log = (line: { step: number } & Record<string, number>) => metrics?.step(line);
    try {
      if (metricsPath !== undefined) metrics = new MetricsLog(metricsPath);
      const say = (s: string) => values.quiet || console.log(s);
      say(`reward model from ${values.model} on ${pairs.length} pairs for ${trainer.total} steps`);
      if (evalPairs) {
        const e = await trainer.evaluate(evalPairs);
        log({ step: 0, ...Object.fromEntries(Object.entries(e).map(([k, v]) => [`eval_${k}`, v])) });
        say(`eval before: accuracy ${e.accuracy.toFixed(3)}  loss ${e.loss.toFixed(4)}`);
      }
      while (!trainer.done) {
        const s = await trainer.trainStep();
        log({ step: trainer.step, ...s });
        say(
          `step ${trainer.step}  loss ${s.loss.toFixed(4)}  accuracy ${s.accuracy.toFixed(3)}  ` +
            `margins ${s['rewards/margins'].toFixed(3)}  lr ${s.learning_rate.toExponential(2)}`,
        );
      }
      if (evalPairs) {
        const e = await trainer.evaluate(evalPairs);
        log({
          step: trainer.step,
          ...Object.fromEntries(Object.entries(e).map(([k, v]) => [`eval_${k}`, v])),
        });
        say(`eval after: accuracy ${e.accuracy.toFixed(3)}  loss ${e.loss.toFixed(4)}`);
      }
      writeFolderAtomic(out, await trainer.exportFolder());
      say(`wrote ${out}${lora ? ' (peft adapter)' : ''}`);
      if (lora && values.merge) {
        writeFolderAtomic(join(out, 'merged'), await trainer.exportMerged());
        say(`wrote ${join(out, 'merged')} (adapters merged)`);
      }
      metrics?.end('complete');
    } catch (e) {
      metrics?.end('failed', { error: `${(e as Error).name}: ${(e as Error).message}` });
      throw e;
    } finally {
      trainer.dispose();
      gpu.dispose();
    }
    return 0;
  },
};
