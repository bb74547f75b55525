/**
 * The policy with TRL's value head, and the frozen reference, on the GPU. For a batch of token rows
 * (B, T) they give, per row b and position t < T-1, the log-prob of token t+1, the entropy of the
 * distribution at t, and (policy) the value at t: TRL's batched_forward_pass, which drops the last
 * position (logits[:, :-1], values[:, :-1]). Arrays are flat (B, T-1) float32.
 *
 * The value head is TRL's ValueHead: summary = Linear(n_embd, 1) on the last hidden state (after
 * ln_f), dropout off. Its weights live in the policy's parameter block (v_head.summary.*), so the
 * optimizer, checkpoints and export see them like any other parameter.
 *
 * With LoRA (peft), the policy's base weights are frozen and the trained block is the adapters' one
 * (lora-table.ts), which then also holds the value head; the reference can be the policy's own GPT2
 * with the adapters switched off (TRL's trick: one copy of the base weights for both).
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import type { GeneratorModel } from '../model/generate.ts';
import { GPT2, type GPT2Batch } from '../model/gpt2.ts';
import { Lora } from '../model/lora.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import { AdamW } from '../model/optimizer.ts';
import { paramView, valueHeadParams } from '../model/param-table.ts';
import {
  findNonFinite,
  gradNorm,
  gradNormPartialCount,
  readGradNorm,
  resetNonFiniteFlag,
  clipGradNorm,
} from '../ops/grad-norm.ts';
import { matmul, matmulDbias } from '../ops/matmul.ts';
import { mixSeed } from '../util/random.ts';

export interface TokenRows extends GPT2Batch {
  ids: Int32Array;
}

export interface ForwardOut {
  /** (B, T-1) log p(ids[t+1] | ids[..t]). */
  logprobs: Float32Array;
  /** (B, T-1) entropy of the next-token distribution at t. */
  entropy: Float32Array;
  /** (B, T-1) value-head output at t (policy only). */
  values: Float32Array | null;
}

/** A non-finite number where none may be: the step stops before the weights change. */
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** Next-token targets of a (B, T) batch: ids[t+1], none (-1) at the last position. */
export function nextTokenTargets({ B, T, ids }: { B: number; T: number; ids: Int32Array }): Int32Array {
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = ids[b * T + t + 1];
  return targets;
}

/** (B, T) per-row values → (B, T-1), dropping the last position. */
function dropLast(x: Float32Array, B: number, T: number): Float32Array {
  const out = new Float32Array(B * (T - 1));
  for (let b = 0; b < B; b++) out.set(x.subarray(b * T, b * T + T - 1), b * (T - 1));
  return out;
}

/** (B, T-1) → (B, T) with zeros at the last position. */
function padLast(x: ArrayLike<number>, B: number, T: number): Float32Array {
  const out = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) out[b * T + t] = x[b * (T - 1) + t];
  return out;
}

/**
 * [r0, r1) row ranges of at most `micro` rows (one range when micro is null), as even as possible so
 * that the activations keep one shape.
 */
function rowParts(B: number, micro: number | null): [number, number][] {
  const step = micro === null ? B : Math.ceil(B / Math.ceil(B / Math.max(1, micro)));
  const parts: [number, number][] = [];
  for (let r0 = 0; r0 < B; r0 += step) parts.push([r0, Math.min(B, r0 + step)]);
  return parts;
}

/** Rows r0..r1 of a batch (views, no copy). */
function sliceRows(batch: TokenRows, r0: number, r1: number): TokenRows {
  if (r0 === 0 && r1 === batch.B) return batch;
  const { T } = batch;
  const rows = <A extends Int32Array | Uint32Array>(x: A): A => x.subarray(r0 * T, r1 * T) as A;
  return {
    B: r1 - r0,
    T,
    ids: rows(batch.ids),
    mask: batch.mask && rows(batch.mask),
    positions: batch.positions && rows(batch.positions),
  };
}

/**
 * Reference model: a frozen GPT-2 that only gives log-probs. Either its own copy of the weights, or
 * (`{ sharedWith: policy.net }`, LoRA) the policy's GPT2 run with its adapters disabled.
 */
