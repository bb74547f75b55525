/**
 * A GPT-2 reward model's Hugging Face folder, in and out: what
 * `AutoModelForSequenceClassification.from_pretrained(dir, num_labels=1)` loads as
 * GPT2ForSequenceClassification.
 *
 *   config.json        GPT-2's config with architectures [GPT2ForSequenceClassification],
 *                      id2label {0: LABEL_0} / label2id (one label), pad_token_id
 *   model.safetensors  `transformer.`-prefixed body + `score.weight` (1, C), F32
 *   tokenizer files    as a GPT-2 folder (hf-folder.ts)
 *
 * Loading also takes a plain causal-LM folder (no score.weight): the head then starts as
 * transformers initialises it, N(0, initializer_range), the start of a reward-model run from a
 * (fine-tuned) GPT-2.
 */
import { toHFConfigJson, type GPT2Config } from '../model/config.ts';
import { exportHFFolder, type HFFiles } from '../model/hf-folder.ts';
import { gpt2ParamTable, paramSlice, scoreHeadParam } from '../model/param-table.ts';
import {
  loadGPT2Weights,
  readWeightsFile,
  tensorToF32,
  writeSafetensors,
  type TensorMap,
} from '../model/safetensors.ts';
import { mulberry32, normal } from '../util/random.ts';

export interface LoadedGPT2Reward {
  config: GPT2Config;
  /** Laid out by gpt2ParamTable(config, {scoreHead: true}). */
  params: Float32Array;
  /** config.json's pad_token_id, else eos_token_id (TRL's RewardTrainer pads GPT-2 with EOS). */
  padTokenId: number | null;
  /** Whether score.weight came from the file (false: freshly initialised). */
  scoreLoaded: boolean;
  /** id2label[0], the one label's name. */
  label: string;
}

const SCORE = 'score.weight';
const decoder = new TextDecoder();

/** One label, or a clear error: a reward model gives one logit. */
function oneLabel(cfg: Record<string, unknown>): string {
  const id2label = cfg.id2label as Record<string, string> | undefined;
  const n = id2label
    ? Object.keys(id2label).length
    : typeof cfg.num_labels === 'number'
      ? cfg.num_labels
      : null;
  if (n !== null && n !== 1) {
    throw new Error(
      `config.json has ${n} labels (id2label); a GPT-2 reward model has one (num_labels=1), its score`,
    );
  }
  return id2label?.['0'] ?? 'LABEL_0';
}

/**
 * Reward-model weights from a folder's config.json and weights (model.safetensors or
 * pytorch_model.bin). `seed` draws score.weight when the file has none.
 */
export function loadGPT2RewardFolder(files: HFFiles, { seed = 0 } = {}): LoadedGPT2Reward {
  const configBytes = files.get('config.json');
  if (!configBytes) throw new Error('reward model folder: config.json is missing');
  const weights = files.get('model.safetensors') ?? files.get('pytorch_model.bin');
  if (!weights)
    throw new Error('reward model folder: neither model.safetensors nor pytorch_model.bin is there');
  const configJson = decoder.decode(configBytes);
  const raw = JSON.parse(configJson) as Record<string, unknown>;
  const label = oneLabel(raw);
  const tensors: TensorMap = new Map(readWeightsFile(weights));
  const score = tensors.get(SCORE);
  tensors.delete(SCORE);
  const body = loadGPT2Weights({ configJson, weights: tensors });
  const config = body.config;
  const table = gpt2ParamTable(config, { scoreHead: true });
  const params = new Float32Array(table.total);
  params.set(body.params); // the body's layout is a prefix of the table with the head
  const w = paramSlice(params, scoreHeadParam(table));
  if (score) {
    if (score.shape.length !== 2 || score.shape[0] !== 1 || score.shape[1] !== config.n_embd) {
      throw new Error(
        `reward model: score.weight is [${score.shape.join(', ')}], expected [1, ${config.n_embd}]`,
      );
    }
    tensorToF32(score, w);
  } else {
    const rng = mulberry32(seed);
    for (let i = 0; i < w.length; i++) w[i] = normal(rng) * config.initializer_range;
  }
  const pad = raw.pad_token_id;
  const padTokenId = typeof pad === 'number' ? pad : config.eos_token_id;
  return { config, params, padTokenId, scoreLoaded: score !== undefined, label };
}

/** config.json of GPT2ForSequenceClassification with one label (keys sorted, as transformers writes). */
export function rewardConfigJson(config: GPT2Config, padTokenId: number | null): string {
  const base = JSON.parse(toHFConfigJson(config)) as Record<string, unknown>;
  const json: Record<string, unknown> = {
    ...base,
    architectures: ['GPT2ForSequenceClassification'],
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    pad_token_id: padTokenId,
  };
  const sorted = Object.fromEntries(
    Object.keys(json)
      .sort()
      .map((k) => [k, json[k]]),
  );
  return JSON.stringify(sorted, null, 2) + '\n';
}

/** Every file of the reward model's folder, for `params` laid out with the score head. */
export function exportGPT2RewardFolder(
  config: GPT2Config,
  params: Float32Array,
  { padTokenId }: { padTokenId: number | null },
): HFFiles {
  const table = gpt2ParamTable(config, { scoreHead: true });
  if (params.length !== table.total) {
    throw new Error(`exportGPT2RewardFolder: params has ${params.length} elements, the table ${table.total}`);
  }
  const files = exportHFFolder(config, params.subarray(0, gpt2ParamTable(config).total));
  files.delete('generation_config.json'); // a classifier does not generate
  files.set('config.json', new TextEncoder().encode(rewardConfigJson(config, padTokenId)));
  files.set(
    'model.safetensors',
    writeSafetensors(
      table.entries.map((e) => [
        e.name === SCORE ? SCORE : `transformer.${e.name}`,
        { dtype: 'F32', shape: e.shape, data: paramSlice(params, e) },
      ]),
    ),
  );
  return files;
}
