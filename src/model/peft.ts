/**
 * LoRA adapters as peft's folders, in and out (what `PeftModel.from_pretrained(base, DIR)` loads):
 *
 *   adapter_config.json          LoraConfig: peft_type LORA, r, lora_alpha, lora_dropout, target_modules,
 *                                fan_in_fan_out true (GPT-2's Conv1D), use_rslora, bias "none",
 *                                task_type CAUSAL_LM, base_model_name_or_path
 *   adapter_model.safetensors    F32 lora_A / lora_B weights, peft's names:
 *                                base_model.model.transformer.h.0.attn.c_attn.lora_A.weight (r, in)
 *   model.safetensors            (PPO only) TRL's value head v_head.summary.weight (1, C) and .bias (1):
 *                                TRL's AutoModelForCausalLMWithValueHead keeps the value head outside
 *                                the adapter, in the folder's model weights file, which it reads back
 *                                with from_pretrained; peft ignores the file.
 *
 * Merged export: W' (in, out) = W + scaling * (B A)^T for each adapted Conv1D, i.e. peft's
 * merge_and_unload with fan_in_fan_out.
 */
import type { GPT2Config } from './config.ts';
import { loraTable, validateLoraConfig, type LoraConfig, type LoraTable } from './lora-table.ts';
import {
  gpt2ParamTable,
  paramEntry,
  paramSlice,
  SCORE_HEAD_PARAM,
  VALUE_HEAD_PARAMS,
} from './param-table.ts';
import {
  readWeightsFile,
  tensorToF32,
  writeSafetensors,
  type TensorMap,
  type WriteTensor,
} from './safetensors.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const VALUE_HEAD_FILE = 'model.safetensors';
/** peft's prefix of every saved tensor name of a causal LM. */
export const PEFT_PREFIX = 'base_model.model.transformer.';
/** A SEQ_CLS adapter's score head (modules_to_save): peft 0.21 saves it without `modules_to_save.default`. */
export const SCORE_HEAD_PEFT_NAME = 'base_model.model.score.weight';

/** A loaded adapter: its settings and its block laid out by loraTable(config, lora, {valueHead}). */
export interface LoadedAdapter {
  lora: LoraConfig;
  table: LoraTable;
  params: Float32Array;
  /** Whether v_head.summary.* came from the folder (false: left at zero). */
  valueHeadLoaded: boolean;
  baseModel: string | null;
}

/** adapter_config.json as peft 0.21 writes it for a GPT-2 LoRA (fields peft reads; the rest default). */
export function adapterConfigJson(
  lora: LoraConfig,
  { baseModel = null, scoreHead = false }: { baseModel?: string | null; scoreHead?: boolean } = {},
): string {
  const json = {
    peft_type: 'LORA',
    // a reward model is peft's SEQ_CLS task, which trains and saves its head in full
    task_type: scoreHead ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [...lora.targetModules],
    fan_in_fan_out: true,
    use_rslora: lora.useRslora,
    bias: 'none',
    modules_to_save: scoreHead ? ['classifier', 'score'] : null,
    init_lora_weights: true,
    inference_mode: true,
    use_dora: false,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
  return JSON.stringify(json, null, 2) + '\n';
}

/** LoraConfig from adapter_config.json; refuses what our LoRA does not compute, naming the field. */
export function parseAdapterConfig(
  text: string,
  file = ADAPTER_CONFIG_FILE,
): { lora: LoraConfig; baseModel: string | null } {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const bad = (field: string, why: string) => new Error(`${file}: ${field} ${why}`);
  if (j.peft_type !== 'LORA')
    throw bad('peft_type', `is ${JSON.stringify(j.peft_type)}, only LORA is supported`);
  const empty = (v: unknown) =>
    v === undefined || v === null || (typeof v === 'object' && Object.keys(v).length === 0);
  for (const f of [
    'rank_pattern',
    'alpha_pattern',
    'layers_to_transform',
    'modules_to_save',
    'target_parameters',
  ]) {
    if (!empty(j[f])) throw bad(f, `is set (${JSON.stringify(j[f])}); per-layer settings are not supported`);
  }
  for (const f of ['use_dora', 'lora_bias']) if (j[f] === true) throw bad(f, 'is true; not supported');
  if (j.bias !== undefined && j.bias !== 'none')
    throw bad('bias', `is ${JSON.stringify(j.bias)}; only "none"`);
  let targets = j.target_modules;
  if (targets === null || targets === undefined) targets = ['c_attn']; // peft's GPT-2 default
  if (typeof targets === 'string') throw bad('target_modules', 'is a regular expression; give a list');
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))
    throw bad('target_modules', 'is not a list of names');
  const num = (f: string, def?: number): number => {
    const v = j[f] ?? def;
    if (typeof v !== 'number') throw bad(f, `is ${JSON.stringify(v)}, not a number`);
    return v;
  };
  let lora: LoraConfig;
  try {
    lora = validateLoraConfig({
      r: num('r'),
      alpha: num('lora_alpha', 8),
      dropout: num('lora_dropout', 0),
      targetModules: targets as string[],
      useRslora: j.use_rslora === true,
    });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const base = typeof j.base_model_name_or_path === 'string' ? j.base_model_name_or_path : null;
  return { lora, baseModel: base };
}

