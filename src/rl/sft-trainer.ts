/**
 * SFT on the GPU: TRL 1.x's SFTTrainer loop for one device (SFTConfig names; TrainingArguments'
 * optimizer, linear schedule and clipping from training-args.ts). The trainer orchestrates: batches
 * from the tokenized examples, sftStep for loss and gradients, BlockOptimizer for the update.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { GPT2 } from '../model/gpt2.ts';
import { exportHFFolder, type HFFiles } from '../model/hf-folder.ts';
import {
  layoutSFTBatch,
  SFT_TOKENIZE_DEFAULTS,
  type SFTExample,
  type SFTTokenizeConfig,
} from './sft-data.ts';
import { sftStep, type SFTStats } from './sft.ts';
import {
  BlockOptimizer,
  batchOrder,
  linearLearningRate,
  totalSteps,
  TRAINING_ARGS_DEFAULTS,
  validateTrainingArgs,
  type TrainingArgs,
} from './training-args.ts';

export type SFTConfig = TrainingArgs & SFTTokenizeConfig;

/** TRL 1.x SFTConfig's defaults (learning_rate 2e-5) over TrainingArguments'. */
export const SFT_DEFAULTS: SFTConfig = {
  ...TRAINING_ARGS_DEFAULTS,
  ...SFT_TOKENIZE_DEFAULTS,
  learning_rate: 2e-5,
};

export type SFTStepStats = SFTStats & { learning_rate: number; grad_norm: number; epoch: number };

export class SFTTrainer {
  readonly net: GPT2;
  readonly total: number;
  step = 0;
  private readonly optimizer: BlockOptimizer;
  private readonly order: Generator<number[]>;

  constructor(
    readonly gpu: Gpu,
    readonly modelConfig: GPT2Config,
    params: Float32Array,
    private readonly examples: readonly SFTExample[],
    readonly config: SFTConfig,
  ) {
    validateTrainingArgs(config);
    if (examples.length === 0) throw new Error('SFT: no examples left to train on');
    this.net = new GPT2(gpu, modelConfig, params);
    this.optimizer = new BlockOptimizer(gpu, this.net, config);
    this.total = totalSteps(examples.length, config);
    this.order = batchOrder(examples.length, config, this.total);
  }

  get done(): boolean {
    return this.step >= this.total;
  }

  /** One update; its stats. */
  async trainStep(): Promise<SFTStepStats> {
    const next = this.order.next();
    if (next.done) throw new Error('SFT: the run is over');
    const pad = this.modelConfig.eos_token_id ?? 0;
    const batch = layoutSFTBatch(
      next.value.map((i) => this.examples[i]),
      pad,
    );
    const lr = linearLearningRate(this.config.learning_rate, this.step, this.total);
    this.net.zeroGrads();
    const stats = await sftStep(this.net, batch);
    const norm = await this.optimizer.step(lr);
    this.step++;
    const epoch = (this.step * this.config.per_device_train_batch_size) / this.examples.length;
    return { ...stats, learning_rate: lr, grad_norm: norm ?? NaN, epoch };
  }

  async exportFolder(): Promise<HFFiles> {
    return exportHFFolder(this.modelConfig, await this.net.readParams());
  }

  dispose(): void {
    this.optimizer.dispose();
    this.net.dispose();
  }
}
