/**
 * GPT-2 on our WebGPU kernels: forward that keeps what backward needs, backward into one gradient
 * block laid out by the parameter table, and the tied LM head computed in chunks of rows so that no
 * logits buffer is ever larger than the chunk (never one (B, T, 50257) buffer for a big batch).
 *
 * The forward is a flat list of op calls, as llm.c's gpt2_forward; backward is the same list reversed.
 * The final hidden state (after ln_f) is exposed as `lnf` (B, T, C), for a value head; heads add
 * their gradient into `dlnf` before `backward()`.
 *
 * With LoRA adapters attached (`attachLora`), the four Conv1D products of each block get the adapter's
 * low-rank add (lora.ts), the base weights are frozen (no gradient block is ever allocated for them)
 * and gradients go to the adapter's block; `adaptersEnabled = false` runs the plain base (TRL's
 * reference model without a second copy of the weights).
 */
import type { View } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { attentionBackward, attentionForward, type MaskedRows } from '../ops/attention.ts';
import {
  encoderBackward,
  encoderBuckets,
  encoderForward,
  destroyEncoderBuckets,
  type EncoderBuckets,
} from '../ops/encoder.ts';
import { geluBackward } from '../ops/gelu.ts';
import { layernormBackward, layernormBackwardScratchBytes, layernormForward } from '../ops/layernorm.ts';
import { logprobsBackward, logprobsForward } from '../ops/logprobs.ts';
import { matmul, matmulBackward } from '../ops/matmul.ts';
import { blockForward } from './block.ts';
import type { GPT2Config } from './config.ts';
import { EVAL_PASS, type Lora, type LoraPass } from './lora.ts';
import type { LoraModule } from './lora-table.ts';
import { gpt2ParamTable, layerViews, modelParams, paramView, type ParamTable } from './param-table.ts';

/** One batch of token rows. Rows may be left-padded: then `mask` and `positions` say so. */
export interface GPT2Batch {
  B: number;
  T: number;
  /** (B, T) token ids. */
  ids: Int32Array | Uint32Array;
  /** (B, T) position ids; default 0..T-1 on every row. */
  positions?: Int32Array | Uint32Array;
  /** (B, T) 1 = real token, 0 = padding (a key no query may attend to). */
  mask?: Int32Array | Uint32Array;
}

export interface GPT2Options {
  /** Most bytes one logits chunk (R rows x V) may take; rows are processed in such chunks. */
  logitsChunkBytes?: number;
  /** With value-head parameters (TRL's v_head.summary) appended to the table. */
  valueHead?: boolean;
  /** With the sequence-classification score.weight appended to the table (src/rl/reward-model.ts). */
  scoreHead?: boolean;
  /**
   * What a query with no visible key (a padded position under left padding) attends to: 'zero' as
   * transformers' default (sdpa) attention, 'uniform' as its eager attention. Only padded positions'
   * outputs differ; losses ignore them.
   */
  maskedRows?: MaskedRows;
  /**
   * Forward only (a frozen reference model): one set of per-layer activation buffers serves every
   * layer in turn, and the backward's buffers are 16-byte placeholders; backward() throws.
   */
  inference?: boolean;
}

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Seed of the LoRA dropout masks of this pass; null (default) = no dropout (eval, reference). */
  dropoutSeed?: number | null;
}

/** Per-layer activations kept for backward, each its own buffer (WebGPU forbids binding one buffer
 * as both read-only and writable in a dispatch, so tensors read and written together must not share). */
interface LayerActs {
  ln1: GPUBuffer; // (B, T, C)
  ln1Mean: GPUBuffer; // (B, T)
  ln1Rstd: GPUBuffer; // (B, T)
  qkv: GPUBuffer; // (B, T, 3C)
  att: GPUBuffer; // (B, NH, T, T) softmax probabilities
  atty: GPUBuffer; // (B, T, C) attention output, heads concatenated
  residual2: GPUBuffer; // (B, T, C)
  ln2: GPUBuffer; // (B, T, C)
  ln2Mean: GPUBuffer; // (B, T)
  ln2Rstd: GPUBuffer; // (B, T)
  fch: GPUBuffer; // (B, T, 4C)
  fchGelu: GPUBuffer; // (B, T, 4C)
  residual3: GPUBuffer; // (B, T, C)
}

