/**
 * DistilBertForSequenceClassification on our WebGPU kernels, forward only, as a RewardModel: the
 * path for reward models without an ONNX export (TRL's lvwerra/distilbert-imdb ships only PyTorch
 * weights). The forward is transformers' modeling_distilbert in eval mode:
 *
 *   x = LayerNorm(word[ids] + position[t])                           (B, T, C), eps 1e-12
 *   n_layers x:
 *     qkv  = x @ [q_lin | k_lin | v_lin] + b                         (B, T, 3C)
 *     a    = softmax(q k^T / sqrt(HS) + key padding mask) v          (B, T, C), bidirectional
 *     x1   = sa_layer_norm(a @ out_lin + b + x)                      (B, T, C)
 *     x    = output_layer_norm(act(x1 @ lin1 + b) @ lin2 + b + x1)   (B, T, C), act = erf GELU
 *   logits = relu(x[:, 0] @ pre_classifier + b) @ classifier + b     (B, L), [CLS] at position 0
 *
 * Texts are tokenized like the Python tokenizer behind TRL's pipeline (truncated to fit
 * max_length with [CLS] .. [SEP] kept, see encodeBatch in onnx.ts) and padded on the right with
 * an attention mask: position ids are 0..T-1 in every row, as in HF, so right padding is what keeps
 * each text's logits independent of the batch.
 */
import type { Bindable, View } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { readWeightsFile, type TensorMap } from '../model/safetensors.ts';
import { attentionBidirForward } from '../ops/attention-bidir.ts';
import { encoderForward } from '../ops/encoder.ts';
import { geluErfForward } from '../ops/gelu-erf.ts';
import { layernormForward } from '../ops/layernorm.ts';
import { matmul, matmulForward } from '../ops/matmul.ts';
import { reluForward } from '../ops/relu.ts';
import { residualForward } from '../ops/residual.ts';
import {
  DISTILBERT_LN_EPS,
  loadDistilBertParams,
  parseDistilBertConfig,
  type DistilBertConfig,
  type DistilBertLayerParam,
  type DistilBertModelParam,
  type DistilBertParamEntry,
  type DistilBertParamTable,
} from './distilbert-config.ts';
import { encodeBatch, specialTokenFrame, type ClassifierTokenizer, type EncodedBatch } from './onnx.ts';
import type { RewardModel } from './types.ts';
import { loadWordPieceTokenizer, type TokenizerFiles } from './wordpiece-tokenizer.ts';

/** The activations of one forward, sized for BT = B*T tokens and B rows. */
interface Acts {
  BT: number;
  B: number;
  buffers: GPUBuffer[];
  ids: GPUBuffer; // (B, T) u32
  pos: GPUBuffer; // (B, T) u32, 0..T-1 per row
  mask: GPUBuffer; // (B, T) u32, 1 on real tokens
  emb: GPUBuffer; // (B, T, C) word + position
  x: GPUBuffer; // (B, T, C) a block's input and output
  qkv: GPUBuffer; // (B, T, 3C)
  atty: GPUBuffer; // (B, T, C) heads concatenated
  proj: GPUBuffer; // (B, T, C) out_lin or lin2 output
  res: GPUBuffer; // (B, T, C) residual sum
  x1: GPUBuffer; // (B, T, C) after sa_layer_norm
  fch: GPUBuffer; // (B, T, H) lin1 output
  fcact: GPUBuffer; // (B, T, H) after the activation
  mean: GPUBuffer; // (B, T)
  rstd: GPUBuffer; // (B, T)
  pre: GPUBuffer; // (B, C) pre_classifier output
  preact: GPUBuffer; // (B, C) after ReLU
  logits: GPUBuffer; // (B, L)
}

/** DistilBERT's weights on the GPU and its forward pass. */
export class DistilBertClassifier {
  private readonly block: GPUBuffer;
  private acts: Acts | null = null;

  constructor(
    private readonly gpu: Gpu,
    readonly config: DistilBertConfig,
    private readonly table: DistilBertParamTable,
    params: Float32Array,
  ) {
    if (params.length !== table.total) {
      throw new Error(`DistilBertClassifier: params has ${params.length} elements, the table ${table.total}`);
    }
    this.block = gpu.upload(params, 'distilbert params');
  }

  private view(e: DistilBertParamEntry): View {
    return { buffer: this.block, offset: e.offset * 4, size: e.size * 4 };
  }

  private model(name: DistilBertModelParam): View {
    return this.view(this.table.model[name]);
  }

  private layer(i: number): Record<DistilBertLayerParam, View> {
    const l = this.table.layers[i];
    const out = {} as Record<DistilBertLayerParam, View>;
    for (const k of Object.keys(l) as DistilBertLayerParam[]) out[k] = this.view(l[k]);
    return out;
  }

