/**
 * Any Hub text-classification model exported to ONNX, as a RewardModel, through transformers.js
 * (AutoTokenizer + AutoModelForSequenceClassification; onnxruntime-node in Node, onnxruntime-web
 * in the browser). Logits are raw, as TRL's pipeline call with `function_to_apply: "none"`.
 *
 * Tokenization is ours on top of the model's tokenizer: transformers.js truncates *after* adding
 * special tokens (a 200-token review becomes [CLS] w1..w63, losing [SEP]), while the Python
 * tokenizer behind TRL's pipeline truncates the text and keeps [CLS] .. [SEP]. We encode without
 * special tokens, cut the text to maxLength - (number of special tokens), then wrap it.
 *
 * Browser callers go through src/reward/onnx-browser.ts, which points onnxruntime-web at the
 * .wasm files our Vite build serves and picks WebGPU or wasm.
 *
 * transformers.js (and onnxruntime with it) is imported on the first load, not with this module:
 * it takes ~0.3 s in Node, which every CLI command would otherwise pay.
 */
import type {
  DataType,
  DeviceType,
  PreTrainedModel,
  ProgressCallback,
  Tensor,
} from '@huggingface/transformers';
import { describeSource, type RewardSource } from './source.ts';
import type { RewardModel } from './types.ts';

export interface OnnxRewardOptions {
  /** 'cpu' in Node (onnxruntime-node); 'webgpu' or 'wasm' in the browser. Default: transformers.js' default. */
  device?: DeviceType;
  /** Which graph: 'fp32' = onnx/model.onnx, 'q8' = onnx/model_quantized.onnx. Default 'fp32'. */
  dtype?: DataType;
  /** Texts per session run; each run pads to its longest text. Default 16 (TRL's sent_kwargs). */
  batchSize?: number;
  /** onnxruntime-web's files (browser): URLs our build serves, so no CDN is contacted. */
  wasmPaths?: { wasm: string; mjs: string };
  /** transformers.js' download/load progress events. */
  onProgress?: ProgressCallback;
}

/** The subset of a transformers.js tokenizer that encodeBatch needs. */
export interface ClassifierTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
  pad_token_id?: number | null;
  padding_side?: string;
}

/** The special tokens a tokenizer wraps one text in: ids = [...prefix, ...text ids, ...suffix]. */
export interface SpecialTokenFrame {
  prefix: number[];
  suffix: number[];
}

/**
 * Finds the frame by encoding a probe with and without special tokens. Null when the text's ids
 * do not appear inside the full encoding (a post-processor that rewrites ids).
 */
export function specialTokenFrame(
  tokenizer: ClassifierTokenizer,
  probe = 'hello world',
): SpecialTokenFrame | null {
  const inner = tokenizer.encode(probe, { add_special_tokens: false });
  const full = tokenizer.encode(probe, { add_special_tokens: true });
  if (inner.length === 0) return null;
  for (let i = 0; i + inner.length <= full.length; i++) {
    if (inner.every((id, k) => full[i + k] === id)) {
      return { prefix: full.slice(0, i), suffix: full.slice(i + inner.length) };
    }
  }
  return null;
}

/** A padded batch: input_ids and attention_mask, both (B, T) row-major. */
export interface EncodedBatch {
  B: number;
  T: number;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
}

/**
 * Tokenizes texts like the Python tokenizer with `padding=True, truncation=True,
 * max_length=maxLength`: each text cut to fit maxLength with its special tokens, then padded
 * (on the tokenizer's padding side) to the longest in the batch.
 */
export function encodeBatch(
  tokenizer: ClassifierTokenizer,
  frame: SpecialTokenFrame | null,
  texts: string[],
  maxLength: number,
): EncodedBatch {
  const rows = texts.map((text) => {
    if (!frame) return tokenizer.encode(text, { add_special_tokens: true }).slice(0, maxLength);
    const room = Math.max(0, maxLength - frame.prefix.length - frame.suffix.length);
    const inner = tokenizer.encode(text, { add_special_tokens: false }).slice(0, room);
    return [...frame.prefix, ...inner, ...frame.suffix];
  });
  const B = texts.length;
  const T = Math.max(1, ...rows.map((r) => r.length));
  const pad = BigInt(tokenizer.pad_token_id ?? 0);
  const left = tokenizer.padding_side === 'left';
  const inputIds = new BigInt64Array(B * T).fill(pad); // (B, T)
  const attentionMask = new BigInt64Array(B * T); // (B, T), 1 on real tokens
  rows.forEach((row, b) => {
    const start = b * T + (left ? T - row.length : 0);
    row.forEach((id, t) => {
      inputIds[start + t] = BigInt(id);
      attentionMask[start + t] = 1n;
    });
  });
  return { B, T, inputIds, attentionMask };
}

/** A loaded ONNX classifier. */
export interface OnnxRewardModel extends RewardModel {
  /** Longest input in tokens, special tokens included. */
  maxLength: number;
  /** Padded, truncated token ids for `texts`, exactly what logits() feeds the model. */
  encode(texts: string[]): EncodedBatch;
}

interface ClassifierConfig {
  id2label?: Record<string, string>;
  max_position_embeddings?: number;
}

/** Labels in logit order from config.json's id2label (HF's LABEL_j when absent). */
export function labelsFromConfig(config: ClassifierConfig, numLabels: number): string[] {
  return Array.from({ length: numLabels }, (_, j) => config.id2label?.[String(j)] ?? `LABEL_${j}`);
}

