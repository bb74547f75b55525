import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadPreferencePairs, preferenceFormatFromName, PromptFileError } from '../data/preferences.ts';
import { createNodeGpu } from '../gpu/node.ts';
import type { HFFiles } from '../model/hf-folder.ts';
import { encode } from '../model/tokenizer.ts';
import { loadGPT2RewardFolder } from '../reward/gpt2-reward-folder.ts';
import { rewardDump, rewardDumpTensors } from '../rl/reward-model-dump.ts';
import { tokenizeRewardPairs } from '../rl/reward-model-data.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import { decimalNumber, parseCliArgs } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';

/** config.json and the weights file of a model folder on disk. */
export function readModelFiles(dir: string): HFFiles {
  if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`${dir} has no config.json`);
  const files: HFFiles = new Map();
  for (const f of ['config.json', 'model.safetensors', 'pytorch_model.bin']) {
    if (existsSync(join(dir, f))) files.set(f, new Uint8Array(readFileSync(join(dir, f))));
  }
  return files;
}

/** Preference rows of a .jsonl/.csv/.parquet file; a bad file is a UsageError naming the row. */
export async function readPairsFile(path: string) {
  if (!existsSync(path)) throw new UsageError(`${path} does not exist`);
  try {
    return await loadPreferencePairs({
      kind: 'bytes',
      bytes: new Uint8Array(readFileSync(path)),
      name: basename(path),
      format: preferenceFormatFromName(path) ?? undefined,
    });
  } catch (e) {
    if (e instanceof PromptFileError) throw new UsageError(e.message);
    throw e;
  }
}

/** A number option, or null when absent. */
export function numberArg(name: string, raw: string | undefined): number | null {
  if (raw === undefined || raw === 'none' || raw === 'null') return null;
  return decimalNumber(`--${name}`, raw);
}

export const rewardDumpCommand: Command = {
  name: 'reward-dump',
  summary: "a GPT-2 reward model's TRL loss, scores and every gradient over a pairs file, as one batch",
  usage:
    'rlhf-studio reward-dump --model DIR --pairs PAIRS.jsonl [--center_rewards_coefficient C] --out OUT.safetensors\n' +
    '  DIR      a GPT2ForSequenceClassification folder (num_labels 1), or a GPT-2 folder (score.weight drawn)\n' +
    '  PAIRS    prompt/chosen/rejected text rows (tokenized as RewardTrainer: prompt+completion+EOS), or\n' +
    '           prompt_ids/chosen_ids/rejected_ids rows used as given\n' +
    '  OUT gets loss [1], chosen_scores [N], rejected_scores [N] and grad.<name> for every parameter.',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        pairs: { type: 'string' },
        out: { type: 'string' },
        center_rewards_coefficient: { type: 'string' },
      },
    });
    if (!values.model || !values.pairs) throw new UsageError('--model and --pairs are required');
    const out = checkOutFile(values.out);
    const c = numberArg('center_rewards_coefficient', values.center_rewards_coefficient);
    const model = loadGPT2RewardFolder(readModelFiles(values.model));
    const { pairs } = tokenizeRewardPairs(await readPairsFile(values.pairs), encode);
    const gpu = await createNodeGpu();
    try {
      const d = await rewardDump(gpu, model, pairs, { centerRewardsCoefficient: c });
      writeFileAtomic(out, writeSafetensors(rewardDumpTensors(d)));
      console.log(`wrote ${out}: ${pairs.length} pairs, loss ${d.loss}`);
    } finally {
      gpu.dispose();
    }
    return 0;
  },
};
