/**
 * Reward-model training on the GPU: TRL 1.x RewardTrainer's loop for one device (RewardConfig
 * names; TrainingArguments' optimizer, linear schedule and clipping from training-args.ts). Each
 * update scores a batch of pairs (chosen rows, then rejected rows, one forward), takes
 * rewardModelLoss and its gradient through the score head and the body.
 *
 * With LoRA (`lora`): adapters on the frozen body (peft's init, A kaiming-uniform, B zero) and the score
 * head trained in full from the model's own, as peft's SEQ_CLS task (modules_to_save: score); the
 * folder is then peft's adapter folder. lora_dropout applies to training forwards only (peft's dropout
 * is off in eval mode): update n draws its masks from mixSeed(seed, 0x10a, n), and backward
 * recomputes them from it (lora.ts).
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import type { HFFiles } from '../model/hf-folder.ts';
import { initLoraParams, loraTable, type LoraConfig, type LoraTable } from '../model/lora-table.ts';
import { gpt2ParamTable, paramEntry, paramSlice, SCORE_HEAD_PARAM } from '../model/param-table.ts';
import { mergeLora, savePeftAdapter } from '../model/peft.ts';
import { mixSeed, mulberry32 } from '../util/random.ts';
import { exportGPT2RewardFolder } from '../reward/gpt2-reward-folder.ts';
import { rewardModelLoss, type RewardStats } from './reward-model-loss.ts';
import { rewardBatchRows, type RewardPair } from './reward-model-data.ts';
import { GPT2RewardModel } from './reward-model.ts';
import {
  BlockOptimizer,
  batchOrder,
  linearLearningRate,
  totalSteps,
  TRAINING_ARGS_DEFAULTS,
  validateTrainingArgs,
  type TrainingArgs,
} from './training-args.ts';

export interface RewardConfig extends TrainingArgs {
  /** Pairs with a side longer than this are dropped (TRL filters them); null: no limit. */
  max_length: number | null;
  /** Weight of mean((r_c + r_r)^2) in the loss; null: off. */
  center_rewards_coefficient: number | null;
}

/** TRL 1.x RewardConfig's defaults (learning_rate 1e-4, max_length 1024) over TrainingArguments'. */
export const REWARD_DEFAULTS: RewardConfig = {
  ...TRAINING_ARGS_DEFAULTS,
  learning_rate: 1e-4,
  max_length: 1024,
  center_rewards_coefficient: null,
};

export type RewardStepStats = RewardStats & { learning_rate: number; grad_norm: number; epoch: number };

export class RewardModelTrainer {
  readonly rm: GPT2RewardModel;
  readonly total: number;
  step = 0;
  private readonly optimizer: BlockOptimizer;
  private readonly order: Generator<number[]>;
  private readonly loraTable: LoraTable | null;
  private readonly baseParams: Float32Array | null;

  constructor(
    readonly gpu: Gpu,
    readonly modelConfig: GPT2Config,
    params: Float32Array,
    readonly padTokenId: number | null,
    private readonly pairs: readonly RewardPair[],
    readonly config: RewardConfig,
    lora: LoraConfig | null = null,
    private readonly baseModel: string | null = null,
  ) {
    validateTrainingArgs(config);
    if (pairs.length === 0) throw new Error('reward model: no pairs left to train on');
    this.loraTable = lora ? loraTable(modelConfig, lora, { scoreHead: true }) : null;
    let block = null;
    if (this.loraTable) {
      const t = this.loraTable;
      block = initLoraParams(t, mulberry32(mixSeed(config.seed, 0x10a1)));
      const from = paramEntry(gpt2ParamTable(modelConfig, { scoreHead: true }), SCORE_HEAD_PARAM);
      paramSlice(block, paramEntry(t, SCORE_HEAD_PARAM)).set(paramSlice(params, from));
    }
    this.rm = new GPT2RewardModel(
      gpu,
      modelConfig,
      params,
      padTokenId,
      lora && block ? { config: lora, params: block } : null,
    );
    this.baseParams = lora ? params : null;
    this.optimizer = new BlockOptimizer(gpu, this.rm.net, config);
    this.total = totalSteps(pairs.length, config);
    this.order = batchOrder(pairs.length, config, this.total);
  }

  get done(): boolean {
    return this.step >= this.total;
  }

  async trainStep(): Promise<RewardStepStats> {
    const next = this.order.next();
    if (next.done) throw new Error('reward model: the run is over');
    const batch = next.value.map((i) => this.pairs[i]);
    const n = batch.length;
    const lr = linearLearningRate(this.config.learning_rate, this.step, this.total);
    const dropoutSeed = this.loraTable ? mixSeed(this.config.seed, 0x10a, this.step) : null;
    const scores = await this.rm.forward(rewardBatchRows(batch), { dropoutSeed });
    const out = rewardModelLoss(scores.subarray(0, n), scores.subarray(n), {
      centerRewardsCoefficient: this.config.center_rewards_coefficient,
    });
    this.rm.net.zeroGrads();
    this.rm.backward(Float32Array.from([...out.dchosen, ...out.drejected]));
    const norm = await this.optimizer.step(lr);
    this.step++;
    const epoch = (this.step * this.config.per_device_train_batch_size) / this.pairs.length;
    return { ...out.stats, learning_rate: lr, grad_norm: norm ?? NaN, epoch };
  }

  /** The stats over `pairs` (no update), in batches of per_device_train_batch_size. */
  async evaluate(pairs: readonly RewardPair[]): Promise<RewardStats> {
    const chosen: number[] = [];
    const rejected: number[] = [];
    const bs = this.config.per_device_train_batch_size;
    for (let i = 0; i < pairs.length; i += bs) {
      const batch = pairs.slice(i, i + bs);
      const scores = await this.rm.forward(rewardBatchRows(batch));
      chosen.push(...scores.subarray(0, batch.length));
      rejected.push(...scores.subarray(batch.length));
    }
    return rewardModelLoss(chosen, rejected, {
      centerRewardsCoefficient: this.config.center_rewards_coefficient,
    }).stats;
  }

  /** The trained model as a Hugging Face folder; with LoRA, peft's adapter folder. */
  async exportFolder(): Promise<HFFiles> {
    if (this.loraTable)
      return savePeftAdapter(this.loraTable, await this.readAdapter(), { baseModel: this.baseModel });
    return exportGPT2RewardFolder(this.modelConfig, await this.rm.net.readParams(), {
      padTokenId: this.padTokenId,
    });
  }

  /** LoRA: the base with the adapters merged in and the trained score head, as a reward-model folder. */
  async exportMerged(): Promise<HFFiles> {
    if (!this.loraTable || !this.baseParams) throw new Error('reward model: exportMerged needs LoRA');
    const merged = mergeLora(this.modelConfig, this.baseParams, this.loraTable, await this.readAdapter(), {
      scoreHead: true,
    });
    return exportGPT2RewardFolder(this.modelConfig, merged, { padTokenId: this.padTokenId });
  }

  private async readAdapter(): Promise<Float32Array> {
    return this.gpu.readF32(this.rm.net.trainParams, this.loraTable!.total);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.rm.dispose();
  }
}
