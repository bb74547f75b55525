import { existsSync, readFileSync } from 'node:fs';
import {
  DPO_TOKENIZE_DEFAULTS,
  hubDatasetPathUrl,
  PromptFileError,
  loadPreferencePairs,
  tokenizePairs,
  type PreferenceFormat,
} from '../data/preferences.ts';
import { createNodeGpu } from '../gpu/node.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import { encode, GPT2_VOCAB_SIZE } from '../model/tokenizer.ts';
import { checkDPOSettings, DPO_LOSS_TYPES, type DPOLossSettings, type DPOLossType } from '../rl/dpo.ts';
import { dpoDump, dpoDumpTensors } from '../rl/dpo-dump.ts';
import { decimalNumber, parseCliArgs } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { UsageError, type Command } from './command.ts';
import { loadModelDir } from './model-dir.ts';

/** A number option, or a UsageError naming it. */
export function numberOption(v: string | undefined, name: string, fallback: number): number {
  return v === undefined ? fallback : decimalNumber(`--${name}`, v);
}

/** The loss settings from --beta, --loss_type, --label_smoothing, checked. */
export function lossSettingsArgs(values: {
  beta?: string;
  loss_type?: string;
  label_smoothing?: string;
}): DPOLossSettings {
  const lossType = (values.loss_type ?? 'sigmoid') as DPOLossType;
  if (!DPO_LOSS_TYPES.includes(lossType))
    throw new UsageError(`--loss_type must be one of ${DPO_LOSS_TYPES.join(', ')}, got ${values.loss_type}`);
  const settings = {
    beta: numberOption(values.beta, 'beta', 0.1),
    lossType,
    labelSmoothing: numberOption(values.label_smoothing, 'label_smoothing', 0),
  };
  try {
    checkDPOSettings(settings);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return settings;
}

/** Pairs from a local file, an http(s) URL, or a Hub dataset file (hf://datasets/owner/name[@rev]/file). */
export async function readPairsArg(path: string, format?: PreferenceFormat) {
  const url = hubDatasetPathUrl(path) ?? (/^https?:\/\//.test(path) ? path : null);
  if (!url && !existsSync(path)) throw new UsageError(`--pairs ${path}: no such file`);
  try {
    return url
      ? await loadPreferencePairs({ kind: 'url', url, format }, { cache: null })
      : await loadPreferencePairs({
          kind: 'bytes',
          bytes: new Uint8Array(readFileSync(path)),
          name: path,
          format,
        });
  } catch (e) {
    if (e instanceof PromptFileError) throw new UsageError(e.message);
    throw e;
  }
}

export const dpoDumpCommand: Command = {
  name: 'dpo-dump',
  summary: 'the DPO loss, log-probs, rewards and every policy gradient over a pairs file (no update)',
  usage:
    'rlhf-studio dpo-dump --model DIR --ref DIR --pairs PAIRS.jsonl --beta B --loss_type sigmoid|ipo|hinge\n' +
    '    [--label_smoothing S] --out OUT.safetensors\n' +
    '  PAIRS: prompt/chosen/rejected text rows (tokenized as TRL 0.19 with its default lengths), or\n' +
    '         prompt_ids/chosen_ids/rejected_ids rows used exactly as given; all rows are one batch.\n' +
    '  OUT gets loss [1], chosen_logps, rejected_logps, chosen_rewards, rejected_rewards [N],\n' +
    '  mean_chosen_logits, mean_rejected_logits [1] and grad.<name> for every policy parameter.',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        ref: { type: 'string' },
        pairs: { type: 'string' },
        out: { type: 'string' },
        beta: { type: 'string' },
        loss_type: { type: 'string' },
        label_smoothing: { type: 'string' },
      },
    });
    if (!values.model || !values.ref || !values.pairs)
      throw new UsageError('--model, --ref and --pairs are required');
    const out = checkOutFile(values.out);
    const settings = lossSettingsArgs(values);
    const policy = loadModelDir(values.model);
    const ref = loadModelDir(values.ref);
    if (policy.config.vocab_size !== ref.config.vocab_size) {
      throw new UsageError(
        `the policy's vocabulary (${policy.config.vocab_size}) differs from the reference's (${ref.config.vocab_size})`,
      );
    }
    const raw = await readPairsArg(values.pairs);
    if (raw.some((p) => p.kind === 'text') && policy.config.vocab_size !== GPT2_VOCAB_SIZE)
      throw new UsageError(`text pairs need GPT-2's vocabulary (${GPT2_VOCAB_SIZE}); give token ids instead`);
    const V = policy.config.vocab_size;
    for (const p of raw) {
      if (p.kind !== 'ids') continue;
      const bad = [...p.promptIds, ...p.chosenIds, ...p.rejectedIds].find((id) => id >= V);
      if (bad !== undefined)
        throw new UsageError(`${values.pairs} row ${p.row}: token id ${bad} is not below ${V}`);
    }
    let pairs;
    try {
      pairs = tokenizePairs(raw, encode, DPO_TOKENIZE_DEFAULTS);
    } catch (e) {
      if (e instanceof PromptFileError) throw new UsageError(e.message);
      throw e;
    }
    const gpu = await createNodeGpu();
    try {
      const r = await dpoDump(gpu, { policy, ref }, pairs, settings, { prefixed: policy.prefixed });
      writeFileAtomic(out, writeSafetensors(dpoDumpTensors(r)));
      console.log(`wrote ${out}: ${pairs.length} pairs, ${settings.lossType} loss ${r.loss}`);
    } finally {
      gpu.dispose();
    }
    return 0;
  },
};