export class ReferenceModel {
  readonly net: GPT2;
  private readonly shared: boolean;
  constructor(
    gpu: Gpu,
    config: GPT2Config,
    source: Float32Array | { sharedWith: GPT2 },
    /** Rows per forward pass (null: the whole batch at once). */
    private readonly microBatch: number | null = null,
  ) {
    this.shared = !(source instanceof Float32Array);
    this.net =
      source instanceof Float32Array ? new GPT2(gpu, config, source, { inference: true }) : source.sharedWith;
  }

  async logprobs(batch: TokenRows): Promise<Float32Array> {
    const enabled = this.net.adaptersEnabled;
    this.net.adaptersEnabled = false;
    try {
      const out = new Float32Array(batch.B * (batch.T - 1));
      for (const [r0, r1] of rowParts(batch.B, this.microBatch)) {
        const sub = sliceRows(batch, r0, r1);
        this.net.forward(sub);
        const head = this.net.headForward(nextTokenTargets(sub));
        const lp = await this.net.gpu.readF32(head.logprob, sub.B * sub.T);
        out.set(dropLast(lp, sub.B, sub.T), r0 * (batch.T - 1));
      }
      return out;
    } finally {
      this.net.adaptersEnabled = enabled;
    }
  }

  /** What a Generator needs to sample from the reference: the base weights, no adapters. */
  get generatorModel(): GeneratorModel {
    const { gpu, config, table, params } = this.net;
    return { gpu, config, table, params, lora: null };
  }

  dispose(): void {
    if (!this.shared) this.net.dispose();
  }
}

/** LoRA settings of a policy and its block laid out by loraTable(config, lora, {valueHead: true}). */
export interface PolicyLora {
  config: LoraConfig;
  params: Float32Array;
}

export class PolicyWithValueHead {
  readonly net: GPT2;
  readonly opt: AdamW;
  private values: GPUBuffer | null = null;
  private dvalues: GPUBuffer | null = null;
  private dlogprob: GPUBuffer | null = null;
  private normOut: GPUBuffer;
  private normPartials: GPUBuffer;
  private flag: GPUBuffer;
  /** Training forwards so far: pass n draws its LoRA dropout masks from mixSeed(seed, 0x10a, n). */
  dropoutPasses = 0;
  /** Rows per forward/backward pass (null: the whole batch at once). */
  private readonly microBatch: number | null;
  /** The last forward's rows and the dropout seed of each micro-batch, for backward. */
  private last: { batch: TokenRows; seeds: (number | null)[] } | null = null;

  /**
   * `params` laid out with the value head (gpt2ParamTable(config, {valueHead: true})); with `lora`,
   * the base without it (gpt2ParamTable(config)), frozen, and the value head in the LoRA block.
   */
  constructor(
    readonly gpu: Gpu,
    config: GPT2Config,
    params: Float32Array,
    {
      learningRate,
      lora = null,
      seed = 0,
      microBatch = null,
    }: { learningRate: number; lora?: PolicyLora | null; seed?: number; microBatch?: number | null },
  ) {
    this.microBatch = microBatch;
    this.net = new GPT2(gpu, config, params, { valueHead: !lora });
    if (lora) this.net.attachLora(new Lora(gpu, config, lora.config, lora.params, { valueHead: true }));
    this.seed = seed;
    const N = this.net.trainTable.total;
    // TRL's optimizer: torch.optim.Adam(lr=learning_rate), i.e. AdamW without weight decay.
    this.opt = new AdamW(gpu, N, { lr: learningRate, weightDecay: 0 });
    this.normOut = gpu.createBuffer(8, 'policy.grad-norm');
    this.normPartials = gpu.createBuffer(gradNormPartialCount(N) * 4, 'policy.grad-norm-partials');
    this.flag = gpu.createBuffer(4, 'policy.nonfinite-flag');
  }

  set learningRate(lr: number) {
    this.opt.config = { ...this.opt.config, lr };
  }

  private readonly seed: number;