/** Our entry name for a peft tensor name, or null when it is not a LoRA weight of this prefix. */
function entryName(peftName: string): string | null {
  if (!peftName.startsWith(PEFT_PREFIX)) return null;
  // peft drops the adapter name ("default") when saving; accept it too.
  return peftName.slice(PEFT_PREFIX.length).replace(/\.lora_([AB])\.default\.weight$/, '.lora_$1.weight');
}

/**
 * An adapter folder's files (adapter_config.json, adapter_model.safetensors or adapter_model.bin, and
 * optionally a value head in model.safetensors / pytorch_model.bin) for a base with `config`. Every
 * tensor is checked; missing, unexpected and misshapen ones are named in one error.
 */
export function loadPeftAdapter(
  files: ReadonlyMap<string, Uint8Array>,
  config: GPT2Config,
  { valueHead = false } = {},
): LoadedAdapter {
  const cfgBytes = files.get(ADAPTER_CONFIG_FILE);
  if (!cfgBytes) throw new Error(`adapter folder: ${ADAPTER_CONFIG_FILE} is missing`);
  const { lora, baseModel } = parseAdapterConfig(new TextDecoder().decode(cfgBytes));
  const weightsName = [ADAPTER_WEIGHTS_FILE, 'adapter_model.bin'].find((f) => files.has(f));
  if (!weightsName)
    throw new Error(`adapter folder: neither ${ADAPTER_WEIGHTS_FILE} nor adapter_model.bin is there`);
  const tensors = readWeightsFile(files.get(weightsName)!);
  const table = loraTable(config, lora, { valueHead });
  const params = new Float32Array(table.total);
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const [name, t] of tensors) {
    const e = table.byName.get(entryName(name) ?? '');
    if (!e || !e.name.includes('.lora_')) {
      problems.push(`unexpected ${name}`);
      continue;
    }
    if (t.shape.length !== 2 || t.shape[0] !== e.shape[0] || t.shape[1] !== e.shape[1]) {
      problems.push(
        `${name} is [${t.shape.join(', ')}], r ${lora.r} and the base want [${e.shape.join(', ')}]`,
      );
      continue;
    }
    tensorToF32(t, paramSlice(params, e));
    seen.add(e.name);
  }
  for (const s of table.slots)
    for (const e of [s.A, s.B]) if (!seen.has(e.name)) problems.push(`missing ${PEFT_PREFIX}${e.name}`);
  if (problems.length) {
    throw new Error(
      `${weightsName} does not match ${ADAPTER_CONFIG_FILE} and the base (n_layer ${config.n_layer}, ` +
        `n_embd ${config.n_embd}):\n  ${problems.slice(0, 12).join('\n  ')}${problems.length > 12 ? '\n  ...' : ''}`,
    );
  }
  const valueHeadLoaded = valueHead && loadValueHead(files, table, params);
  return { lora, table, params, valueHeadLoaded, baseModel };
}

