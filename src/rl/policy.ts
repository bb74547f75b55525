/**
 * The policy with TRL's value head, and the frozen reference, on the GPU. For a batch of token rows
 * (B, T) they give, per row b and position t < T-1, the log-prob of token t+1, the entropy of the
 * distribution at t, and (policy) the value at t: TRL's batched_forward_pass, which drops the last
 * position (logits[:, :-1], values[:, :-1]). Arrays are flat (B, T-1) float32.
 *
 * The value head is TRL's ValueHead: summary = Linear(n_embd, 1) on the last hidden state (after
 * ln_f), dropout off. Its weights live in the policy's parameter block (v_head.summary.*), so the
 * optimizer, checkpoints and export see them like any other parameter.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { GPT2, type GPT2Batch } from '../model/gpt2.ts';
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

/** Reference model: a frozen GPT-2 that only gives log-probs (forward only: no activations kept). */
export class ReferenceModel {
  readonly net: GPT2;
  constructor(gpu: Gpu, config: GPT2Config, params: Float32Array) {
    this.net = new GPT2(gpu, config, params, { inference: true });
  }

  async logprobs(batch: TokenRows): Promise<Float32Array> {
    this.net.forward(batch);
    const head = this.net.headForward(nextTokenTargets(batch));
    return dropLast(await this.net.gpu.readF32(head.logprob, batch.B * batch.T), batch.B, batch.T);
  }

  dispose(): void {
    this.net.dispose();
  }
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

  /** `params` laid out with the value head (gpt2ParamTable(config, {valueHead: true})). */
  constructor(
    readonly gpu: Gpu,
    config: GPT2Config,
    params: Float32Array,
    { learningRate }: { learningRate: number },
  ) {
    this.net = new GPT2(gpu, config, params, { valueHead: true });
    // TRL's optimizer: torch.optim.Adam(lr=learning_rate), i.e. AdamW without weight decay.
    this.opt = new AdamW(gpu, this.net.table.total, { lr: learningRate, weightDecay: 0 });
    const N = this.net.table.total;
    this.normOut = gpu.createBuffer(8, 'policy.grad-norm');
    this.normPartials = gpu.createBuffer(gradNormPartialCount(N) * 4, 'policy.grad-norm-partials');
    this.flag = gpu.createBuffer(4, 'policy.nonfinite-flag');
  }

  set learningRate(lr: number) {
    this.opt.config = { ...this.opt.config, lr };
  }

  /** Forward with log-probs, entropies and values; keeps what backward needs. */
  async forward(batch: TokenRows): Promise<ForwardOut> {
    const { B, T } = batch;
    const net = this.net;
    net.forward(batch);
    const head = net.headForward(nextTokenTargets(batch));
    const values = this.valueForward(B * T);
    const [logprob, entropy, v] = await Promise.all([
      this.gpu.readF32(head.logprob, B * T),
      this.gpu.readF32(head.entropy, B * T),
      this.gpu.readF32(values, B * T),
    ]);
    return { logprobs: dropLast(logprob, B, T), entropy: dropLast(entropy, B, T), values: dropLast(v, B, T) };
  }

  /**
   * Accumulates d loss / d params for the last forward, from d loss / d logprobs and d loss / d values
   * (both (B, T-1)). Call zeroGrads() before the first of an accumulation.
   */
  backward(dlogprobs: ArrayLike<number>, dvalues: ArrayLike<number>): void {
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
    const grads = this.net.grads!;
    const N = this.net.table.total;
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
    this.opt.step(this.net.params, grads);
    return norm;
  }

  /** Throws NonFiniteError naming the parameters that hold a NaN or Inf. */
  async assertFiniteParams(): Promise<void> {
    resetNonFiniteFlag(this.gpu, this.flag);
    findNonFinite(this.gpu, { flag: this.flag }, { inp: this.net.params }, { N: this.net.table.total });
    const [flag] = await this.gpu.readU32(this.flag, 1);
    if (flag !== 0)
      throw new NonFiniteError(`non-finite weight in ${await this.locateNonFinite(this.net.params)}`);
  }

  /** Global gradient norm without clipping (for stats). */
  async gradNorm(): Promise<number> {
    gradNorm(
      this.gpu,
      { out: this.normOut, partials: this.normPartials },
      { grads: this.net.grads! },
      { N: this.net.table.total },
    );
    return readGradNorm(this.gpu, this.normOut);
  }

  /** The names of the parameters whose gradient (or value) holds a NaN or Inf. */
  async locateNonFinite(block: GPUBuffer): Promise<string> {
    const data = await this.gpu.readF32(block, this.net.table.total);
    const bad = this.net.table.entries
      .filter((e) => data.subarray(e.offset, e.offset + e.size).some((x) => !Number.isFinite(x)))
      .map((e) => e.name);
    return bad.length
      ? bad.slice(0, 5).join(', ') + (bad.length > 5 ? ` and ${bad.length - 5} more` : '')
      : 'an unknown tensor';
  }

  async readParams(): Promise<Float32Array> {
    return this.net.readParams();
  }

  dispose(): void {
    this.net.dispose();
    this.opt.dispose();
    for (const b of [this.values, this.dvalues, this.dlogprob, this.normOut, this.normPartials, this.flag]) {
      if (b) this.gpu.destroy(b);
    }
  }

  /** values (B*T) = lnf (B*T, C) @ v_head.weight^T (C, 1) + v_head.bias. */
  private valueForward(BT: number): GPUBuffer {
    const C = this.net.config.n_embd;
    const vh = valueHeadParams(this.net.table);
    this.values = this.ensure(this.values, BT, 'policy.values');
    matmul(
      this.gpu,
      { out: this.values },
      { a: this.net.lnf, b: paramView(this.net.params, vh.vw), bias: paramView(this.net.params, vh.vb) },
      { M: BT, N: 1, K: C, transB: true },
    );
    return this.values;
  }

  /** dlnf += dvalues (BT, 1) @ w (1, C);  dw (1, C) += dvalues^T @ lnf;  db += sum dvalues. */
  private valueBackward(BT: number): void {
    const C = this.net.config.n_embd;
    const vh = valueHeadParams(this.net.table);
    const grads = this.net.grads!;
    const dv = this.dvalues!;
    matmul(
      this.gpu,
      { out: this.net.dlnf },
      { a: dv, b: paramView(this.net.params, vh.vw) },
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
