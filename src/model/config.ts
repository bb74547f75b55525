/**
 * GPT-2 hyperparameters: the fields of a Hugging Face `config.json` for `model_type: "gpt2"` that
 * decide tensor shapes and numerics, named presets for the released checkpoints, a hard validating
 * parser and the writer of a config.json that transformers loads.
 *
 * Fields the engine cannot honour (cross-attention, untied LM head, an MLP width other than 4C,
 * unscaled or layer-scaled attention, a GELU other than the tanh approximation) are refused by
 * name instead of being silently ignored.
 */

export type GPT2Activation = 'gelu_new' | 'gelu_pytorch_tanh';

export interface GPT2Config {
  /** V: rows of wte, and columns of the tied LM head (logits). */
  vocab_size: number;
  /** maxT: rows of wpe, the longest sequence the model can see. */
  n_positions: number;
  /** C: the residual stream width. */
  n_embd: number;
  /** L: transformer blocks. */
  n_layer: number;
  /** NH: attention heads; head size HS = C / NH. */
  n_head: number;
  /** eps inside every LayerNorm's sqrt(var + eps). */
  layer_norm_epsilon: number;
  /** Both names are GELU's tanh approximation, 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))). */
  activation_function: GPT2Activation;
  /** Token ids generation starts/stops on; 50256 (<|endoftext|>) for every released GPT-2. */
  bos_token_id: number | null;
  eos_token_id: number | null;
  /** Dropout probabilities, kept for the round trip to config.json (training may ignore them). */
  embd_pdrop: number;
  attn_pdrop: number;
  resid_pdrop: number;
  /** Std of the normal init of weights (transformers' _init_weights). */
  initializer_range: number;
}

/** Hugging Face's GPT2Config defaults for the fields a config.json may leave out. */
const HF_DEFAULTS = {
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
  bos_token_id: 50256,
  eos_token_id: 50256,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  resid_pdrop: 0.1,
  initializer_range: 0.02,
} as const satisfies Partial<GPT2Config>;

function preset(shape: Pick<GPT2Config, 'n_embd' | 'n_layer' | 'n_head'>): Readonly<GPT2Config> {
  return Object.freeze({ vocab_size: 50257, n_positions: 1024, ...HF_DEFAULTS, ...shape });
}

/** openai-community/gpt2, 124M parameters. */
export const GPT2_SMALL = preset({ n_embd: 768, n_layer: 12, n_head: 12 });
/** distilbert/distilgpt2, 82M parameters. */
export const DISTILGPT2 = preset({ n_embd: 768, n_layer: 6, n_head: 12 });
/** openai-community/gpt2-medium, 355M parameters. */
export const GPT2_MEDIUM = preset({ n_embd: 1024, n_layer: 24, n_head: 16 });
/** openai-community/gpt2-large, 774M parameters. */
export const GPT2_LARGE = preset({ n_embd: 1280, n_layer: 36, n_head: 20 });

export class GPT2ConfigError extends Error {
  constructor(message: string) {
    super(`config.json: ${message}`);
    this.name = 'GPT2ConfigError';
  }
}

type Json = Record<string, unknown>;