interface Acts {
  B: number;
  T: number;
  ids: GPUBuffer; // (B, T) u32
  positions: GPUBuffer; // (B, T) u32
  mask: GPUBuffer | null; // (B, T) u32
  encoded: GPUBuffer; // (B, T, C)
  layers: LayerActs[];
  lnf: GPUBuffer; // (B, T, C)
  lnfMean: GPUBuffer; // (B, T)
  lnfRstd: GPUBuffer; // (B, T)
  proj: GPUBuffer; // (B, T, C) scratch: c_proj outputs before the residual add
  // gradients of activations (scratch, reused by every layer)
  dlnf: GPUBuffer; // (B, T, C) heads accumulate here
  dresidual: GPUBuffer; // (B, T, C)
  dln: GPUBuffer; // (B, T, C)
  datty: GPUBuffer; // (B, T, C)
  dqkv: GPUBuffer; // (B, T, 3C)
  dpreatt: GPUBuffer; // (B, NH, T, T)
  dfchGelu: GPUBuffer; // (B, T, 4C)
  dfch: GPUBuffer; // (B, T, 4C)
  lnScratch: GPUBuffer;
  /** The adapters the forward applied (null: none) and its pass (backward recomputes the dropout masks). */
  lora: Lora | null;
  pass: LoraPass;
  buckets: EncoderBuckets | null;
  all: GPUBuffer[];
}

/** Per-row results of the LM head over the batch's (B*T) rows. */
export interface HeadBuffers {
  logprob: GPUBuffer; // (B*T) log-prob of the target token (0 where the target is ignored)
  lse: GPUBuffer; // (B*T) logsumexp of the row's (temperature-scaled) logits
  entropy: GPUBuffer; // (B*T) entropy of the row's distribution
  targets: GPUBuffer; // (B*T) i32 target ids, < 0 = ignored
}

const DEFAULT_LOGITS_CHUNK_BYTES = 64 * 2 ** 20;

export class GPT2 {
  readonly table: ParamTable;
  readonly params: GPUBuffer;
  grads: GPUBuffer | null = null;
  /** LoRA adapters; when attached the base is frozen. */
  adapters: Lora | null = null;
  /** Whether forward passes apply the attached adapters (false: the base model). */
  adaptersEnabled = true;
  /** Padded row stride of logits chunks: vec4-aligned. */
  readonly ldV: number;
  private acts: Acts | null = null;
  private logitsChunk: GPUBuffer | null = null;
  private head: HeadBuffers | null = null;
  private headTemperature = 1;
  /** The logits chunk still holds every row's logits from the last headForward (one chunk only). */
  private logitsKept = false;
  private readonly chunkBytes: number;
  private readonly maskedRows: MaskedRows;
  private readonly inference: boolean;

  constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    params: Float32Array,
    {
      logitsChunkBytes = DEFAULT_LOGITS_CHUNK_BYTES,
      valueHead = false,
      scoreHead = false,
      maskedRows = 'zero',
      inference = false,
    }: GPT2Options = {},
  ) {
    this.table = gpt2ParamTable(config, { valueHead, scoreHead });
    if (params.length !== this.table.total) {
      throw new Error(
        `GPT2: params has ${params.length} elements, the table for this config ${this.table.total}`,
      );
    }
    this.params = gpu.upload(params, 'gpt2.params');
    this.ldV = Math.ceil(config.vocab_size / 4) * 4;
    this.chunkBytes = logitsChunkBytes;
    this.maskedRows = maskedRows;
    this.inference = inference;
  }

  /** Adds LoRA adapters (built on this config); from now on the base weights are frozen. */
  attachLora(lora: Lora): void {
    if (lora.config !== this.config && JSON.stringify(lora.config) !== JSON.stringify(this.config))
      throw new Error('attachLora: the adapters were built for another GPT-2 config');
    if (this.grads) {
      this.gpu.destroy(this.grads);
      this.grads = null;
    }
    this.adapters = lora;
  }

  /** The adapters forward passes apply now: attached and enabled, else null. */
  get lora(): Lora | null {
    return this.adaptersEnabled ? this.adapters : null;
  }

  /** Whether the base weights are frozen (adapters attached). */
  get frozen(): boolean {
    return this.adapters !== null;
  }

  /** The trained block: the adapters' with LoRA, else the parameters'. */
  get trainTable(): ParamTable {
    return this.adapters ? this.adapters.table : this.table;
  }

  get trainParams(): GPUBuffer {
    return this.adapters ? this.adapters.params : this.params;
  }

  /** The gradient block of the trained block, allocated (zeroed) on first use. */
  trainGrads(): GPUBuffer {
    return this.adapters ? this.adapters.allocateGrads() : this.allocateGrads();
  }

  /** Allocates the base gradient block (same layout as params), zeroed; refused when frozen. */
  allocateGrads(): GPUBuffer {
    if (this.adapters) throw new Error('GPT2: the base weights are frozen (LoRA): they have no gradients');
    this.grads ??= this.gpu.createBuffer(this.table.total * 4, 'gpt2.grads');
    return this.grads;
  }

  /** Zeroes the trained block's gradients. */
  zeroGrads(): void {
    this.gpu.clear(this.trainGrads());
  }

  /** The final hidden state after ln_f, (B, T, C), valid after forward(). */
  get lnf(): GPUBuffer {
    return this.requireActs().lnf;
  }

  /** Its gradient, (B, T, C): heads accumulate into it between forward() and backward(). */
  get dlnf(): GPUBuffer {
    return this.requireActs().dlnf;
  }

  get batchShape(): { B: number; T: number } {
    const a = this.requireActs();
    return { B: a.B, T: a.T };
  }

  /** Runs the body (embeddings, blocks, ln_f) on a batch and keeps the activations. */
  forward(batch: GPT2Batch, { dropoutSeed = null }: ForwardOptions = {}): void {
    const { B, T } = batch;
    const { n_embd: C, n_head: NH, n_positions } = this.config;
    checkBatch(batch, this.config.vocab_size, n_positions);
    const a = this.prepare(B, T);
    const positions = batch.positions ?? defaultPositions(B, T);
    this.gpu.write(a.ids, toU32(batch.ids));
    this.gpu.write(a.positions, toU32(positions));
    if (batch.mask) {
      a.mask ??= this.gpu.createBuffer(B * T * 4, 'gpt2.mask');
      this.gpu.write(a.mask, toU32(batch.mask));
    } else if (a.mask) {
      this.gpu.destroy(a.mask);
      a.mask = null;
    }
    if (a.buckets) destroyEncoderBuckets(this.gpu, a.buckets);
    a.buckets = null;
    this.logitsKept = false;
    this.lastIds = Uint32Array.from(toU32(batch.ids));
    this.lastPositions = Uint32Array.from(toU32(positions));
    const lora = this.lora;
    const pass: LoraPass = lora ? { dropoutSeed } : EVAL_PASS;
    a.lora = lora;
    a.pass = pass;

    const gpu = this.gpu;
    const p = this.params;
    const mp = modelParams(this.table);
    const BTC = { B, T, C };
    encoderForward(
      gpu,
      { out: a.encoded },
      { ids: a.ids, pos: a.positions, wte: paramView(p, mp.wte), wpe: paramView(p, mp.wpe) },
      BTC,
    );
    let residual = a.encoded;
    for (let l = 0; l < this.config.n_layer; l++) {
      const L = a.layers[l];
      const b = { inp: residual, ...L, proj: a.proj, out: L.residual3 };
      const attend = (qkv: GPUBuffer, atty: GPUBuffer) =>
        attentionForward(
          gpu,
          { out: atty, att: L.att },
          { qkv, mask: a.mask },
          { B, T, C, NH },
          this.maskedRows,
        );
      blockForward(gpu, l, layerViews(p, this.table, l), b, BTC, attend, lora, pass);
      residual = L.residual3;
    }
    layernormForward(
      gpu,
      { out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd },
      { inp: residual, weight: paramView(p, mp.lnfw), bias: paramView(p, mp.lnfb) },
      BTC,
    );
    gpu.clear(a.dlnf);
  }

  /**
   * The LM head over every row: per-row log-prob of `targets` (B*T; a negative id ignores the row),
   * logsumexp and entropy of softmax(logits / temperature). `onLogits` sees each chunk of logits
   * (rows r0..r0+R, row stride ldV) before it is overwritten, e.g. to read them back.
   */
  headForward(
    targets: Int32Array,
    {
      temperature = 1,
      onLogits,
    }: { temperature?: number; onLogits?: (chunk: View, r0: number, R: number) => void } = {},
  ): HeadBuffers {
    const a = this.requireActs();
    const N = a.B * a.T;
    if (targets.length !== N) throw new Error(`headForward: ${targets.length} targets for ${N} rows`);
    const h = this.headBuffers(N);
    this.gpu.write(h.targets, targets);
    this.headTemperature = temperature;
    this.logitsKept = this.chunkRows(N) >= N;
    for (const { r0, R, logits } of this.chunks(N)) {
      this.chunkLogits(logits, r0, R);
      onLogits?.(logits, r0, R);
      logprobsForward(
        this.gpu,
        { logprob: h.logprob, lse: h.lse, entropy: h.entropy },
        { logits, targets: h.targets },
        { R, V: this.config.vocab_size, ldV: this.ldV, row0: r0, temperature },
      );
    }
    return h;
  }

  /**
   * Backward of a per-row loss through the head: d loss / d logprob[r] (a buffer of B*T, or one
   * number for every non-ignored row) and optionally d loss / d entropy[r]; accumulates into dlnf
   * and into the wte gradient. Logits are recomputed chunk by chunk.
   */
  headBackward({
    dlogprob,
    dentropy = null,
  }: {
    dlogprob: GPUBuffer | number | null;
    dentropy?: GPUBuffer | null;
  }): void {
    const a = this.requireActs();
    const h = this.head;
    if (!h) throw new Error('headBackward before headForward');
    if (this.inference) throw new Error('GPT2: headBackward on a model made with inference: true');
    const { n_embd: C, vocab_size: V } = this.config;
    const wte = paramView(this.params, modelParams(this.table).wte);
    // Frozen base (LoRA): wte gets no gradient.
    const dwte = this.frozen ? null : paramView(this.allocateGrads(), modelParams(this.table).wte);
    const N = a.B * a.T;
    for (const { r0, R, logits } of this.chunks(N)) {
      // With a single chunk the forward's logits are still there; else they are recomputed.
      if (!this.logitsKept) this.chunkLogits(logits, r0, R);
      logprobsBackward(
        this.gpu,
        { dlogits: logits },
        { logits, targets: h.targets, lse: h.lse, entropy: h.entropy, dlogprob, dentropy },
        { R, V, ldV: this.ldV, row0: r0, temperature: this.headTemperature },
      );
      // dlnf[r0:r0+R] += dlogits (R, V) @ wte (V, C);  dwte += dlogits^T (V, R) @ lnf[r0:r0+R] (R, C)
      const rows = (buf: GPUBuffer): View => ({ buffer: buf, offset: r0 * C * 4, size: R * C * 4 });
      matmul(
        this.gpu,
        { out: rows(a.dlnf) },
        { a: logits, b: wte },
        { M: R, N: C, K: V, lda: this.ldV, beta: 1 },
      );
      if (dwte) {
        matmul(
          this.gpu,
          { out: dwte },
          { a: logits, b: rows(a.lnf) },
          { M: V, N: C, K: R, transA: true, lda: this.ldV, beta: 1 },
        );
      }
    }
    this.logitsKept = false; // the chunk now holds dlogits
  }

  /**
   * Backward through ln_f, the blocks and the embeddings, from dlnf; accumulates into the trained
   * block's gradients. With LoRA the base weights get none: each product only passes dinp on, the
   * adapters add their share of dinp and their own gradients, and layer norms' weight gradients go
   * to a discarded scratch.
   */
  backward(): void {
    const a = this.requireActs();
    if (this.inference) throw new Error('GPT2: backward() on a model made with inference: true');
    const { B, T } = a;
    const { n_embd: C, n_head: NH, n_layer } = this.config;
    const gpu = this.gpu;
    const p = this.params;
    const g = this.frozen ? null : this.allocateGrads();
    const mp = modelParams(this.table);
    const BTC = { B, T, C };
    const BT = B * T;
    // Layer norms' weight gradients go to their block, or to a scratch nobody reads when frozen.
    const lnGrads = (w: View | undefined, b: View | undefined): { dweight: View; dbias: View } =>
      w && b ? { dweight: w, dbias: b } : this.discardLnGrads();
    const dweights = (l: number) => (g ? layerViews(g, this.table, l) : null);
    const lastResidual = n_layer > 0 ? a.layers[n_layer - 1].residual3 : a.encoded;
    gpu.clear(a.dresidual);
    layernormBackward(
      gpu,
      {
        dinp: a.dresidual,
        ...lnGrads(g ? paramView(g, mp.lnfw) : undefined, g ? paramView(g, mp.lnfb) : undefined),
        scratch: a.lnScratch,
      },
      { dout: a.dlnf, inp: lastResidual, weight: paramView(p, mp.lnfw), mean: a.lnfMean, rstd: a.lnfRstd },
      BTC,
    );
    for (let l = n_layer - 1; l >= 0; l--) {
      const w = layerViews(p, this.table, l);
      const dw = dweights(l);
      const L = a.layers[l];
      const residual = l === 0 ? a.encoded : a.layers[l - 1].residual3;
      // MLP: residual3 = residual2 + c_proj(gelu(c_fc(ln_2(residual2))))
      this.linearBackward(
        l,
        'fcproj',
        { dinp: a.dfchGelu, dweight: dw?.fcprojw, dbias: dw?.fcprojb },
        { dout: a.dresidual, inp: L.fchGelu, weight: w.fcprojw },
        { BT, C: 4 * C, OC: C },
      );
      gpu.clear(a.dfch);
      geluBackward(gpu, { dinp: a.dfch }, { inp: L.fch, dout: a.dfchGelu }, { N: BT * 4 * C });
      this.linearBackward(
        l,
        'fc',
        { dinp: a.dln, dweight: dw?.fcw, dbias: dw?.fcb },
        { dout: a.dfch, inp: L.ln2, weight: w.fcw },
        { BT, C, OC: 4 * C },
      );
      layernormBackward(
        gpu,
        { dinp: a.dresidual, ...lnGrads(dw?.ln2w, dw?.ln2b), scratch: a.lnScratch },
        { dout: a.dln, inp: L.residual2, weight: w.ln2w, mean: L.ln2Mean, rstd: L.ln2Rstd },
        BTC,
      );
      // attention: residual2 = residual + c_proj(attn(c_attn(ln_1(residual))))
      this.linearBackward(
        l,
        'attproj',
        { dinp: a.datty, dweight: dw?.attprojw, dbias: dw?.attprojb },
        { dout: a.dresidual, inp: L.atty, weight: w.attprojw },
        { BT, C, OC: C },
      );
      gpu.clear(a.dqkv);
      attentionBackward(
        gpu,
        { dqkv: a.dqkv, dpreatt: a.dpreatt },
        { dout: a.datty, qkv: L.qkv, att: L.att, mask: a.mask },
        { B, T, C, NH },
      );
      this.linearBackward(
        l,
        'qkv',
        { dinp: a.dln, dweight: dw?.qkvw, dbias: dw?.qkvb },
        { dout: a.dqkv, inp: L.ln1, weight: w.qkvw },
        { BT, C, OC: 3 * C },
      );
      layernormBackward(
        gpu,
        { dinp: a.dresidual, ...lnGrads(dw?.ln1w, dw?.ln1b), scratch: a.lnScratch },
        { dout: a.dln, inp: residual, weight: w.ln1w, mean: L.ln1Mean, rstd: L.ln1Rstd },
        BTC,
      );
    }
    if (!g) return; // frozen embeddings
    a.buckets ??= encoderBuckets(gpu, { ids: this.lastIds!, pos: this.lastPositions! });
    encoderBackward(
      gpu,
      { dwte: paramView(g, mp.wte), dwpe: paramView(g, mp.wpe) },
      { dout: a.dresidual, buckets: a.buckets },
      BTC,
    );
  }

  /**
   * Backward of Conv1D `module` of layer l (out = inp @ weight + bias, plus its LoRA add): dinp =
   * dout @ weight^T plus the adapter's share (dA, dB into the adapters' gradients); dweight and dbias
   * += when the base trains (given).
   */
  private linearBackward(
    l: number,
    module: LoraModule,
    { dinp, dweight, dbias }: { dinp: GPUBuffer; dweight?: View; dbias?: View },
    { dout, inp, weight }: { dout: GPUBuffer; inp: GPUBuffer; weight: View },
    { BT, C, OC }: { BT: number; C: number; OC: number },
  ): void {
    const { lora, pass } = this.requireActs();
    matmul(this.gpu, { out: dinp }, { a: dout, b: weight }, { M: BT, N: C, K: OC, transB: true, beta: 0 });
    lora?.backward(l, module, { dinp }, { dout, inp }, BT, pass);
    if (dweight && dbias)
      matmulBackward(this.gpu, { dinp: null, dweight, dbias }, { dout, inp, weight }, { BT, C, OC });
  }

  /** Reads the parameter block back (e.g. for export). */
  async readParams(): Promise<Float32Array> {
    return this.gpu.readF32(this.params, this.table.total);
  }

  dispose(): void {
    this.gpu.flush(); // dispatches recorded with these buffers go first
    this.freeActs();
    for (const b of [this.params, this.grads, this.logitsChunk, this.lnDiscard]) if (b) this.gpu.destroy(b);
    this.freeHead();
  }

  // ---- internals ------------------------------------------------------------------------------

  private lastIds: Uint32Array | null = null;
  private lnDiscard: GPUBuffer | null = null;

  /** Two (C) views of a scratch that frozen layer norms write their weight gradients into. */
  private discardLnGrads(): { dweight: View; dbias: View } {
    const C = this.config.n_embd;
    const half = Math.ceil(C / 64) * 64 * 4; // 256-byte aligned
    this.lnDiscard ??= this.gpu.createBuffer(2 * half, 'gpt2.ln-discard');
    return {
      dweight: { buffer: this.lnDiscard, offset: 0, size: C * 4 },
      dbias: { buffer: this.lnDiscard, offset: half, size: C * 4 },
    };
  }
  private lastPositions: Uint32Array | null = null;

  private requireActs(): Acts {
    if (!this.acts) throw new Error('GPT2: forward() has not run');
    return this.acts;
  }

  /** Rows per logits chunk: as many as fit chunkBytes, a multiple of 64 so row views stay 256-byte aligned. */
  chunkRows(N: number): number {
    const fit = Math.floor(this.chunkBytes / (this.ldV * 4));
    if (N <= fit) return N;
    return Math.max(64, Math.floor(fit / 64) * 64);
  }

  private *chunks(N: number): Generator<{ r0: number; R: number; logits: View }> {
    const rows = this.chunkRows(N);
    const bytes = rows * this.ldV * 4;
    if (!this.logitsChunk || this.logitsChunk.size < bytes) {
      if (this.logitsChunk) this.gpu.destroy(this.logitsChunk);
      this.logitsChunk = this.gpu.createBuffer(bytes, 'gpt2.logits-chunk');
    }
    for (let r0 = 0; r0 < N; r0 += rows) {
      const R = Math.min(rows, N - r0);
      yield { r0, R, logits: { buffer: this.logitsChunk, offset: 0, size: R * this.ldV * 4 } };
    }
  }

  /** logits (R, V) at row stride ldV = lnf[r0:r0+R] (R, C) @ wte^T (C, V). */
  private chunkLogits(logits: View, r0: number, R: number): void {
    const a = this.requireActs();
    const { n_embd: C, vocab_size: V } = this.config;
    const wte = paramView(this.params, modelParams(this.table).wte);
    const lnfRows: View = { buffer: a.lnf, offset: r0 * C * 4, size: R * C * 4 };
    matmul(
      this.gpu,
      { out: logits },
      { a: lnfRows, b: wte },
      { M: R, N: V, K: C, transB: true, ldc: this.ldV, beta: 0 },
    );
  }

  private headBuffers(N: number): HeadBuffers {
    if (this.head && this.head.logprob.size >= N * 4) return this.head;
    this.freeHead();
    const f = (label: string) => this.gpu.createBuffer(N * 4, `gpt2.head.${label}`);
    this.head = { logprob: f('logprob'), lse: f('lse'), entropy: f('entropy'), targets: f('targets') };
    return this.head;
  }

  private freeHead(): void {
    if (!this.head) return;
    for (const b of Object.values(this.head)) this.gpu.destroy(b);
    this.head = null;
  }

  /** Activation buffers for (B, T), reused while the shape stays the same. */
  private prepare(B: number, T: number): Acts {
    if (this.acts && this.acts.B === B && this.acts.T === T) return this.acts;
    this.freeActs();
    const { n_embd: C, n_head: NH, n_layer } = this.config;
    const all: GPUBuffer[] = [];
    const buf = (elems: number, label: string) => {
      const b = this.gpu.createBuffer(elems * 4, `gpt2.${label}`);
      all.push(b);
      return b;
    };
    const BT = B * T;
    // Backward's buffers; placeholders for a forward-only model.
    const grad = (elems: number, label: string) => buf(this.inference ? 0 : elems, label);
    const layers: LayerActs[] = [];
    for (let l = 0; l < n_layer; l++) {
      // Forward only: layer l reads layer l-1's residual3 before overwriting it, so one set serves all.
      if (this.inference && l > 0) {
        layers.push(layers[0]);
        continue;
      }
      layers.push({
        ln1: buf(BT * C, `h${l}.ln1`),
        ln1Mean: buf(BT, `h${l}.ln1_mean`),
        ln1Rstd: buf(BT, `h${l}.ln1_rstd`),
        qkv: buf(BT * 3 * C, `h${l}.qkv`),
        att: buf(B * NH * T * T, `h${l}.att`),
        atty: buf(BT * C, `h${l}.atty`),
        residual2: buf(BT * C, `h${l}.residual2`),
        ln2: buf(BT * C, `h${l}.ln2`),
        ln2Mean: buf(BT, `h${l}.ln2_mean`),
        ln2Rstd: buf(BT, `h${l}.ln2_rstd`),
        fch: buf(BT * 4 * C, `h${l}.fch`),
        fchGelu: buf(BT * 4 * C, `h${l}.fch_gelu`),
        residual3: buf(BT * C, `h${l}.residual3`),
      });
    }
    this.acts = {
      B,
      T,
      ids: buf(BT, 'ids'),
      positions: buf(BT, 'positions'),
      mask: null,
      encoded: buf(BT * C, 'encoded'),
      layers,
      lnf: buf(BT * C, 'lnf'),
      lnfMean: buf(BT, 'lnf_mean'),
      lnfRstd: buf(BT, 'lnf_rstd'),
      proj: buf(BT * C, 'proj'),
      dlnf: grad(BT * C, 'dlnf'),
      dresidual: grad(BT * C, 'dresidual'),
      dln: grad(BT * C, 'dln'),
      datty: grad(BT * C, 'datty'),
      dqkv: grad(BT * 3 * C, 'dqkv'),
      dpreatt: grad(B * NH * T * T, 'dpreatt'),
      dfchGelu: grad(BT * 4 * C, 'dfch_gelu'),
      dfch: grad(BT * 4 * C, 'dfch'),
      lnScratch: grad(layernormBackwardScratchBytes({ B, T, C }) / 4, 'ln_scratch'),
      lora: null,
      pass: EVAL_PASS,
      buckets: null,
      all,
    };
    return this.acts;
  }

  private freeActs(): void {
    if (!this.acts) return;
    this.gpu.flush(); // dispatches recorded with these buffers go first
    for (const b of this.acts.all) this.gpu.destroy(b);
    if (this.acts.mask) this.gpu.destroy(this.acts.mask);
    if (this.acts.buckets) destroyEncoderBuckets(this.gpu, this.acts.buckets);
    this.acts = null;
  }
}