/** v_head.summary.* from the folder's model weights file, when there; true when loaded. */
function loadValueHead(
  files: ReadonlyMap<string, Uint8Array>,
  table: LoraTable,
  params: Float32Array,
): boolean {
  const name = [VALUE_HEAD_FILE, 'pytorch_model.bin'].find((f) => files.has(f));
  if (!name) return false;
  const tensors: TensorMap = readWeightsFile(files.get(name)!);
  const names = Object.values(VALUE_HEAD_PARAMS);
  if (!names.some((n) => tensors.has(n))) return false;
  for (const n of names) {
    const t = tensors.get(n);
    const e = paramEntry(table, n);
    if (!t) throw new Error(`${name}: has a value head without ${n}`);
    if (t.shape.reduce((a, b) => a * b, 1) !== e.size)
      throw new Error(`${name}: ${n} is [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
    tensorToF32(t, paramSlice(params, e));
  }
  return true;
}

/** The adapter folder's files for a block laid out by `table` (value head file when the table has one). */
export function savePeftAdapter(
  table: LoraTable,
  params: Float32Array,
  { baseModel = null }: { baseModel?: string | null } = {},
): Map<string, Uint8Array> {
  if (params.length !== table.total)
    throw new Error(`savePeftAdapter: params has ${params.length} elements, the table ${table.total}`);
  const lora: [string, WriteTensor][] = [];
  const head: [string, WriteTensor][] = [];
  for (const e of table.entries) {
    const t: WriteTensor = { dtype: 'F32', shape: e.shape, data: paramSlice(params, e) };
    if (e.name.startsWith('v_head.')) head.push([e.name, t]);
    else if (e.name === SCORE_HEAD_PARAM) lora.push([SCORE_HEAD_PEFT_NAME, t]);
    else lora.push([PEFT_PREFIX + e.name, t]);
  }
  const config = adapterConfigJson(table.config, { baseModel, scoreHead: table.scoreHead });
  const files = new Map<string, Uint8Array>([
    [ADAPTER_CONFIG_FILE, new TextEncoder().encode(config)],
    [ADAPTER_WEIGHTS_FILE, writeSafetensors(lora)],
  ]);
  if (head.length) files.set(VALUE_HEAD_FILE, writeSafetensors(head));
  return files;
}

/**
 * The base block (laid out by gpt2ParamTable(config, {valueHead, scoreHead})) with the adapters merged in
 * (and a SEQ_CLS adapter's score.weight in place of the base's):
 * W (in, out) += scaling * (B A)^T = scaling * A^T B^T, i.e. W[i][o] += scaling * sum_k A[k][i] B[o][k].
 * Returns a new block; `base` is not changed.
 */
export function mergeLora(
  config: GPT2Config,
  base: Float32Array,
  table: LoraTable,
  lora: Float32Array,
  { valueHead = false, scoreHead = false } = {},
): Float32Array {
  const baseTable = gpt2ParamTable(config, { valueHead, scoreHead });
  if (base.length !== baseTable.total)
    throw new Error(`mergeLora: base has ${base.length} elements, its table ${baseTable.total}`);
  const out = base.slice();
  const { r } = table.config;
  const s = table.scaling;
  for (const slot of table.slots) {
    const w = paramSlice(out, paramEntry(baseTable, `h.${slot.layer}.${moduleWeight(slot.module)}`));
    const A = paramSlice(lora, slot.A);
    const B = paramSlice(lora, slot.B);
    const { inF, outF } = slot;
    for (let i = 0; i < inF; i++) {
      for (let o = 0; o < outF; o++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += A[k * inF + i] * B[o * r + k];
        w[i * outF + o] += s * acc;
      }
    }
  }
  // a SEQ_CLS adapter's score head replaces the base's (peft's modules_to_save)
  if (scoreHead && table.scoreHead)
    paramSlice(out, paramEntry(baseTable, SCORE_HEAD_PARAM)).set(
      paramSlice(lora, paramEntry(table, SCORE_HEAD_PARAM)),
    );
  return out;
}

/**
 * A peft adapter folder merged into `base` (laid out by gpt2ParamTable(config)), refusing a folder
 * whose adapter_config.json names another base than `baseName` (a Hub repo or URL; null: unnamed):
 * merged into the wrong base, an adapter gives a model nobody trained. `what` names it in errors.
 */
export function mergeAdapterFolder(
  files: ReadonlyMap<string, Uint8Array>,
  config: GPT2Config,
  base: Float32Array,
  baseName: string | null,
  what = 'the adapter',
): Float32Array {
  const adapter = loadPeftAdapter(files, config);
  if (adapter.baseModel !== baseName)
    throw new Error(
      `${what} is a LoRA adapter on ${adapter.baseModel ?? 'an unnamed base'}, not on ` +
        `${baseName ?? 'an unnamed base'}: load that base to merge it into`,
    );
  return mergeLora(config, base, adapter.table, adapter.params);
}

function moduleWeight(m: LoraTable['slots'][number]['module']): string {
  return {
    qkv: 'attn.c_attn.weight',
    attproj: 'attn.c_proj.weight',
    fc: 'mlp.c_fc.weight',
    fcproj: 'mlp.c_proj.weight',
  }[m];
}
