/**
 * The one parameter table: every GPT-2 tensor, in transformers' named_parameters order, with its
 * Hugging Face name (without the `transformer.` prefix), shape and element offset in one flat f32
 * block. Params, grads and both AdamW moments are blocks of the same layout, so AdamW is one loop
 * and zeroing grads one clear; safetensors names and checkpoints come from here too.
 *
 * Shapes are Hugging Face's (Conv1D stores weights as [in, out]):
 *   wte.weight (V, C)    wpe.weight (maxT, C)
 *   h.{i}: ln_1.weight/bias (C)   attn.c_attn.weight (C, 3C) .bias (3C)   attn.c_proj.weight (C, C) .bias (C)
 *          ln_2.weight/bias (C)   mlp.c_fc.weight (C, 4C) .bias (4C)      mlp.c_proj.weight (4C, C) .bias (C)
 *   ln_f.weight/bias (C)
 *   optional TRL value head: v_head.summary.weight (1, C) .bias (1)   (nn.Linear(C, 1))
 *   optional reward-model score head: score.weight (1, C)   (GPT2ForSequenceClassification's
 *     nn.Linear(C, num_labels = 1, bias=False))
 *
 * Every offset is a multiple of PARAM_ALIGN elements (256 bytes, WebGPU's
 * minStorageBufferOffsetAlignment), so each tensor can be bound as a View of the block; the gaps
 * are zeros and stay zeros (their gradients are never written).
 */
import type { View } from '../gpu/buffers.ts';
import type { GPT2Config } from './config.ts';

/** Elements: 64 f32 = 256 bytes. */
export const PARAM_ALIGN = 64;

export interface ParamEntry {
  /** Hugging Face name without `transformer.`: "h.3.attn.c_attn.weight". */
  name: string;
  shape: readonly number[];
  /** Elements: product of shape. */
  size: number;
  /** Elements from the start of the block; a multiple of PARAM_ALIGN. */
  offset: number;
}

export interface ParamTable {
  entries: readonly ParamEntry[];
  byName: ReadonlyMap<string, ParamEntry>;
  /** Elements in the whole block, gaps included; a multiple of PARAM_ALIGN. */
  total: number;
  /** Whether the TRL value head (v_head.summary.*) is part of the block. */
  valueHead: boolean;
  /** Whether the sequence-classification score head (score.weight) is part of the block. */
  scoreHead: boolean;
}

/** llm.c's short names for one block's tensors. */
export const LAYER_PARAMS = {
  ln1w: 'ln_1.weight',
  ln1b: 'ln_1.bias',
  qkvw: 'attn.c_attn.weight',
  qkvb: 'attn.c_attn.bias',
  attprojw: 'attn.c_proj.weight',
  attprojb: 'attn.c_proj.bias',
  ln2w: 'ln_2.weight',
  ln2b: 'ln_2.bias',
  fcw: 'mlp.c_fc.weight',
  fcb: 'mlp.c_fc.bias',
  fcprojw: 'mlp.c_proj.weight',
  fcprojb: 'mlp.c_proj.bias',
} as const;
export type LayerParamName = keyof typeof LAYER_PARAMS;
export type LayerParams = Record<LayerParamName, ParamEntry>;

/** The tensors outside the blocks, by llm.c's names. */
export const MODEL_PARAMS = {
  wte: 'wte.weight',
  wpe: 'wpe.weight',
  lnfw: 'ln_f.weight',
  lnfb: 'ln_f.bias',
} as const;
export type ModelParamName = keyof typeof MODEL_PARAMS;

export const VALUE_HEAD_PARAMS = { vw: 'v_head.summary.weight', vb: 'v_head.summary.bias' } as const;
export type ValueHeadParamName = keyof typeof VALUE_HEAD_PARAMS;

/** GPT2ForSequenceClassification's head; its name carries no `transformer.` prefix in the file either. */
export const SCORE_HEAD_PARAM = 'score.weight';

export interface HeadOptions {
  /** Append TRL's v_head.summary (Linear(C, 1)) after ln_f. */
  valueHead?: boolean;
  /** Append score.weight (1, C) after ln_f (and the value head, when both). */
  scoreHead?: boolean;
}