function defaultPositions(B: number, T: number): Uint32Array {
  const out = new Uint32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[b * T + t] = t;
  return out;
}

function toU32(x: Int32Array | Uint32Array): Uint32Array {
  return x instanceof Uint32Array ? x : new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Refuses ids outside the vocabulary and positions outside n_positions: the kernels do not check. */
function checkBatch({ B, T, ids, positions, mask }: GPT2Batch, V: number, maxT: number): void {
  const n = B * T;
  if (!(B > 0 && T > 0 && Number.isInteger(B) && Number.isInteger(T)))
    throw new Error(`GPT2: bad batch shape B=${B} T=${T}`);
  if (T > maxT) throw new Error(`GPT2: T=${T} exceeds n_positions=${maxT}`);
  for (const [name, arr] of [
    ['ids', ids],
    ['positions', positions],
    ['mask', mask],
  ] as const) {
    if (arr && arr.length !== n) throw new Error(`GPT2: ${name} has ${arr.length} entries, B*T = ${n}`);
  }
  for (let i = 0; i < n; i++) {
    if (!(ids[i] >= 0 && ids[i] < V))
      throw new Error(`GPT2: token id ${ids[i]} at ${i} is outside the vocabulary (${V})`);
    if (positions && !(positions[i] >= 0 && positions[i] < maxT)) {
      throw new Error(`GPT2: position id ${positions[i]} at ${i} is outside 0..${maxT - 1}`);
    }
  }
}
