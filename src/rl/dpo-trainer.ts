/**
 * The DPO trainer: TRL 0.19's DPOTrainer on transformers' Trainer loop, as an orchestration of the
 * pure loss (dpo.ts), the models (dpo-policy.ts) and the optimizer (training-args.ts). One update:
 *   batches    the next GA micro-batches of per_device_train_batch_size pairs from this epoch's
 *              seeded shuffle (an epoch's last micro-batch, and last update, may be short)
 *   reference  sequence log-probs of the frozen reference, or those computed once before training
 *              (precompute_ref_log_probs: then the reference's weights are freed)
 *   policy     sequence log-probs, the loss, and backward of loss / (micro-batches in this update)
 *   update     gradient clipping to max_grad_norm, AdamW at the scheduled learning rate
 *   stats      TRL's names (dpo-stats.ts), averaged over the micro-batches, plus learning_rate,
 *              grad_norm (before clipping) and epoch (micro-batches taken / micro-batches per epoch)
 * A NaN or Inf in a gradient stops the update before the weights change.
 */
import { layoutPairBatch, type PairBatch, type TokenizedPair } from '../data/preferences.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { dpoLoss } from './dpo.ts';
import {
  dpoTotalSteps,
  lossSettings,
  scheduledLearningRate,
  validateDPOConfig,
  type DPOConfig,
} from './dpo-config.ts';
import { DPOPolicy, DPOReference, type PairValues, type PolicyForward } from './dpo-policy.ts';
import { dpoBatchStats, meanBatchStats, type DPOBatchStats, type DPOStats } from './dpo-stats.ts';
import { BlockOptimizer, updateBatches } from './training-args.ts';

export interface DPOStepResult {
  /** 1-based update number. */
  step: number;
  stats: DPOStats;
}

/** What one update takes from a trainer (full or LoRA): how it lays out, refers and runs forward. */
export interface DPOUpdateParts {
  config: DPOConfig;
  pairs: readonly TokenizedPair[];
  policy: Pick<DPOPolicy, 'zeroGrads' | 'backward'>;
  optimizer: BlockOptimizer;
  layout: (pairs: TokenizedPair[]) => PairBatch;
  /** The reference's sequence log-probs of the micro-batch `idx` (pair indices), laid out as `batch`. */
  refLogps: (idx: number[], batch: PairBatch) => Promise<PairValues>;
  /** The policy's forward on `batch`, keeping what backward needs. */
  forward: (batch: PairBatch) => Promise<PolicyForward>;
}

/**
 * One update over `micro` (the update's micro-batches), after `done` updates of `totalSteps` and
 * `microDone` micro-batches: per micro-batch the reference, then the policy's forward, the loss and
 * backward of loss / (micro-batches in this update); then AdamW at the scheduled learning rate.
 */
export async function dpoUpdate(
  p: DPOUpdateParts,
  micro: number[][],
  { done, microDone, totalSteps }: { done: number; microDone: number; totalSteps: number },
): Promise<DPOStepResult> {
  const lr = scheduledLearningRate(p.config, done, totalSteps);
  const settings = lossSettings(p.config);
  const stats: DPOBatchStats[] = [];
  p.policy.zeroGrads();
  for (const idx of micro) {
    const batch = p.layout(idx.map((j) => p.pairs[j]));
    const ref = await p.refLogps(idx, batch);
    const fwd = await p.forward(batch);
    const loss = dpoLoss(
      {
        policyChosen: fwd.logps.chosen,
        policyRejected: fwd.logps.rejected,
        refChosen: ref.chosen,
        refRejected: ref.rejected,
      },
      settings,
    );
    const scale = 1 / micro.length; // the Trainer's loss / current_gradient_accumulation_steps
    p.policy.backward({
      chosen: loss.dPolicyChosen.map((d) => d * scale),
      rejected: loss.dPolicyRejected.map((d) => d * scale),
    });
    stats.push(dpoBatchStats(loss, fwd.logps, fwd.meanLogits));
  }
  const gradNorm = await p.optimizer.step(lr);
  const microPerEpoch = Math.ceil(p.pairs.length / p.config.per_device_train_batch_size);
  return {
    step: done + 1,
    stats: {
      ...meanBatchStats(stats),
      learning_rate: lr,
      grad_norm: gradNorm ?? NaN,
      epoch: (microDone + micro.length) / microPerEpoch,
    },
  };
}