function positiveInt(j: Json, key: string): number {
  const v = j[key];
  if (v === undefined || v === null) throw new GPT2ConfigError(`"${key}" is missing`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new GPT2ConfigError(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function finiteNumber(j: Json, key: keyof typeof HF_DEFAULTS, { positive = false } = {}): number {
  const v = j[key] ?? HF_DEFAULTS[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    const want = positive ? 'a positive number' : 'a non-negative number';
    throw new GPT2ConfigError(`"${key}" must be ${want}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenId(j: Json, key: 'bos_token_id' | 'eos_token_id'): number | null {
  const v = j[key] === undefined ? HF_DEFAULTS[key] : j[key];
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new GPT2ConfigError(`"${key}" must be a non-negative integer or null, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** A config field that must keep the one value the engine implements, when it is present at all. */
function mustBe(j: Json, key: string, allowed: readonly unknown[], why: string): void {
  if (j[key] === undefined || allowed.includes(j[key])) return;
  throw new GPT2ConfigError(`"${key}": ${JSON.stringify(j[key])} is not supported (${why})`);
}

/**
 * Parses and validates a GPT-2 config.json (its text or the parsed object). Shape fields are
 * required; the others take transformers' GPT2Config defaults when absent. Throws GPT2ConfigError.
 */
export function parseGPT2Config(json: unknown): GPT2Config {
  let j: unknown = json;
  if (typeof json === 'string') {
    try {
      j = JSON.parse(json);
    } catch (e) {
      throw new GPT2ConfigError(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new GPT2ConfigError('not a JSON object');
  const o = j as Json;
  if (o.model_type !== 'gpt2') {
    throw new GPT2ConfigError(`model_type must be "gpt2", got ${JSON.stringify(o.model_type)}`);
  }
  const cfg: GPT2Config = {
    vocab_size: positiveInt(o, 'vocab_size'),
    n_positions: positiveInt(o, 'n_positions'),
    n_embd: positiveInt(o, 'n_embd'),
    n_layer: positiveInt(o, 'n_layer'),
    n_head: positiveInt(o, 'n_head'),
    layer_norm_epsilon: finiteNumber(o, 'layer_norm_epsilon', { positive: true }),
    activation_function: HF_DEFAULTS.activation_function,
    bos_token_id: tokenId(o, 'bos_token_id'),
    eos_token_id: tokenId(o, 'eos_token_id'),
    embd_pdrop: finiteNumber(o, 'embd_pdrop'),
    attn_pdrop: finiteNumber(o, 'attn_pdrop'),
    resid_pdrop: finiteNumber(o, 'resid_pdrop'),
    initializer_range: finiteNumber(o, 'initializer_range'),
  };
  if (cfg.n_embd % cfg.n_head !== 0) {
    throw new GPT2ConfigError(`n_embd ${cfg.n_embd} is not divisible by n_head ${cfg.n_head}`);
  }
  const act = o.activation_function ?? HF_DEFAULTS.activation_function;
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new GPT2ConfigError(
      `activation_function ${JSON.stringify(act)} is not supported (only the tanh GELU: "gelu_new", "gelu_pytorch_tanh")`,
    );
  }
  cfg.activation_function = act;
  if (o.n_ctx !== undefined && o.n_ctx !== cfg.n_positions) {
    throw new GPT2ConfigError(`n_ctx ${JSON.stringify(o.n_ctx)} differs from n_positions ${cfg.n_positions}`);
  }
  mustBe(o, 'n_inner', [null, 4 * cfg.n_embd], `the MLP width is 4 * n_embd = ${4 * cfg.n_embd}`);
  mustBe(o, 'tie_word_embeddings', [true], 'the LM head is tied to wte');
  mustBe(o, 'add_cross_attention', [false], 'no cross-attention');
  mustBe(o, 'scale_attn_weights', [true], 'attention scores are scaled by 1/sqrt(HS)');
  mustBe(o, 'scale_attn_by_inverse_layer_idx', [false], 'no per-layer attention scaling');
  return cfg;
}

/** A validated config from the shape fields plus transformers' defaults: `makeGPT2Config({vocab_size: 64, ...})`. */
export function makeGPT2Config(
  fields: Pick<GPT2Config, 'vocab_size' | 'n_positions' | 'n_embd' | 'n_layer' | 'n_head'> &
    Partial<GPT2Config>,
): GPT2Config {
  return parseGPT2Config({ model_type: 'gpt2', ...fields });
}

/** A config.json as transformers writes for GPT2LMHeadModel (keys sorted, 2-space indent). */
export function toHFConfigJson(cfg: GPT2Config): string {
  const json = {
    activation_function: cfg.activation_function,
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: cfg.attn_pdrop,
    bos_token_id: cfg.bos_token_id,
    embd_pdrop: cfg.embd_pdrop,
    eos_token_id: cfg.eos_token_id,
    initializer_range: cfg.initializer_range,
    layer_norm_epsilon: cfg.layer_norm_epsilon,
    model_type: 'gpt2',
    n_ctx: cfg.n_positions,
    n_embd: cfg.n_embd,
    n_head: cfg.n_head,
    n_inner: null,
    n_layer: cfg.n_layer,
    n_positions: cfg.n_positions,
    reorder_and_upcast_attn: false,
    resid_pdrop: cfg.resid_pdrop,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    // The GPT2DoubleHeadsModel summary fields every released GPT-2 config carries.
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: cfg.vocab_size,
  };
  return JSON.stringify(json, null, 2) + '\n';
}