  /** Activation buffers for at least BT tokens and B rows, reused across calls. */
  private activations(BT: number, B: number): Acts {
    if (this.acts && this.acts.BT >= BT && this.acts.B >= B) return this.acts;
    this.freeActs();
    const { dim: C, hidden_dim: H } = this.config;
    const L = this.config.labels.length;
    const buffers: GPUBuffer[] = [];
    const make = (floats: number, label: string) => {
      const b = this.gpu.createBuffer(floats * 4, `distilbert ${label}`);
      buffers.push(b);
      return b;
    };
    this.acts = {
      BT,
      B,
      buffers,
      ids: make(BT, 'ids'),
      pos: make(BT, 'pos'),
      mask: make(BT, 'mask'),
      emb: make(BT * C, 'emb'),
      x: make(BT * C, 'x'),
      qkv: make(BT * 3 * C, 'qkv'),
      atty: make(BT * C, 'atty'),
      proj: make(BT * C, 'proj'),
      res: make(BT * C, 'res'),
      x1: make(BT * C, 'x1'),
      fch: make(BT * H, 'fch'),
      fcact: make(BT * H, 'fcact'),
      mean: make(BT, 'mean'),
      rstd: make(BT, 'rstd'),
      pre: make(B * C, 'pre'),
      preact: make(B * C, 'preact'),
      logits: make(B * L, 'logits'),
    };
    return this.acts;
  }

  private freeActs(): void {
    for (const b of this.acts?.buffers ?? []) this.gpu.destroy(b);
    this.acts = null;
  }

  /**
   * Logits (B, L) row-major for token ids (B, T) and an attention mask (B, T) (1 = real token, 0 =
   * padding; null = all real). Every row must hold its [CLS] at position 0.
   */
  async forward(
    ids: ArrayLike<number>,
    mask: ArrayLike<number> | null,
    B: number,
    T: number,
  ): Promise<Float32Array> {
    const { dim: C, hidden_dim: H, n_heads: NH, vocab_size: V, max_position_embeddings: maxT } = this.config;
    const L = this.config.labels.length;
    if (B === 0) return new Float32Array(0);
    if (T < 1 || T > maxT) throw new Error(`DistilBERT: sequence length ${T} is outside 1..${maxT}`);
    if (ids.length !== B * T || (mask && mask.length !== B * T)) {
      throw new Error(`DistilBERT: ids/mask must hold B*T = ${B * T} entries`);
    }
    const idsU32 = Uint32Array.from(ids, (id) => {
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new Error(`DistilBERT: token id ${id} is outside the vocabulary 0..${V - 1}`);
      return id;
    });
    const BT = B * T;
    const a = this.activations(BT, B);
    const gpu = this.gpu;
    gpu.write(a.ids, idsU32);
    gpu.write(
      a.pos,
      Uint32Array.from({ length: BT }, (_, i) => i % T),
    );
    gpu.write(
      a.mask,
      Uint32Array.from({ length: BT }, (_, i) => (mask ? (mask[i] !== 0 ? 1 : 0) : 1)),
    );

    const ln = (out: Bindable, inp: Bindable, weight: Bindable, bias: Bindable) =>
      layernormForward(
        gpu,
        { out, mean: a.mean, rstd: a.rstd },
        { inp, weight, bias },
        { B, T, C, eps: DISTILBERT_LN_EPS },
      );

    encoderForward(
      gpu,
      { out: a.emb },
      { ids: a.ids, pos: a.pos, wte: this.model('word'), wpe: this.model('position') },
      { B, T, C },
    );
    ln(a.x, a.emb, this.model('emb_lnw'), this.model('emb_lnb'));
    for (let i = 0; i < this.config.n_layers; i++) {
      const w = this.layer(i);
      matmulForward(gpu, { out: a.qkv }, { inp: a.x, weight: w.qkvw, bias: w.qkvb }, { BT, C, OC: 3 * C });
      attentionBidirForward(gpu, { out: a.atty }, { qkv: a.qkv, mask: a.mask }, { B, T, C, NH });
      matmulForward(
        gpu,
        { out: a.proj },
        { inp: a.atty, weight: w.attprojw, bias: w.attprojb },
        { BT, C, OC: C },
      );
      residualForward(gpu, { out: a.res }, { inp1: a.proj, inp2: a.x }, { N: BT * C });
      ln(a.x1, a.res, w.ln1w, w.ln1b);
      matmulForward(gpu, { out: a.fch }, { inp: a.x1, weight: w.fcw, bias: w.fcb }, { BT, C, OC: H });
      if (this.config.activation === 'gelu')
        geluErfForward(gpu, { out: a.fcact }, { inp: a.fch }, { N: BT * H });
      else reluForward(gpu, { out: a.fcact }, { inp: a.fch }, { N: BT * H });
      matmulForward(
        gpu,
        { out: a.proj },
        { inp: a.fcact, weight: w.fcprojw, bias: w.fcprojb },
        { BT, C: H, OC: C },
      );
      residualForward(gpu, { out: a.res }, { inp1: a.proj, inp2: a.x1 }, { N: BT * C });
      ln(a.x, a.res, w.ln2w, w.ln2b);
    }
    // [CLS] rows: row b of x (B, T, C) at b*T*C, read as a (B, C) matrix with row stride T*C.
    matmul(
      gpu,
      { out: a.pre },
      { a: a.x, b: this.model('prew'), bias: this.model('preb') },
      { M: B, N: C, K: C, lda: T * C },
    );
    reluForward(gpu, { out: a.preact }, { inp: a.pre }, { N: B * C });
    matmulForward(
      gpu,
      { out: a.logits },
      { inp: a.preact, weight: this.model('clsw'), bias: this.model('clsb') },
      { BT: B, C, OC: L },
    );
    return gpu.readF32(a.logits, B * L);
  }

