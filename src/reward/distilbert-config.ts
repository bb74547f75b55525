/**
 * DistilBertForSequenceClassification's hyperparameters (config.json) and its weights laid out for
 * our kernels: one flat f32 block carved by a table, every tensor at a 256-byte aligned offset so
 * it binds as a View.
 *
 * The Hugging Face checkpoint stores nn.Linear weights as [out, in]; our GEMMs take [in, out] (as
 * GPT-2's Conv1D), so every Linear weight is transposed on load, and q_lin, k_lin, v_lin are fused
 * into one (C, 3C) weight whose output is the qkv (B, T, 3C) layout attention_bidir reads:
 *
 *   ours (C = dim, H = hidden_dim, L = labels)      Hugging Face (prefix `distilbert.` but the head)
 *   word (V, C), position (maxT, C)                  embeddings.{word,position}_embeddings.weight
 *   emb_lnw, emb_lnb (C)                             embeddings.LayerNorm.{weight,bias}
 *   layer.{i}: qkvw (C, 3C), qkvb (3C)               transformer.layer.{i}.attention.{q,k,v}_lin
 *              attprojw (C, C), attprojb (C)         ... attention.out_lin
 *              ln1w, ln1b (C)                        ... sa_layer_norm
 *              fcw (C, H), fcb (H)                   ... ffn.lin1
 *              fcprojw (H, C), fcprojb (C)           ... ffn.lin2
 *              ln2w, ln2b (C)                        ... output_layer_norm
 *   prew (C, C), preb (C)                            pre_classifier
 *   clsw (C, L), clsb (L)                            classifier
 */
import { tensorToF32, type TensorMap, type TensorRef } from '../model/safetensors.ts';

export type DistilBertActivation = 'gelu' | 'relu';

export interface DistilBertConfig {
  /** V: rows of the word embedding. */
  vocab_size: number;
  /** maxT: rows of the position embedding, the longest input (special tokens included). */
  max_position_embeddings: number;
  /** C: the hidden width. */
  dim: number;
  n_layers: number;
  /** NH: attention heads; head size HS = C / NH. */
  n_heads: number;
  /** H: the feed-forward width. */
  hidden_dim: number;
  /** The feed-forward activation: 'gelu' is the exact erf GELU (torch's default). */
  activation: DistilBertActivation;
  /** Class names in logit order, config.json's id2label[0..L-1]. */
  labels: string[];
}

/** eps of every DistilBERT LayerNorm (hard-coded in transformers' modeling_distilbert). */
export const DISTILBERT_LN_EPS = 1e-12;

/** transformers' DistilBertConfig defaults for the fields a config.json may leave out. */
const HF_DEFAULTS = {
  vocab_size: 30522,
  max_position_embeddings: 512,
  dim: 768,
  n_layers: 6,
  n_heads: 12,
  hidden_dim: 3072,
  activation: 'gelu',
} as const;

export class DistilBertConfigError extends Error {
  constructor(message: string) {
    super(`DistilBERT config.json: ${message}`);
    this.name = 'DistilBertConfigError';
  }
}

type Json = Record<string, unknown>;