  /**
   * Forward with log-probs, entropies and values; keeps what backward needs. `train` turns LoRA
   * dropout on (a new mask each pass); rollout passes leave it off.
   */
  async forward(batch: TokenRows, { train = false }: { train?: boolean } = {}): Promise<ForwardOut> {
    const parts = rowParts(batch.B, this.microBatch);
    const seeds = parts.map(() => (train ? mixSeed(this.seed, 0x10a, this.dropoutPasses++) : null));
    this.last = { batch, seeds };
    const outs: ForwardOut[] = [];
    for (const [k, [r0, r1]] of parts.entries()) {
      const sub = sliceRows(batch, r0, r1);
      const { B, T } = sub;
      const head = this.forwardRows(sub, seeds[k]);
      const [logprob, entropy, v] = await Promise.all([
        this.gpu.readF32(head.logprob, B * T),
        this.gpu.readF32(head.entropy, B * T),
        this.gpu.readF32(this.values!, B * T),
      ]);
      outs.push({
        logprobs: dropLast(logprob, B, T),
        entropy: dropLast(entropy, B, T),
        values: dropLast(v, B, T),
      });
    }
    if (outs.length === 1) return outs[0];
    const cat = (xs: Float32Array[]) => {
      const out = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
      let o = 0;
      for (const x of xs) {
        out.set(x, o);
        o += x.length;
      }
      return out;
    };
    return {
      logprobs: cat(outs.map((o) => o.logprobs)),
      entropy: cat(outs.map((o) => o.entropy)),
      values: cat(outs.map((o) => o.values!)),
    };
  }

  /**
   * Accumulates d loss / d params for the last forward, from d loss / d logprobs and d loss / d values
   * (both (B, T-1)). Call zeroGrads() before the first of an accumulation. When the forward ran in
   * micro-batches, each one is run forward again (same dropout masks) before its backward, so only one
   * micro-batch's activations are ever held.
   */
  backward(dlogprobs: ArrayLike<number>, dvalues: ArrayLike<number>): void {
    const last = this.last;
    if (!last) throw new Error('policy.backward before forward');
    const parts = rowParts(last.batch.B, this.microBatch);
    const W = last.batch.T - 1;
    const rows = (x: ArrayLike<number>, r0: number, r1: number) =>
      Float64Array.from({ length: (r1 - r0) * W }, (_, i) => x[r0 * W + i]);
    for (const [k, [r0, r1]] of parts.entries()) {
      // With one part, the forward's activations are still there.
      if (parts.length > 1) this.forwardRows(sliceRows(last.batch, r0, r1), last.seeds[k]);
      this.backwardRows(rows(dlogprobs, r0, r1), rows(dvalues, r0, r1));
    }
  }

  /** Records forward, LM head and value head for a batch of rows; values land in this.values. */
  private forwardRows(batch: TokenRows, dropoutSeed: number | null) {
    this.net.forward(batch, { dropoutSeed });
    const head = this.net.headForward(nextTokenTargets(batch));
    this.valueForward(batch.B * batch.T);
    return head;
  }

  /** Backward of the last forwardRows. */
  private backwardRows(dlogprobs: ArrayLike<number>, dvalues: ArrayLike<number>): void {
    const { B, T } = this.net.batchShape;
    const BT = B * T;
    this.dlogprob = this.ensure(this.dlogprob, BT, 'policy.dlogprob');
    this.dvalues = this.ensure(this.dvalues, BT, 'policy.dvalues');
    this.gpu.write(this.dlogprob, padLast(dlogprobs, B, T));
    this.gpu.write(this.dvalues, padLast(dvalues, B, T));
    this.net.headBackward({ dlogprob: this.dlogprob });
    this.valueBackward(BT);
    this.net.backward();
  }

  zeroGrads(): void {
    this.net.zeroGrads();
  }

  /**
   * Clips the gradient norm (when maxGradNorm is set), refuses non-finite gradients, then takes one
   * Adam step. Returns the gradient norm when it was computed.
   */
  async step({ maxGradNorm }: { maxGradNorm: number | null }): Promise<number | null> {
    const grads = this.net.trainGrads();
    const N = this.net.trainTable.total;
    await this.assertFiniteParams();
    resetNonFiniteFlag(this.gpu, this.flag);
    findNonFinite(this.gpu, { flag: this.flag }, { inp: grads }, { N });
    let norm: number | null = null;
    if (maxGradNorm !== null) {
      clipGradNorm(
        this.gpu,
        { grads, out: this.normOut, partials: this.normPartials },
        { N, maxNorm: maxGradNorm },
      );
      norm = await readGradNorm(this.gpu, this.normOut);
    }
    const [flag] = await this.gpu.readU32(this.flag, 1);
    if (flag !== 0) throw new NonFiniteError(`non-finite gradient in ${await this.locateNonFinite(grads)}`);
    this.opt.step(this.net.trainParams, grads);
    return norm;
  }

