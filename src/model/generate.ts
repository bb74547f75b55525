/**
 * Batched generation with a KV cache, as transformers' `generate` does it for GPT-2, on our kernels.
 *
 * Prompts of different lengths are left-padded to T0 (attention mask 0 on the padding, position ids
 * cumsum(mask) - 1 clamped at 0). One batched forward over (B, T0) writes every layer's k and v into
 * that layer's cache kv (2, B, NH, maxT, HS), maxT = T0 + S - 1 for S new tokens, and the LM head
 * runs on the last position of each row only. Then each decode step feeds the B tokens just sampled
 * (at cache index T0 + s - 1, position id len_b + s - 1) through the blocks as B single rows:
 *   ln_1 -> c_attn -> write k, v to the cache -> attention of the one query over the cache
 *   (padded prompt keys masked) -> c_proj -> residual -> ln_2 -> mlp -> residual,
 * then ln_f and the tied LM head on (B, V) logits (in chunks of rows, never (B, T, V)), and the next
 * ids are chosen on the GPU (src/ops/sample.ts). The sampled ids stay on the GPU as the next step's
 * input; the CPU reads the B ids of each step (one small readback, overlapped with the next step) only
 * to know when every row is finished.
 *
 * Stopping: a row stops after its own maxNewTokens, or (stopAtEos) after it produces eosId; the GPU
 * keeps such a row going on padId, as transformers does with pad_token_id, and its output ends there.
 * Greedy decoding reproduces transformers' generate(do_sample=False) (test/node/generate.test.ts).
 */
import type { Gpu } from '../gpu/gpu.ts';
import { attentionForward } from '../ops/attention.ts';
import { attentionDecodeAuto, kvCacheSize, kvCacheWrite } from '../ops/attention-decode.ts';
import { encoderForward } from '../ops/encoder.ts';
import { layernormForward } from '../ops/layernorm.ts';
import { matmul } from '../ops/matmul.ts';
import { sampleForward } from '../ops/sample.ts';
import { blockForward } from './block.ts';
import type { GPT2Config } from './config.ts';
import { EVAL_PASS, type Lora } from './lora.ts';
import { layerViews, modelParams, paramView, type ParamTable } from './param-table.ts';

/** What generation needs of a model: its parameter block on the GPU laid out by `table` (GPT2 has these). */
export interface GeneratorModel {
  readonly gpu: Gpu;
  readonly config: GPT2Config;
  readonly table: ParamTable;
  readonly params: GPUBuffer;
  /** LoRA adapters to apply (GPT2's `lora`: null when none are attached or they are disabled). */
  readonly lora?: Lora | null;
}

export interface GenerateOptions {
  /** New tokens per row: one count for every prompt, or one per prompt. */
  maxNewTokens: number | readonly number[];
  /** argmax decoding (temperature, topK and topP are then ignored); default false. */
  greedy?: boolean;
  /** Default 1. */
  temperature?: number;
  /** Keep the topK most likely tokens; 0 = off (default). */
  topK?: number;
  /** Nucleus mass; 1 = off (default). */
  topP?: number;
  /** RNG key (u32): a draw depends on (seed, step, row) only. Default 0. */
  seed?: number;
  /** Stop a row once it produces eosId, as transformers' generate (default true). */
  stopAtEos?: boolean;
  /** Default config.eos_token_id (50256 for GPT-2); an id outside the vocabulary never stops a row. */
  eosId?: number | null;
}

export interface GenerateResult {
  /** Per prompt: its new ids, at most its maxNewTokens, ending with eosId where the row stopped on it. */
  ids: number[][];
  /** Decode steps run after the prefill (one may run past the last row's end: the CPU sees ids late). */
  steps: number;
}

/** A batch of prompts left-padded as transformers' tokenizer (padding_side='left') and generate do. */
export interface LeftPadded {
  B: number;
  T: number;
  /** (B, T) token ids, padId on the padding. */
  ids: Uint32Array;
  /** (B, T) 1 = prompt token, 0 = padding. */
  mask: Uint32Array;
  /** (B, T) cumsum(mask) - 1 clamped at 0. */
  positions: Uint32Array;
  /** Prompt lengths. */
  lengths: number[];
}

export function leftPad(prompts: readonly (readonly number[])[], padId = 0): LeftPadded {
  const B = prompts.length;
  const T = Math.max(0, ...prompts.map((p) => p.length));
  const ids = new Uint32Array(B * T).fill(padId);
  const mask = new Uint32Array(B * T);
  const positions = new Uint32Array(B * T);
  prompts.forEach((p, b) => {
    const pad = T - p.length;
    p.forEach((id, i) => {
      ids[b * T + pad + i] = id;
      mask[b * T + pad + i] = 1;
      positions[b * T + pad + i] = i;
    });
  });
  return { B, T, ids, mask, positions, lengths: prompts.map((p) => p.length) };
}