type Transformers = typeof import('@huggingface/transformers');
let transformersModule: Promise<Transformers> | null = null;
const transformers = () => (transformersModule ??= import('@huggingface/transformers'));

/** Serializes loads: transformers.js reads the global `env` while it fetches each file. */
let loading: Promise<unknown> = Promise.resolve();

/** A name transformers.js accepts as a model id (its REPO_ID_REGEX for one segment, no '..' or '--'). */
const isModelIdSegment = (s: string) =>
  /^\b[\w\-.]{1,96}\b$/.test(s) && !s.includes('..') && !s.includes('--');

/** Points transformers.js' global env at the source; returns the model id to pass to from_pretrained. */
function pointEnvAt(env: Transformers['env'], source: RewardSource): string {
  switch (source.kind) {
    case 'local': {
      const path = source.path.replace(/[\\/]+$/, '');
      const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
      env.allowLocalModels = true;
      env.allowRemoteModels = false;
      env.localModelPath = cut < 0 ? './' : path.slice(0, cut + 1);
      const name = path.slice(cut + 1);
      // Not an id (e.g. a space in it): transformers.js then reads `${id}/${file}` as a plain path.
      return isModelIdSegment(name) ? name : path;
    }
    case 'hub':
      env.allowLocalModels = false;
      env.allowRemoteModels = true;
      env.remoteHost = 'https://huggingface.co/';
      env.remotePathTemplate = '{model}/resolve/{revision}/';
      return source.repo;
    case 'url': {
      // remoteHost + '{model}/' + file, with {model} the folder's last segment: the fetched URLs are
      // the folder's own, and they are also the Cache Storage keys.
      const url = new URL(source.url.endsWith('/') ? source.url : source.url + '/');
      const parts = url.pathname.split('/').filter(Boolean);
      const name = parts.pop();
      if (!name || !isModelIdSegment(decodeURIComponent(name))) {
        throw new Error(
          `reward model URL ${source.url}: its last folder name must be letters, digits, '-', '_' or '.'`,
        );
      }
      env.allowLocalModels = false;
      env.allowRemoteModels = true;
      env.remoteHost = `${url.origin}/${parts.join('/')}${parts.length ? '/' : ''}`;
      env.remotePathTemplate = '{model}/';
      return decodeURIComponent(name);
    }
  }
}

/**
 * Loads a text classifier's tokenizer and ONNX graph from `source` as a RewardModel.
 * In Node only local folders are read when `source.kind === 'local'` (no network).
 */
export async function loadOnnxReward(
  source: RewardSource,
  options: OnnxRewardOptions = {},
): Promise<OnnxRewardModel> {
  const run = loading.then(() => load(source, options));
  loading = run.catch(() => undefined);
  return run;
}

async function load(source: RewardSource, options: OnnxRewardOptions): Promise<OnnxRewardModel> {
  const { AutoModelForSequenceClassification, AutoTokenizer, Tensor, env } = await transformers();
  if (options.wasmPaths && env.backends.onnx.wasm)
    env.backends.onnx.wasm.wasmPaths = { ...options.wasmPaths };
  const id = pointEnvAt(env, source);
  const revision = source.kind === 'hub' ? (source.revision ?? 'main') : undefined;
  const common = { revision, progress_callback: options.onProgress };
  let model: PreTrainedModel;
  let tokenizer: ClassifierTokenizer & { model_max_length?: unknown };
  try {
    tokenizer = await AutoTokenizer.from_pretrained(id, common);
    model = await AutoModelForSequenceClassification.from_pretrained(id, {
      ...common,
      device: options.device,
      dtype: options.dtype ?? 'fp32',
    });
  } catch (e) {
    throw new Error(
      `cannot load the ONNX reward model from ${describeSource(source)}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const config = model.config as unknown as ClassifierConfig;
  const numLabels = Object.keys(config.id2label ?? {}).length || 2;
  const labels = labelsFromConfig(config, numLabels);
  const limits = [tokenizer.model_max_length, config.max_position_embeddings];
  const maxLength = Math.min(...limits.map((v) => (typeof v === 'number' && v > 0 ? v : Infinity)));
  const frame = specialTokenFrame(tokenizer);
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const encode = (texts: string[]) => encodeBatch(tokenizer, frame, texts, maxLength);

  async function logits(texts: string[]): Promise<Float32Array> {
    const L = labels.length;
    const out = new Float32Array(texts.length * L); // (N, L)
    for (let i = 0; i < texts.length; i += batchSize) {
      const { B, T, inputIds, attentionMask } = encode(texts.slice(i, i + batchSize));
      const result = (await model.forward({
        input_ids: new Tensor('int64', inputIds, [B, T]),
        attention_mask: new Tensor('int64', attentionMask, [B, T]),
      })) as { logits: Tensor };
      const [rows, cols] = result.logits.dims;
      if (rows !== B || cols !== L) {
        throw new Error(
          `reward model gave logits of shape [${result.logits.dims}], expected [${B}, ${L}] (labels: ${labels})`,
        );
      }
      out.set(result.logits.data as Float32Array, i * L);
    }
    return out;
  }

  return {
    labels,
    maxLength,
    encode,
    logits,
    dispose: () => void model.dispose(),
  };
}