  dispose(): void {
    this.freeActs();
    this.gpu.destroy(this.block);
  }
}

export interface DistilBertRewardOptions {
  /** Texts per forward; each forward pads to its longest text. Default 16 (TRL's sent_kwargs). */
  batchSize?: number;
  /** Longest input in tokens, special tokens included; default min(model_max_length, max positions). */
  maxLength?: number;
}

/** A DistilBERT reward model on WebGPU: RewardModel plus the encoding it feeds the model. */
export interface DistilBertRewardModel extends RewardModel {
  maxLength: number;
  /** Padded (right), truncated token ids for `texts`, exactly what logits() feeds the model. */
  encode(texts: string[]): EncodedBatch;
}

/**
 * Wraps a loaded classifier and its tokenizer as a RewardModel. dispose() frees the classifier's
 * buffers (not the Gpu, which the caller owns).
 */
export function distilbertReward(
  classifier: DistilBertClassifier,
  tokenizer: ClassifierTokenizer & { model_max_length?: unknown },
  options: DistilBertRewardOptions = {},
): DistilBertRewardModel {
  const { labels, max_position_embeddings } = classifier.config;
  const limits = [options.maxLength, tokenizer.model_max_length, max_position_embeddings];
  const maxLength = Math.min(...limits.map((v) => (typeof v === 'number' && v > 0 ? v : Infinity)));
  const frame = specialTokenFrame(tokenizer);
  // Right padding whatever the tokenizer says: positions count from 0 in every row (see above).
  const rightPadded: ClassifierTokenizer = {
    encode: (text, opts) => tokenizer.encode(text, opts),
    pad_token_id: tokenizer.pad_token_id,
    padding_side: 'right',
  };
  const encode = (texts: string[]) => encodeBatch(rightPadded, frame, texts, maxLength);
  const batchSize = Math.max(1, options.batchSize ?? 16);

  async function logits(texts: string[]): Promise<Float32Array> {
    const L = labels.length;
    const out = new Float32Array(texts.length * L); // (N, L)
    for (let i = 0; i < texts.length; i += batchSize) {
      const { B, T, inputIds, attentionMask } = encode(texts.slice(i, i + batchSize));
      const ids = Array.from(inputIds, Number);
      const mask = Array.from(attentionMask, Number);
      out.set(await classifier.forward(ids, mask, B, T), i * L);
    }
    return out;
  }

  return { labels, maxLength, encode, logits, dispose: () => classifier.dispose() };
}

/** What loadDistilBertReward reads: config.json's text, the weights file's bytes, the tokenizer files. */
export interface DistilBertFiles {
  configJson: string;
  /** model.safetensors or pytorch_model.bin (told apart by content). */
  weights: Uint8Array;
  /** For messages: which file `weights` came from. */
  weightsName?: string;
  tokenizer: TokenizerFiles;
}

/**
 * A DistilBERT reward model from a folder's files: config.json validated, weights checked against
 * it (every missing, unexpected or misshapen tensor named), uploaded to `gpu`, and the tokenizer
 * built from tokenizer.json or vocab.txt.
 */
export async function loadDistilBertReward(
  gpu: Gpu,
  files: DistilBertFiles,
  options: DistilBertRewardOptions = {},
): Promise<DistilBertRewardModel> {
  const config = parseDistilBertConfig(files.configJson);
  const name = files.weightsName ?? 'the weights file';
  let tensors: TensorMap;
  try {
    tensors = readWeightsFile(files.weights);
  } catch (e) {
    throw new Error(`cannot read ${name}: ${(e as Error).message}`, { cause: e });
  }
  const { table, params } = loadDistilBertParams(config, tensors);
  const tokenizer = await loadWordPieceTokenizer(files.tokenizer);
  return distilbertReward(new DistilBertClassifier(gpu, config, table, params), tokenizer, options);
}
