/**
 * LoRA on GPT-2's Conv1D layers, as peft does it, and the one table of its trainable tensors.
 *
 * peft wraps each targeted Conv1D (weight W stored [in, out], fan_in_fan_out = true) with
 *   y = x W + b + scaling * dropout(x) A^T B^T        A = lora_A.weight (r, in), B = lora_B.weight (out, r)
 *   scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
 * and, merged, W' = W + scaling * (B A)^T (the transpose because Conv1D stores W as [in, out]).
 * A target name matches a module whose name ends with it: `c_proj` is both attn.c_proj and mlp.c_proj.
 *
 * The table lays out every lora_A / lora_B (and, for PPO, TRL's value head, trained in full) in one
 * flat f32 block, like param-table.ts does for the base: params, grads and both Adam moments share it,
 * and names come from it. Entry names are the base table's without `transformer.`:
 *   h.{i}.attn.c_attn.lora_A.weight (r, C)    h.{i}.attn.c_attn.lora_B.weight (3C, r)
 *   h.{i}.attn.c_proj.lora_A.weight (r, C)    h.{i}.attn.c_proj.lora_B.weight (C, r)
 *   h.{i}.mlp.c_fc.lora_A.weight (r, C)       h.{i}.mlp.c_fc.lora_B.weight (4C, r)
 *   h.{i}.mlp.c_proj.lora_A.weight (r, 4C)    h.{i}.mlp.c_proj.lora_B.weight (C, r)
 *   v_head.summary.weight (1, C), v_head.summary.bias (1)     (optional)
 *   score.weight (1, C)    (optional: a reward model's score head, trained in full as peft's
 *                          modules_to_save of a SEQ_CLS model)
 * peft's file names prefix them with `base_model.model.transformer.` (peft.ts).
 */
import type { GPT2Config } from './config.ts';
import {
  PARAM_ALIGN,
  SCORE_HEAD_PARAM,
  VALUE_HEAD_PARAMS,
  type ParamEntry,
  type ParamTable,
} from './param-table.ts';

/** LoRA settings by peft's LoraConfig names (TRL's ModelConfig: lora_r, lora_alpha, ...). */
export interface LoraConfig {
  /** Rank of the update. */
  r: number;
  /** The update is scaled by alpha / r (alpha / sqrt(r) with useRslora). */
  alpha: number;
  /** Dropout probability on the adapter's input (training passes only). */
  dropout: number;
  /** Module name suffixes: any of c_attn, c_proj, c_fc. */
  targetModules: readonly string[];
  /** Rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023). */
  useRslora: boolean;
}

/** TRL ModelConfig's defaults (lora_r 16, lora_alpha 32, lora_dropout 0.05); with no target modules
 * peft picks GPT-2's default, ["c_attn"]. */
export const TRL_LORA_DEFAULTS: LoraConfig = {
  r: 16,
  alpha: 32,
  dropout: 0.05,
  targetModules: ['c_attn'],
  useRslora: false,
};

/** The four Conv1D layers of a block, by llm.c-style short names, with their module paths. */
export const LORA_MODULES = {
  qkv: 'attn.c_attn',
  attproj: 'attn.c_proj',
  fc: 'mlp.c_fc',
  fcproj: 'mlp.c_proj',
} as const;
export type LoraModule = keyof typeof LORA_MODULES;
export const LORA_MODULE_ORDER: readonly LoraModule[] = ['qkv', 'attproj', 'fc', 'fcproj'];
/** The suffixes peft can target on GPT-2. */
export const LORA_TARGETS = ['c_attn', 'c_proj', 'c_fc'] as const;

/** (in, out) features of a module. */
export function loraModuleDims(cfg: GPT2Config, m: LoraModule): { inF: number; outF: number } {
  const C = cfg.n_embd;
  return {
    qkv: { inF: C, outF: 3 * C },
    attproj: { inF: C, outF: C },
    fc: { inF: C, outF: 4 * C },
    fcproj: { inF: 4 * C, outF: C },
  }[m];
}