/** Names and shapes in named_parameters order. */
function gpt2Shapes(cfg: GPT2Config, valueHead: boolean, scoreHead: boolean): [string, number[]][] {
  const { vocab_size: V, n_positions: maxT, n_embd: C, n_layer: L } = cfg;
  const layerShapes: Record<LayerParamName, number[]> = {
    ln1w: [C],
    ln1b: [C],
    qkvw: [C, 3 * C],
    qkvb: [3 * C],
    attprojw: [C, C],
    attprojb: [C],
    ln2w: [C],
    ln2b: [C],
    fcw: [C, 4 * C],
    fcb: [4 * C],
    fcprojw: [4 * C, C],
    fcprojb: [C],
  };
  const shapes: [string, number[]][] = [
    [MODEL_PARAMS.wte, [V, C]],
    [MODEL_PARAMS.wpe, [maxT, C]],
  ];
  for (let i = 0; i < L; i++) {
    for (const [short, name] of Object.entries(LAYER_PARAMS)) {
      shapes.push([`h.${i}.${name}`, layerShapes[short as LayerParamName]]);
    }
  }
  shapes.push([MODEL_PARAMS.lnfw, [C]], [MODEL_PARAMS.lnfb, [C]]);
  if (valueHead) shapes.push([VALUE_HEAD_PARAMS.vw, [1, C]], [VALUE_HEAD_PARAMS.vb, [1]]);
  if (scoreHead) shapes.push([SCORE_HEAD_PARAM, [1, C]]);
  return shapes;
}

function alignElems(n: number): number {
  return Math.ceil(n / PARAM_ALIGN) * PARAM_ALIGN;
}

/**
 * The table for a config; `valueHead` appends TRL's v_head.summary (Linear(C, 1)) after ln_f,
 * `scoreHead` the reward model's score.weight (1, C).
 */
export function gpt2ParamTable(
  cfg: GPT2Config,
  { valueHead = false, scoreHead = false }: HeadOptions = {},
): ParamTable {
  const entries: ParamEntry[] = [];
  let offset = 0;
  for (const [name, shape] of gpt2Shapes(cfg, valueHead, scoreHead)) {
    const size = shape.reduce((a, b) => a * b, 1);
    entries.push({ name, shape, size, offset });
    offset = alignElems(offset + size);
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  return { entries, byName, total: offset, valueHead, scoreHead };
}

/** The entry for a Hugging Face name (no `transformer.` prefix); throws naming it when absent. */
export function paramEntry(table: ParamTable, name: string): ParamEntry {
  const e = table.byName.get(name);
  if (!e) throw new Error(`no parameter "${name}" in the GPT-2 parameter table`);
  return e;
}

/** Block i's tensors by llm.c's short names. */
export function layerParams(table: ParamTable, i: number): LayerParams {
  const out = {} as LayerParams;
  for (const [short, name] of Object.entries(LAYER_PARAMS))
    out[short as LayerParamName] = paramEntry(table, `h.${i}.${name}`);
  return out;
}

/** wte, wpe, lnfw, lnfb. */
export function modelParams(table: ParamTable): Record<ModelParamName, ParamEntry> {
  const out = {} as Record<ModelParamName, ParamEntry>;
  for (const [short, name] of Object.entries(MODEL_PARAMS))
    out[short as ModelParamName] = paramEntry(table, name);
  return out;
}

/** vw (1, C), vb (1); throws when the table was built without the value head. */
export function valueHeadParams(table: ParamTable): Record<ValueHeadParamName, ParamEntry> {
  return { vw: paramEntry(table, VALUE_HEAD_PARAMS.vw), vb: paramEntry(table, VALUE_HEAD_PARAMS.vb) };
}

/** score.weight (1, C); throws when the table was built without the score head. */
export function scoreHeadParam(table: ParamTable): ParamEntry {
  return paramEntry(table, SCORE_HEAD_PARAM);
}

/** The entry's elements inside a CPU block laid out by the table (a view, not a copy). */
export function paramSlice(block: Float32Array, e: ParamEntry): Float32Array {
  return block.subarray(e.offset, e.offset + e.size);
}

/** The entry's byte range inside a GPU buffer laid out by the table, ready to bind. */
export function paramView(buffer: GPUBuffer, e: ParamEntry): View {
  return { buffer, offset: e.offset * 4, size: e.size * 4 };
}

/** Block i's tensors as Views of a GPU buffer laid out by the table (params, grads or moments). */
/** One layer's parameters as views into the parameter buffer, by short name. */
export type LayerViews = Record<LayerParamName, View>;

export function layerViews(buffer: GPUBuffer, table: ParamTable, i: number): LayerViews {
  const lp = layerParams(table, i);
  const out = {} as Record<LayerParamName, View>;
  for (const short of Object.keys(lp) as LayerParamName[]) out[short] = paramView(buffer, lp[short]);
  return out;
}

/** Parameters that count (gaps excluded); 124,439,808 for GPT2_SMALL. */
export function paramCount(table: ParamTable): number {
  return table.entries.reduce((n, e) => n + e.size, 0);
}