const DEFAULT_LOGITS_CHUNK_BYTES = 64 * 2 ** 20;
/** Elements per step in the table of decode position ids: 64 u32 = 256 bytes, so each step's row is a View. */
const ROW_ALIGN = 64;

interface Resolved {
  maxNew: number[];
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  /** The id that stops a row, or -1. */
  eosId: number;
  /** The id a stopped row is fed (inside the vocabulary). */
  padId: number;
}

function resolveOptions(o: GenerateOptions, B: number, cfg: GPT2Config): Resolved {
  const maxNew =
    typeof o.maxNewTokens === 'number' ? new Array<number>(B).fill(o.maxNewTokens) : [...o.maxNewTokens];
  if (maxNew.length !== B) throw new Error(`generate: ${maxNew.length} maxNewTokens for ${B} prompts`);
  for (const n of maxNew) {
    if (!Number.isInteger(n) || n < 0) throw new Error(`generate: maxNewTokens ${n} is not a count`);
  }
  const eos = o.eosId === undefined ? cfg.eos_token_id : o.eosId;
  const eosInVocab = eos !== null && eos >= 0 && eos < cfg.vocab_size;
  return {
    maxNew,
    greedy: o.greedy ?? false,
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    seed: o.seed ?? 0,
    eosId: (o.stopAtEos ?? true) && eosInVocab ? eos : -1,
    padId: eosInVocab ? eos : 0,
  };
}

function checkPrompts(prompts: readonly (readonly number[])[], V: number): void {
  prompts.forEach((p, b) => {
    if (p.length === 0) throw new Error(`generate: prompt ${b} is empty`);
    for (const id of p) {
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new Error(`generate: prompt ${b} has token id ${id}, outside the vocabulary (${V})`);
    }
  });
}

export class Generator {
  private readonly pool = new Map<string, GPUBuffer>();
  private readonly chunkBytes: number;
  /** Padded row stride of logits: vec4-aligned, as GPT2.ldV. */
  private readonly ldV: number;

  constructor(
    readonly model: GeneratorModel,
    { logitsChunkBytes = DEFAULT_LOGITS_CHUNK_BYTES }: { logitsChunkBytes?: number } = {},
  ) {
    this.chunkBytes = logitsChunkBytes;
    this.ldV = Math.ceil(model.config.vocab_size / 4) * 4;
  }

  private get gpu(): Gpu {
    return this.model.gpu;
  }

  /** New tokens for each prompt (token id arrays of any lengths >= 1), in one batch. */
  async generate(prompts: readonly (readonly number[])[], options: GenerateOptions): Promise<GenerateResult> {
    const cfg = this.model.config;
    const B = prompts.length;
    const o = resolveOptions(options, B, cfg);
    checkPrompts(prompts, cfg.vocab_size);
    const out: number[][] = prompts.map(() => []);
    const S = Math.max(0, ...o.maxNew);
    if (B === 0 || S === 0) return { ids: out, steps: 0 };
    const pad = leftPad(prompts);
    const T0 = pad.T;
    const maxT = T0 + S - 1; // the last new token is never fed back
    if (maxT > cfg.n_positions) {
      throw new Error(
        `generate: ${T0} prompt + ${S} new tokens need ${maxT} positions, the model has ${cfg.n_positions}`,
      );
    }
    this.upload(pad, maxT, S);

    const finished = o.maxNew.map((n) => n === 0);
    const take = (ids: Uint32Array) => {
      for (let b = 0; b < B; b++) {
        if (finished[b]) continue;
        out[b].push(ids[b]);
        finished[b] = out[b].length >= o.maxNew[b] || ids[b] === o.eosId;
      }
    };

    const padded = pad.lengths.some((n) => n < T0);
    this.prefill(B, T0, maxT, padded);
    this.head(B, 0, o, T0);
    let pending = this.readIds(B);
    let steps = 0;
    for (let s = 1; s <= S; s++) {
      // Step s is recorded before the CPU waits for step s-1's ids, so the GPU never idles on the readback.
      let next: Promise<Uint32Array> | null = null;
      if (s < S) {
        this.decodeStep(B, T0, maxT, s);
        this.head(B, s, o, 1);
        next = this.readIds(B);
        steps++;
      }
      take(await pending);
      if (!next) break;
      if (finished.every(Boolean)) {
        await next;
        break;
      }
      pending = next;
    }
    return { ids: out, steps };
  }

