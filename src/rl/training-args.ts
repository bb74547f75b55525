/**
 * The transformers.TrainingArguments that TRL's SFTTrainer and RewardTrainer run under, as far as a
 * single-device run uses them, and the optimizer step they imply (transformers 4.5x / 5.x Trainer):
 *
 *   optimizer   torch.optim.AdamW(lr, betas (adam_beta1, adam_beta2), eps adam_epsilon, weight_decay)
 *   schedule    linear, no warmup: update k (0-based) of N uses lr * (N - k) / N
 *   clipping    clip_grad_norm_(max_grad_norm) on the global norm before each update
 *   steps       max_steps when > 0, else ceil(num_train_epochs * ceil(rows / batch)) (no drop_last)
 *   order       a fresh shuffle of the rows every epoch, seeded by `seed`
 *
 * The step refuses non-finite gradients (naming the tensors) before the weights change.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2 } from '../model/gpt2.ts';
import { AdamW } from '../model/optimizer.ts';
import {
  clipGradNorm,
  findNonFinite,
  gradNormPartialCount,
  readGradNorm,
  resetNonFiniteFlag,
} from '../ops/grad-norm.ts';
import { mixSeed, mulberry32, shuffled } from '../util/random.ts';
import { NonFiniteError } from './policy.ts';

export interface TrainingArgs {
  learning_rate: number;
  per_device_train_batch_size: number;
  /** > 0: the number of updates; -1: run num_train_epochs. */
  max_steps: number;
  num_train_epochs: number;
  seed: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  /** null: no clipping. */
  max_grad_norm: number | null;
}

/** TrainingArguments' defaults (learning_rate is each trainer's own: SFTConfig 2e-5, RewardConfig 1e-4). */
export const TRAINING_ARGS_DEFAULTS: TrainingArgs = {
  learning_rate: 5e-5,
  per_device_train_batch_size: 8,
  max_steps: -1,
  num_train_epochs: 3,
  seed: 42,
  weight_decay: 0,
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  max_grad_norm: 1,
};

/** Checks the fields; throws naming the first bad one. */
export function validateTrainingArgs<T extends TrainingArgs>(a: T): T {
  const bad = (k: string, want: string) => {
    throw new RangeError(`${k} must be ${want}, got ${String((a as Record<string, unknown>)[k])}`);
  };
  if (!(a.learning_rate >= 0 && Number.isFinite(a.learning_rate))) bad('learning_rate', 'a number >= 0');
  if (!(Number.isInteger(a.per_device_train_batch_size) && a.per_device_train_batch_size > 0))
    bad('per_device_train_batch_size', 'a positive integer');
  if (!(Number.isInteger(a.max_steps) && (a.max_steps > 0 || a.max_steps === -1)))
    bad('max_steps', 'a positive integer or -1');
  if (!(a.num_train_epochs > 0 && Number.isFinite(a.num_train_epochs)))
    bad('num_train_epochs', 'a number > 0');
  if (!(Number.isInteger(a.seed) && a.seed >= 0)) bad('seed', 'a non-negative integer');
  if (!(a.weight_decay >= 0)) bad('weight_decay', 'a number >= 0');
  if (a.max_grad_norm !== null && !(a.max_grad_norm > 0)) bad('max_grad_norm', 'a number > 0 or none');
  return a;
}

/** Updates of a run over `rows` rows. */
export function totalSteps(rows: number, a: TrainingArgs): number {
  if (a.max_steps > 0) return a.max_steps;
  return Math.ceil(a.num_train_epochs * Math.ceil(rows / a.per_device_train_batch_size));
}

/** The linear schedule without warmup: the learning rate of update k (0-based) of `total`. */
export function linearLearningRate(lr: number, k: number, total: number): number {
  return (lr * Math.max(0, total - k)) / Math.max(1, total);
}

