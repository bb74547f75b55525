import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createNodeGpu } from '../gpu/node.ts';
import { encode } from '../model/tokenizer.ts';
import { parseSFTRows, PromptFileError, tokenizeSFTRows } from '../rl/sft-data.ts';
import { SFT_DEFAULTS, SFTTrainer, type SFTConfig } from '../rl/sft-trainer.ts';
import { validateTrainingArgs } from '../rl/training-args.ts';
import { parseCliArgs } from './args.ts';
import { checkOutFile, checkOutFolder, writeFolderAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';
import { MetricsLog } from './metrics-log.ts';
import { loadModelDir } from './model-dir.ts';
import { fieldOptions, parseFields } from './training-options.ts';

function formatOf(path: string): 'jsonl' | 'csv' | 'parquet' {
  const ext = path.toLowerCase().replace(/\?.*$/, '').split('.').pop();
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  if (ext === 'csv' || ext === 'parquet') return ext;
  throw new UsageError(`${path}: name the data file .jsonl, .csv or .parquet`);
}

export const sftCommand: Command = {
  name: 'sft',
  summary: 'supervised fine-tuning (TRL SFTTrainer) of a GPT-2 on text or prompt/completion rows',
  usage:
    'rlhf-studio sft --model DIR --data FILE --out DIR [--metrics FILE.jsonl] [SFTConfig fields by TRL name]\n' +
    '  --data     .jsonl/.csv/.parquet with a `text` column (language modelling) or `prompt` and\n' +
    '             `completion` columns (loss on the completion only, unless --completion_only_loss false)\n' +
    `  SFTConfig: ${Object.keys(SFT_DEFAULTS)
      .map((k) => `--${k}`)
      .join(' ')}\n` +
    `  defaults: ${JSON.stringify(SFT_DEFAULTS)}`,
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        data: { type: 'string' },
        out: { type: 'string' },
        metrics: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        ...fieldOptions(SFT_DEFAULTS),
      },
    });
    if (!values.model || !values.data) throw new UsageError('--model and --data are required');
    const out = checkOutFolder(values.out);
    const metricsPath = values.metrics !== undefined ? checkOutFile(values.metrics, '--metrics') : undefined;
    let config: SFTConfig;
    try {
      config = validateTrainingArgs(
        parseFields(SFT_DEFAULTS, values, ['max_length', 'completion_only_loss', 'max_grad_norm']),
      );
    } catch (e) {
      throw e instanceof UsageError ? e : new UsageError((e as Error).message);
    }
    if (!existsSync(values.data)) throw new UsageError(`${values.data} does not exist`);
    const model = loadModelDir(values.model);
    let examples;
    try {
      const rows = await parseSFTRows(new Uint8Array(readFileSync(values.data)), {
        format: formatOf(values.data),
        name: basename(values.data),
      });
      examples = tokenizeSFTRows(rows, encode, config);
    } catch (e) {
      if (e instanceof PromptFileError || e instanceof RangeError) throw new UsageError(e.message);
      throw e;
    }
    const gpu = await createNodeGpu();
    const trainer = new SFTTrainer(
      gpu,
      model.config,
      model.params.subarray(0, model.table.total),
      examples,
      config,
    );
    let metrics: MetricsLog | undefined;
    try {
      if (metricsPath !== undefined) metrics = new MetricsLog(metricsPath);
      if (!values.quiet)
        console.log(`SFT of ${values.model} on ${examples.length} examples for ${trainer.total} steps`);
      while (!trainer.done) {
        const s = await trainer.trainStep();
        metrics?.step({ step: trainer.step, ...s });
        if (!values.quiet)
          console.log(
            `step ${trainer.step}  loss ${s.loss.toFixed(4)}  mean_token_accuracy ${s.mean_token_accuracy.toFixed(3)}  lr ${s.learning_rate.toExponential(2)}`,
          );
      }
      writeFolderAtomic(out, await trainer.exportFolder());
      if (!values.quiet) console.log(`wrote ${out}`);
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