  /** Frees every buffer; the Generator can still be used (it allocates again). */
  dispose(): void {
    for (const b of this.pool.values()) this.gpu.destroy(b);
    this.pool.clear();
  }

  // ---- the forward passes --------------------------------------------------------------------------

  /** Embeddings and every block over the padded prompts (B, T0), filling the caches. Leaves x. */
  private prefill(B: number, T0: number, maxT: number, padded: boolean): void {
    const { n_embd: C, n_head: NH } = this.model.config;
    const mp = modelParams(this.model.table);
    const p = this.model.params;
    encoderForward(
      this.gpu,
      { out: this.buf('x') },
      { ids: this.buf('ids'), pos: this.buf('pos'), wte: paramView(p, mp.wte), wpe: paramView(p, mp.wpe) },
      { B, T: T0, C },
    );
    this.blocks(B * T0, (l, qkv, atty) => {
      attentionForward(
        this.gpu,
        { out: atty, att: this.buf('att') },
        { qkv, mask: padded ? this.buf('promptMask') : null },
        { B, T: T0, C, NH },
        'zero',
      );
      kvCacheWrite(this.gpu, { kv: this.buf(`kv${l}`) }, { qkv }, { B, C, NH, maxT, T: T0, t0: 0 });
    });
  }

  /** Step s >= 1: the ids sampled at step s-1 at cache index T0 + s - 1, through every block. Leaves x. */
  private decodeStep(B: number, T0: number, maxT: number, s: number): void {
    const { n_embd: C, n_head: NH } = this.model.config;
    const mp = modelParams(this.model.table);
    const p = this.model.params;
    const Bp = Math.ceil(B / ROW_ALIGN) * ROW_ALIGN;
    const pos = { buffer: this.buf('stepPos'), offset: (s - 1) * Bp * 4, size: B * 4 };
    encoderForward(
      this.gpu,
      { out: this.buf('x') },
      { ids: this.buf('sampled'), pos, wte: paramView(p, mp.wte), wpe: paramView(p, mp.wpe) },
      { B, T: 1, C },
    );
    const t = T0 + s - 1;
    this.blocks(B, (l, qkv, atty) => {
      const kv = this.buf(`kv${l}`);
      kvCacheWrite(this.gpu, { kv }, { qkv }, { B, C, NH, maxT, T: 1, t0: t });
      attentionDecodeAuto(
        this.gpu,
        { out: atty },
        { qkv, kv, mask: this.buf('cacheMask') },
        { B, C, NH, maxT, Tk: t + 1 },
      );
    });
  }

  /** The transformer blocks over N rows of x, attention supplied by the caller; the result is in x. */
  private blocks(N: number, attend: (l: number, qkv: GPUBuffer, atty: GPUBuffer) => void): void {
    const { n_embd: C, n_layer } = this.model.config;
    // One set of buffers for every layer: x in and out, x2 the mid-block residual, ln both norms.
    const [x, x2, ln, mean, rstd] = ['x', 'x2', 'ln', 'mean', 'rstd'].map((n) => this.buf(n));
    const [qkv, atty, proj, fch, fchGelu] = ['qkv', 'atty', 'proj', 'fch', 'fchGelu'].map((n) => this.buf(n));
    const b = {
      inp: x,
      ln1: ln,
      ln1Mean: mean,
      ln1Rstd: rstd,
      qkv,
      atty,
      proj,
      residual2: x2,
      ln2: ln,
      ln2Mean: mean,
      ln2Rstd: rstd,
      fch,
      fchGelu,
      out: x,
    };
    const lora = this.model.lora ?? null;
    for (let l = 0; l < n_layer; l++) {
      const w = layerViews(this.model.params, this.model.table, l);
      blockForward(this.gpu, l, w, b, { B: N, T: 1, C }, (q, y) => attend(l, q, y), lora, EVAL_PASS);
    }
  }