export class DPOTrainer {
  readonly totalSteps: number;
  private readonly policy: DPOPolicy;
  private readonly optimizer: BlockOptimizer;
  private ref: DPOReference | null;
  /** Precomputed reference log-probs, by pair index (precompute_ref_log_probs). */
  private refTable: PairValues | null = null;
  private readonly batches: Generator<number[][]>;
  private stepsDone = 0;
  private microDone = 0;
  private readonly average: boolean;

  /** `ref` null: the reference is the initial policy. Call init() before the first step. */
  constructor(
    gpu: Gpu,
    { policy, ref }: { policy: LoadedGPT2; ref: LoadedGPT2 | null },
    private readonly pairs: readonly TokenizedPair[],
    readonly config: DPOConfig,
  ) {
    validateDPOConfig(config);
    if (pairs.length === 0) throw new RangeError('DPO needs at least one preference pair');
    const refModel = ref ?? policy;
    if (refModel.config.vocab_size !== policy.config.vocab_size)
      throw new RangeError(`the reference's vocabulary differs from the policy's`);
    this.policy = new DPOPolicy(gpu, policy.config, policy.params);
    this.optimizer = new BlockOptimizer(gpu, this.policy.net, config);
    this.ref = new DPOReference(gpu, refModel.config, refModel.params);
    this.average = config.loss_type === 'ipo';
    this.totalSteps = dpoTotalSteps(pairs.length, config);
    this.batches = updateBatches(pairs.length, config, this.totalSteps);
  }

  /** With precompute_ref_log_probs: the reference log-probs of every pair, then the reference is freed. */
  async init(): Promise<void> {
    if (!this.config.precompute_ref_log_probs || this.refTable || !this.ref) return;
    const n = this.pairs.length;
    const table = { chosen: new Float64Array(n), rejected: new Float64Array(n) };
    const bs = this.config.per_device_train_batch_size;
    for (let i = 0; i < n; i += bs) {
      const idx = [...Array(Math.min(bs, n - i)).keys()].map((k) => i + k);
      const lp = await this.ref.logps(layoutPairBatch(idx.map((j) => this.pairs[j])), this.average);
      idx.forEach((j, k) => {
        table.chosen[j] = lp.chosen[k];
        table.rejected[j] = lp.rejected[k];
      });
    }
    this.refTable = table;
    this.ref.dispose();
    this.ref = null;
  }

  get done(): boolean {
    return this.stepsDone >= this.totalSteps;
  }

  /** One update; throws when the run is done. */
  async step(): Promise<DPOStepResult> {
    if (this.config.precompute_ref_log_probs && !this.refTable) await this.init();
    const next = this.batches.next();
    if (next.done) throw new Error('DPOTrainer: every update of the run has been taken');
    const micro = next.value;
    const result = await dpoUpdate(
      {
        config: this.config,
        pairs: this.pairs,
        policy: this.policy,
        optimizer: this.optimizer,
        layout: (pairs) => layoutPairBatch(pairs),
        refLogps: (idx, batch) => this.refLogps(idx, batch),
        forward: (batch) => this.policy.forward(batch, this.average),
      },
      micro,
      { done: this.stepsDone, microDone: this.microDone, totalSteps: this.totalSteps },
    );
    this.stepsDone++;
    this.microDone += micro.length;
    return result;
  }

  /** The policy's weights, laid out by its parameter table. */
  async readParams(): Promise<Float32Array> {
    return this.policy.readParams();
  }

  dispose(): void {
    this.policy.dispose();
    this.optimizer.dispose();
    this.ref?.dispose();
    this.ref = null;
  }

  private async refLogps(idx: number[], batch: PairBatch): Promise<PairValues> {
    if (this.refTable) {
      const t = this.refTable;
      return {
        chosen: Float64Array.from(idx, (j) => t.chosen[j]),
        rejected: Float64Array.from(idx, (j) => t.rejected[j]),
      };
    }
    if (!this.ref) throw new Error('DPOTrainer: no reference');
    return this.ref.logps(batch, this.average);
  }
}