function positiveInt(o: Json, key: keyof typeof HF_DEFAULTS): number {
  const v = o[key] ?? HF_DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new DistilBertConfigError(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Labels from id2label, whose keys must be 0..L-1; HF's LABEL_0, LABEL_1 when it is absent. */
function parseLabels(o: Json): string[] {
  const id2label = o.id2label;
  if (id2label === undefined || id2label === null) return ['LABEL_0', 'LABEL_1'];
  if (typeof id2label !== 'object' || Array.isArray(id2label)) {
    throw new DistilBertConfigError('"id2label" must be an object {"0": "NEGATIVE", ...}');
  }
  const map = id2label as Record<string, unknown>;
  const n = Object.keys(map).length;
  if (n === 0) throw new DistilBertConfigError('"id2label" is empty');
  return Array.from({ length: n }, (_, j) => {
    const label = map[String(j)];
    if (typeof label !== 'string') {
      throw new DistilBertConfigError(
        `"id2label" has no string label for id ${j} (its keys: ${Object.keys(map).join(', ')})`,
      );
    }
    return label;
  });
}

/**
 * Parses and validates a DistilBERT config.json (text or parsed). Missing fields take transformers'
 * defaults; a model_type other than "distilbert", or an activation other than gelu/relu, is refused.
 */
export function parseDistilBertConfig(json: unknown): DistilBertConfig {
  let j: unknown = json;
  if (typeof json === 'string') {
    try {
      j = JSON.parse(json);
    } catch (e) {
      throw new DistilBertConfigError(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    throw new DistilBertConfigError('not a JSON object');
  const o = j as Json;
  if (o.model_type !== 'distilbert') {
    throw new DistilBertConfigError(`model_type must be "distilbert", got ${JSON.stringify(o.model_type)}`);
  }
  const activation = o.activation ?? HF_DEFAULTS.activation;
  if (activation !== 'gelu' && activation !== 'relu') {
    throw new DistilBertConfigError(
      `activation ${JSON.stringify(activation)} is not supported (gelu or relu)`,
    );
  }
  const cfg: DistilBertConfig = {
    vocab_size: positiveInt(o, 'vocab_size'),
    max_position_embeddings: positiveInt(o, 'max_position_embeddings'),
    dim: positiveInt(o, 'dim'),
    n_layers: positiveInt(o, 'n_layers'),
    n_heads: positiveInt(o, 'n_heads'),
    hidden_dim: positiveInt(o, 'hidden_dim'),
    activation,
    labels: parseLabels(o),
  };
  if (cfg.dim % cfg.n_heads !== 0) {
    throw new DistilBertConfigError(`dim ${cfg.dim} is not divisible by n_heads ${cfg.n_heads}`);
  }
  return cfg;
}

/* ------------------------------------------------------------------------------------------------ */
/* The parameter table                                                                               */

/** Elements: 64 f32 = 256 bytes (minStorageBufferOffsetAlignment). */
const ALIGN = 64;

/** One block's tensors: our short name -> [HF name under `transformer.layer.{i}.`, kind]. */
const LAYER_SOURCES = {
  qkvw: ['attention.{q,k,v}_lin.weight', 'linear'],
  qkvb: ['attention.{q,k,v}_lin.bias', 'vector'],
  attprojw: ['attention.out_lin.weight', 'linear'],
  attprojb: ['attention.out_lin.bias', 'vector'],
  ln1w: ['sa_layer_norm.weight', 'vector'],
  ln1b: ['sa_layer_norm.bias', 'vector'],
  fcw: ['ffn.lin1.weight', 'linear'],
  fcb: ['ffn.lin1.bias', 'vector'],
  fcprojw: ['ffn.lin2.weight', 'linear'],
  fcprojb: ['ffn.lin2.bias', 'vector'],
  ln2w: ['output_layer_norm.weight', 'vector'],
  ln2b: ['output_layer_norm.bias', 'vector'],
} as const;
export type DistilBertLayerParam = keyof typeof LAYER_SOURCES;

const MODEL_SOURCES = {
  word: ['distilbert.embeddings.word_embeddings.weight', 'table'],
  position: ['distilbert.embeddings.position_embeddings.weight', 'table'],
  emb_lnw: ['distilbert.embeddings.LayerNorm.weight', 'vector'],
  emb_lnb: ['distilbert.embeddings.LayerNorm.bias', 'vector'],
  prew: ['pre_classifier.weight', 'linear'],
  preb: ['pre_classifier.bias', 'vector'],
  clsw: ['classifier.weight', 'linear'],
  clsb: ['classifier.bias', 'vector'],
} as const;
export type DistilBertModelParam = keyof typeof MODEL_SOURCES;

/** Checkpoint tensors that are not parameters (an old persistent position_ids buffer). */
const IGNORED = new Set(['distilbert.embeddings.position_ids']);

/**
 * One tensor of our block. `sources` are the HF tensors it is built from, concatenated along our
 * last axis; 'linear' sources are nn.Linear weights [out, in], transposed into our [in, out].
 */
export interface DistilBertParamEntry {
  shape: readonly number[];
  offset: number;
  size: number;
  kind: 'linear' | 'vector' | 'table';
  sources: { name: string; shape: readonly number[] }[];
}

export interface DistilBertParamTable {
  model: Record<DistilBertModelParam, DistilBertParamEntry>;
  layers: Record<DistilBertLayerParam, DistilBertParamEntry>[];
  /** Elements in the block, gaps included. */
  total: number;
}

/** Our shape and the HF sources' shapes of one tensor. */
function shapes(kind: 'linear' | 'vector' | 'table', names: string[], outs: number[], inp: number) {
  const outTotal = outs.reduce((a, b) => a + b, 0);
  const shape = kind === 'linear' ? [inp, outTotal] : kind === 'table' ? [outs[0], inp] : [outTotal];
  const sources = names.map((name, k) => ({ name, shape: kind === 'vector' ? [outs[k]] : [outs[k], inp] }));
  return { shape, sources };
}

/** The layout of a config's parameters. */
export function distilbertParamTable(cfg: DistilBertConfig): DistilBertParamTable {
  const { dim: C, hidden_dim: H, vocab_size: V, max_position_embeddings: maxT } = cfg;
  const L = cfg.labels.length;
  let offset = 0;
  const add = (kind: 'linear' | 'vector' | 'table', names: string[], outs: number[], inp: number) => {
    const { shape, sources } = shapes(kind, names, outs, inp);
    const size = shape.reduce((a, b) => a * b, 1);
    const entry: DistilBertParamEntry = { shape, offset, size, kind, sources };
    offset = Math.ceil((offset + size) / ALIGN) * ALIGN;
    return entry;
  };
  // (outs, in) per model tensor: a table's "outs" is its row count.
  const modelDims: Record<DistilBertModelParam, [number[], number]> = {
    word: [[V], C],
    position: [[maxT], C],
    emb_lnw: [[C], 0],
    emb_lnb: [[C], 0],
    prew: [[C], C],
    preb: [[C], 0],
    clsw: [[L], C],
    clsb: [[L], 0],
  };
  const layerDims: Record<DistilBertLayerParam, [number[], number]> = {
    qkvw: [[C, C, C], C],
    qkvb: [[C, C, C], 0],
    attprojw: [[C], C],
    attprojb: [[C], 0],
    ln1w: [[C], 0],
    ln1b: [[C], 0],
    fcw: [[H], C],
    fcb: [[H], 0],
    fcprojw: [[C], H],
    fcprojb: [[C], 0],
    ln2w: [[C], 0],
    ln2b: [[C], 0],
  };
  const model = {} as Record<DistilBertModelParam, DistilBertParamEntry>;
  for (const [short, [name, kind]] of Object.entries(MODEL_SOURCES)) {
    const [outs, inp] = modelDims[short as DistilBertModelParam];
    model[short as DistilBertModelParam] = add(kind, [name], outs, inp);
  }
  const layers: Record<DistilBertLayerParam, DistilBertParamEntry>[] = [];
  for (let i = 0; i < cfg.n_layers; i++) {
    const layer = {} as Record<DistilBertLayerParam, DistilBertParamEntry>;
    for (const [short, [pattern, kind]] of Object.entries(LAYER_SOURCES)) {
      const [outs, inp] = layerDims[short as DistilBertLayerParam];
      const full = `distilbert.transformer.layer.${i}.${pattern}`;
      const names = full.includes('{q,k,v}')
        ? ['q', 'k', 'v'].map((x) => full.replace('{q,k,v}', x))
        : [full];
      layer[short as DistilBertLayerParam] = add(kind, names, outs, inp);
    }
    layers.push(layer);
  }
  return { model, layers, total: offset };
}

function allEntries(table: DistilBertParamTable): DistilBertParamEntry[] {
  return [...Object.values(table.model), ...table.layers.flatMap((l) => Object.values(l))];
}

function listed(what: string, names: string[]): string {
  const head = names.slice(0, 12).join('; ');
  return `\n  ${what} (${names.length}): ${head}${names.length > 12 ? '; ...' : ''}`;
}

/** Writes one entry's HF sources into its slice of `params`, transposing Linear weights. */
function fill(params: Float32Array, e: DistilBertParamEntry, tensors: TensorMap): void {
  const dst = params.subarray(e.offset, e.offset + e.size);
  let col = 0; // our column (or element, for vectors) where the next source starts
  for (const s of e.sources) {
    const src = tensorToF32(tensors.get(s.name) as TensorRef);
    if (e.kind === 'linear') {
      const [out, inp] = s.shape; // HF [out, in] -> ours [in, outTotal]
      const ld = e.shape[1];
      for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) dst[i * ld + col + o] = src[o * inp + i];
      col += out;
    } else {
      dst.set(src, col);
      col += src.length;
    }
  }
}

/**
 * DistilBertForSequenceClassification's tensors (from readWeightsFile) as our parameter block.
 * Every tensor is checked against config.json; missing, unexpected and misshapen tensors are all
 * named in one error. F16 and BF16 are widened to f32.
 */
export function loadDistilBertParams(
  cfg: DistilBertConfig,
  tensors: TensorMap,
): { table: DistilBertParamTable; params: Float32Array } {
  const table = distilbertParamTable(cfg);
  const expected = new Map(
    allEntries(table).flatMap((e) => e.sources.map((s) => [s.name, s.shape] as const)),
  );
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n) && !IGNORED.has(n));
  const wrong: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) continue;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      wrong.push(`${name} is [${t.shape.join(', ')}], config.json wants [${shape.join(', ')}]`);
    } else if (t.dtype === 'I64' || t.dtype === 'I32') {
      wrong.push(`${name} has integer dtype ${t.dtype}`);
    }
  }
  if (missing.length || unexpected.length || wrong.length) {
    const { dim, n_layers, n_heads, hidden_dim, vocab_size, max_position_embeddings, labels } = cfg;
    throw new Error(
      `DistilBERT weights do not match config.json (dim ${dim}, n_layers ${n_layers}, n_heads ${n_heads}, ` +
        `hidden_dim ${hidden_dim}, vocab_size ${vocab_size}, max_position_embeddings ${max_position_embeddings}, ` +
        `${labels.length} labels):` +
        (missing.length ? listed('missing', missing) : '') +
        (unexpected.length ? listed('unexpected', unexpected) : '') +
        (wrong.length ? listed('wrong', wrong) : ''),
    );
  }
  const params = new Float32Array(table.total);
  for (const e of allEntries(table)) fill(params, e, tensors);
  return { table, params };
}