  /**
   * ln_f and the tied LM head on the last position of each row of x, whose rows are T apart (T0 after
   * the prefill, 1 after a decode step), then the choice of the next ids into `sampled`.
   */
  private head(B: number, step: number, o: Resolved, T: number): void {
    const { n_embd: C, vocab_size: V } = this.model.config;
    const gpu = this.gpu;
    const x = this.buf('x');
    let last = x;
    if (T > 1) {
      last = this.buf('x2');
      for (let b = 0; b < B; b++) {
        gpu.copy(
          { buffer: x, offset: (b * T + T - 1) * C * 4, size: C * 4 },
          { buffer: last, offset: b * C * 4, size: C * 4 },
        );
      }
    }
    const mp = modelParams(this.model.table);
    const p = this.model.params;
    const lnf = this.buf('lnf');
    layernormForward(
      gpu,
      { out: lnf, mean: this.buf('mean'), rstd: this.buf('rstd') },
      { inp: last, weight: paramView(p, mp.lnfw), bias: paramView(p, mp.lnfb) },
      { B, T: 1, C },
    );
    const wte = paramView(p, mp.wte);
    const rows = this.chunkRows(B);
    const logits = this.buf('logits');
    for (let r0 = 0; r0 < B; r0 += rows) {
      const R = Math.min(rows, B - r0);
      const chunk = { buffer: logits, offset: 0, size: R * this.ldV * 4 };
      // logits (R, V) at row stride ldV = lnf[r0:r0+R] (R, C) @ wte^T (C, V)
      matmul(
        gpu,
        { out: chunk },
        { a: { buffer: lnf, offset: r0 * C * 4, size: R * C * 4 }, b: wte },
        { M: R, N: V, K: C, transB: true, ldc: this.ldV, beta: 0 },
      );
      sampleForward(
        gpu,
        { ids: this.buf('sampled'), done: o.eosId >= 0 ? this.buf('done') : null },
        { logits: chunk },
        {
          R,
          V,
          ldV: this.ldV,
          row0: r0,
          greedy: o.greedy,
          temperature: o.temperature,
          topK: o.topK,
          topP: o.topP,
          seed: o.seed,
          step,
          eosId: o.eosId,
          padId: o.padId,
        },
      );
    }
  }

  private readIds(B: number): Promise<Uint32Array> {
    return this.gpu.readU32(this.buf('sampled'), B);
  }

  // ---- buffers -------------------------------------------------------------------------------------

  /** Rows per logits chunk: all B when they fit chunkBytes, else a multiple of 64 (256-byte aligned views). */
  private chunkRows(B: number): number {
    const fit = Math.floor(this.chunkBytes / (this.ldV * 4));
    return B <= fit ? B : Math.max(64, Math.floor(fit / 64) * 64);
  }

  /** Sizes every buffer for (B, T0, maxT) and uploads the prompts, masks and decode position ids. */
  private upload(pad: LeftPadded, maxT: number, S: number): void {
    const { B, T: T0 } = pad;
    const { n_embd: C, n_head: NH, n_layer } = this.model.config;
    const N = B * T0;
    const sizes: [string, number][] = [
      ['ids', N],
      ['pos', N],
      ['promptMask', N],
      ['cacheMask', B * maxT],
      ['stepPos', Math.max(1, S - 1) * Math.ceil(B / ROW_ALIGN) * ROW_ALIGN],
      ['x', N * C],
      ['x2', N * C],
      ['ln', N * C],
      ['mean', N],
      ['rstd', N],
      ['qkv', N * 3 * C],
      ['atty', N * C],
      ['att', B * NH * T0 * T0],
      ['proj', N * C],
      ['fch', N * 4 * C],
      ['fchGelu', N * 4 * C],
      ['lnf', B * C],
      ['logits', this.chunkRows(B) * this.ldV],
      ['sampled', B],
      ['done', B],
    ];
    for (let l = 0; l < n_layer; l++) sizes.push([`kv${l}`, kvCacheSize({ B, C, NH, maxT })]);
    for (const [name, n] of sizes) this.ensure(name, n);

    const gpu = this.gpu;
    gpu.write(this.buf('ids'), pad.ids);
    gpu.write(this.buf('pos'), pad.positions);
    gpu.write(this.buf('promptMask'), pad.mask);
    const cacheMask = new Uint32Array(B * maxT).fill(1); // generated keys are always visible
    for (let b = 0; b < B; b++) cacheMask.set(pad.mask.subarray(b * T0, (b + 1) * T0), b * maxT);
    gpu.write(this.buf('cacheMask'), cacheMask);
    const Bp = Math.ceil(B / ROW_ALIGN) * ROW_ALIGN;
    const stepPos = new Uint32Array(Math.max(1, S - 1) * Bp);
    for (let s = 1; s < S; s++)
      for (let b = 0; b < B; b++) stepPos[(s - 1) * Bp + b] = pad.lengths[b] + s - 1;
    gpu.write(this.buf('stepPos'), stepPos);
    gpu.clear(this.buf('done'));
  }

  /** A pooled buffer of at least `floats` 4-byte elements (grown, never shrunk). */
  private ensure(name: string, floats: number): void {
    const have = this.pool.get(name);
    if (have && have.size >= floats * 4) return;
    if (have) this.gpu.destroy(have);
    this.pool.set(name, this.gpu.createBuffer(floats * 4, `generate.${name}`));
  }

  private buf(name: string): GPUBuffer {
    const b = this.pool.get(name);
    if (!b) throw new Error(`Generator: buffer ${name} was not allocated`);
    return b;
  }
}