/**
 * The micro-batches (row indices) of every update, epoch after epoch (each a fresh seeded shuffle; an
 * epoch's last micro-batch, and last update, may be short), gradient_accumulation_steps micro-batches
 * an update, until `total` updates.
 */
export function* updateBatches(
  rows: number,
  a: Pick<TrainingArgs, 'per_device_train_batch_size' | 'seed'> & { gradient_accumulation_steps: number },
  total: number,
): Generator<number[][]> {
  const bs = a.per_device_train_batch_size;
  const ga = a.gradient_accumulation_steps;
  let made = 0;
  for (let epoch = 0; made < total; epoch++) {
    const order = shuffled(mulberry32(mixSeed(a.seed, epoch)), [...Array(rows).keys()]);
    const micro: number[][] = [];
    for (let i = 0; i < rows; i += bs) micro.push(order.slice(i, i + bs));
    for (let i = 0; i < micro.length && made < total; i += ga, made++) yield micro.slice(i, i + ga);
  }
}

/** Row indices of each update's batch: updateBatches without gradient accumulation. */
export function* batchOrder(rows: number, a: TrainingArgs, total: number): Generator<number[]> {
  for (const [batch] of updateBatches(rows, { ...a, gradient_accumulation_steps: 1 }, total)) yield batch;
}

/**
 * AdamW over a GPT-2's trained block (its whole parameter block, or its LoRA adapters' block when
 * adapters are attached before this is built), with clipping and the non-finite guard.
 */
export class BlockOptimizer {
  readonly opt: AdamW;
  private readonly normOut: GPUBuffer;
  private readonly normPartials: GPUBuffer;
  private readonly flag: GPUBuffer;

  constructor(
    private readonly gpu: Gpu,
    private readonly net: GPT2,
    private readonly args: TrainingArgs,
  ) {
    const N = net.trainTable.total;
    this.opt = new AdamW(gpu, N, {
      lr: args.learning_rate,
      beta1: args.adam_beta1,
      beta2: args.adam_beta2,
      eps: args.adam_epsilon,
      weightDecay: args.weight_decay,
    });
    this.normOut = gpu.createBuffer(8, 'optimizer.grad-norm');
    this.normPartials = gpu.createBuffer(gradNormPartialCount(N) * 4, 'optimizer.grad-norm-partials');
    this.flag = gpu.createBuffer(4, 'optimizer.nonfinite-flag');
  }

  /** Clips, checks, then updates with learning rate `lr`; returns the global norm before clipping. */
  async step(lr: number): Promise<number | null> {
    const grads = this.net.trainGrads();
    const N = this.net.trainTable.total;
    resetNonFiniteFlag(this.gpu, this.flag);
    findNonFinite(this.gpu, { flag: this.flag }, { inp: grads }, { N });
    let norm: number | null = null;
    if (this.args.max_grad_norm !== null) {
      clipGradNorm(
        this.gpu,
        { grads, out: this.normOut, partials: this.normPartials },
        { N, maxNorm: this.args.max_grad_norm },
      );
      norm = await readGradNorm(this.gpu, this.normOut);
    }
    const [flag] = await this.gpu.readU32(this.flag, 1);
    if (flag !== 0) throw new NonFiniteError(`non-finite gradient in ${await this.locate(grads)}`);
    this.opt.config = { ...this.opt.config, lr };
    this.opt.step(this.net.trainParams, grads);
    return norm;
  }

  dispose(): void {
    this.opt.dispose();
    for (const b of [this.normOut, this.normPartials, this.flag]) this.gpu.destroy(b);
  }

  private async locate(block: GPUBuffer): Promise<string> {
    const data = await this.gpu.readF32(block, this.net.trainTable.total);
    const bad = this.net.trainTable.entries
      .filter((e) => data.subarray(e.offset, e.offset + e.size).some((x) => !Number.isFinite(x)))
      .map((e) => e.name);
    return bad.length ? bad.slice(0, 5).join(', ') : 'an unknown tensor';
  }
}