/** peft's scaling. */
export function loraScaling({ r, alpha, useRslora }: LoraConfig): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Rejects settings peft would refuse, naming the field. */
export function validateLoraConfig(c: LoraConfig): LoraConfig {
  if (!(Number.isInteger(c.r) && c.r > 0)) throw new Error(`lora_r must be a positive integer, got ${c.r}`);
  if (!(Number.isFinite(c.alpha) && c.alpha > 0)) throw new Error(`lora_alpha must be > 0, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new Error(`lora_dropout must be in [0, 1), got ${c.dropout}`);
  if (c.targetModules.length === 0) throw new Error('lora_target_modules is empty');
  for (const t of c.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t))
      throw new Error(`lora_target_modules: "${t}" is not a GPT-2 Conv1D (${LORA_TARGETS.join(', ')})`);
  }
  return c;
}

/** Whether a module is targeted: its path ends with one of the target names. */
export function isTargeted(c: LoraConfig, m: LoraModule): boolean {
  const path = LORA_MODULES[m];
  return c.targetModules.some((t) => path === t || path.endsWith(`.${t}`));
}

/** One adapted layer: its A (r, in) and B (out, r) in the block. */
export interface LoraSlot {
  layer: number;
  module: LoraModule;
  inF: number;
  outF: number;
  A: ParamEntry;
  B: ParamEntry;
}

/** A ParamTable (entries, byName, total, valueHead) plus where each adapted layer's A and B are. */
export interface LoraTable extends ParamTable {
  config: LoraConfig;
  scaling: number;
  slots: readonly LoraSlot[];
  /** slots by `${layer}.${module}`. */
  slotOf: ReadonlyMap<string, LoraSlot>;
}

const align = (n: number) => Math.ceil(n / PARAM_ALIGN) * PARAM_ALIGN;

/**
 * The table for a GPT-2 config and LoRA settings; `valueHead` appends TRL's v_head.summary,
 * `scoreHead` a reward model's score.weight.
 */
export function loraTable(
  cfg: GPT2Config,
  lora: LoraConfig,
  { valueHead = false, scoreHead = false } = {},
): LoraTable {
  validateLoraConfig(lora);
  const entries: ParamEntry[] = [];
  const slots: LoraSlot[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]): ParamEntry => {
    const size = shape[0] * (shape[1] ?? 1);
    const e = { name, shape, size, offset };
    entries.push(e);
    offset = align(offset + size);
    return e;
  };
  for (let l = 0; l < cfg.n_layer; l++) {
    for (const m of LORA_MODULE_ORDER) {
      if (!isTargeted(lora, m)) continue;
      const { inF, outF } = loraModuleDims(cfg, m);
      const base = `h.${l}.${LORA_MODULES[m]}`;
      const A = add(`${base}.lora_A.weight`, [lora.r, inF]);
      const B = add(`${base}.lora_B.weight`, [outF, lora.r]);
      slots.push({ layer: l, module: m, inF, outF, A, B });
    }
  }
  if (valueHead) {
    add(VALUE_HEAD_PARAMS.vw, [1, cfg.n_embd]);
    add(VALUE_HEAD_PARAMS.vb, [1]);
  }
  if (scoreHead) add(SCORE_HEAD_PARAM, [1, cfg.n_embd]);
  return {
    entries,
    byName: new Map(entries.map((e) => [e.name, e])),
    total: offset,
    valueHead,
    scoreHead,
    config: lora,
    scaling: loraScaling(lora),
    slots,
    slotOf: new Map(slots.map((s) => [`${s.layer}.${s.module}`, s])),
  };
}

/**
 * Initial adapter weights as peft's default init: A kaiming-uniform with a = sqrt(5), i.e.
 * U(-1/sqrt(in), 1/sqrt(in)), B zero, so the adapted model starts equal to the base.
 */
export function initLoraParams(table: LoraTable, rng: () => number): Float32Array {
  const block = new Float32Array(table.total);
  for (const s of table.slots) {
    const bound = 1 / Math.sqrt(s.inF);
    const a = block.subarray(s.A.offset, s.A.offset + s.A.size);
    for (let i = 0; i < a.length; i++) a[i] = (rng() * 2 - 1) * bound;
  }
  return block;
}