  /** Throws NonFiniteError naming the parameters that hold a NaN or Inf. */
  async assertFiniteParams(): Promise<void> {
    resetNonFiniteFlag(this.gpu, this.flag);
    findNonFinite(
      this.gpu,
      { flag: this.flag },
      { inp: this.net.trainParams },
      { N: this.net.trainTable.total },
    );
    const [flag] = await this.gpu.readU32(this.flag, 1);
    if (flag !== 0)
      throw new NonFiniteError(`non-finite weight in ${await this.locateNonFinite(this.net.trainParams)}`);
  }

  /** Global gradient norm without clipping (for stats). */
  async gradNorm(): Promise<number> {
    gradNorm(
      this.gpu,
      { out: this.normOut, partials: this.normPartials },
      { grads: this.net.trainGrads() },
      { N: this.net.trainTable.total },
    );
    return readGradNorm(this.gpu, this.normOut);
  }

  /** The names of the parameters whose gradient (or value) holds a NaN or Inf. */
  async locateNonFinite(block: GPUBuffer): Promise<string> {
    const data = await this.gpu.readF32(block, this.net.trainTable.total);
    const bad = this.net.trainTable.entries
      .filter((e) => data.subarray(e.offset, e.offset + e.size).some((x) => !Number.isFinite(x)))
      .map((e) => e.name);
    return bad.length
      ? bad.slice(0, 5).join(', ') + (bad.length > 5 ? ` and ${bad.length - 5} more` : '')
      : 'an unknown tensor';
  }

  /** The parameter block (full fine-tuning) or the LoRA block (with the value head). */
  async readParams(): Promise<Float32Array> {
    return this.net.adapters ? this.net.adapters.readParams() : this.net.readParams();
  }

  dispose(): void {
    this.net.dispose();
    this.net.adapters?.dispose();
    this.opt.dispose();
    for (const b of [this.values, this.dvalues, this.dlogprob, this.normOut, this.normPartials, this.flag]) {
      if (b) this.gpu.destroy(b);
    }
  }

  /** values (B*T) = lnf (B*T, C) @ v_head.weight^T (C, 1) + v_head.bias. */
  private valueForward(BT: number): GPUBuffer {
    const C = this.net.config.n_embd;
    const vh = valueHeadParams(this.net.trainTable);
    const p = this.net.trainParams;
    this.values = this.ensure(this.values, BT, 'policy.values');
    matmul(
      this.gpu,
      { out: this.values },
      { a: this.net.lnf, b: paramView(p, vh.vw), bias: paramView(p, vh.vb) },
      { M: BT, N: 1, K: C, transB: true },
    );
    return this.values;
  }

  /** dlnf += dvalues (BT, 1) @ w (1, C);  dw (1, C) += dvalues^T @ lnf;  db += sum dvalues. */
  private valueBackward(BT: number): void {
    const C = this.net.config.n_embd;
    const vh = valueHeadParams(this.net.trainTable);
    const grads = this.net.trainGrads();
    const dv = this.dvalues!;
    matmul(
      this.gpu,
      { out: this.net.dlnf },
      { a: dv, b: paramView(this.net.trainParams, vh.vw) },
      { M: BT, N: C, K: 1, beta: 1 },
    );
    matmul(
      this.gpu,
      { out: paramView(grads, vh.vw) },
      { a: dv, b: this.net.lnf },
      { M: 1, N: C, K: BT, transA: true, beta: 1 },
    );
    matmulDbias(this.gpu, { dbias: paramView(grads, vh.vb) }, { dout: dv }, { BT, OC: 1 });
  }

  private ensure(buf: GPUBuffer | null, n: number, label: string): GPUBuffer {
    if (buf && buf.size >= n * 4) return buf;
    if (buf) this.gpu.destroy(buf);
    return this.gpu.createBuffer(n * 4, label);
  }
}
