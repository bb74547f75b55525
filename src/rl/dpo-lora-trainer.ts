/**
 * DPO with LoRA (TRL's DPOTrainer given a peft model): the policy is the base GPT-2 with LoRA
 * adapters (peft's init: A kaiming-uniform, B zero, so the policy starts equal to the base), only the
 * adapters train, and the reference is the same base with the adapters switched off: one copy of the
 * base weights serves both (TRL's `null_ref_context`). Updates, micro-batches, the schedule, clipping
 * and the stats are DPOTrainer's (dpo-trainer.ts); the reference forward runs before the policy's,
 * whose activations backward needs.
 *
 * lora_dropout applies to the policy's training forward only (peft's dropout is off in eval mode and
 * in the adapters-off reference pass): each micro-batch's pass draws its masks from its own seed,
 * mixSeed(seed, 0x10a, pass), and backward recomputes them from it (lora.ts).
 * `adapter`: a peft adapter to continue (its settings are `loraConfig`), instead of peft's init.
 */
import { layoutPairBatch, type PairBatch, type TokenizedPair } from '../data/preferences.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { exportHFFolder, type HFFiles } from '../model/hf-folder.ts';
import { Lora } from '../model/lora.ts';
import { initLoraParams, loraTable, type LoraConfig } from '../model/lora-table.ts';
import { mergeLora, savePeftAdapter, type LoadedAdapter } from '../model/peft.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { CompletionHead } from '../model/completion-head.ts';
import { sequenceLogps } from '../model/sequence-logps.ts';
import { mixSeed, mulberry32 } from '../util/random.ts';
import { dpoTotalSteps, validateDPOConfig, type DPOConfig } from './dpo-config.ts';
import { DPOPolicy, splitPairs, type PairValues } from './dpo-policy.ts';
import { dpoUpdate, type DPOStepResult } from './dpo-trainer.ts';
import { BlockOptimizer, updateBatches } from './training-args.ts';

export class LoraDPOTrainer {
  readonly totalSteps: number;
  private readonly policy: DPOPolicy;
  private readonly lora: Lora;
  private readonly optimizer: BlockOptimizer;
  private readonly batches: Generator<number[][]>;
  private readonly average: boolean;
  /** The LM head of the log-prob passes that take no gradient (reference, display). */
  private readonly head: CompletionHead;
  private stepsDone = 0;
  private microDone = 0;
  private dropoutPasses = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly base: LoadedGPT2,
    loraConfig: LoraConfig,
    private readonly pairs: readonly TokenizedPair[],
    readonly config: DPOConfig,
    adapter: LoadedAdapter | null = null,
  ) {
    validateDPOConfig(config);
    if (pairs.length === 0) throw new RangeError('DPO needs at least one preference pair');
    const table = loraTable(base.config, loraConfig);
    if (adapter && (adapter.table.total !== table.total || adapter.table.valueHead))
      throw new RangeError('LoraDPOTrainer: the adapter was loaded with other settings or with a value head');
    this.policy = new DPOPolicy(gpu, base.config, base.params);
    this.lora = new Lora(
      gpu,
      base.config,
      loraConfig,
      adapter ? adapter.params.slice() : initLoraParams(table, mulberry32(mixSeed(config.seed, 0x10a1))),
    );
    this.policy.net.attachLora(this.lora);
    this.optimizer = new BlockOptimizer(gpu, this.policy.net, config);
    this.average = config.loss_type === 'ipo';
    this.head = new CompletionHead(gpu);
    this.totalSteps = dpoTotalSteps(pairs.length, config);
    this.batches = updateBatches(pairs.length, config, this.totalSteps);
  }

  get done(): boolean {
    return this.stepsDone >= this.totalSteps;
  }

  /** The reference's log-probs: the base, adapters off. */
  async refLogps(batch: PairBatch): Promise<PairValues> {
    const net = this.policy.net;
    net.adaptersEnabled = false;
    try {
      return splitPairs((await sequenceLogps(net, this.head, batch, { average: this.average })).logps);
    } finally {
      net.adaptersEnabled = true;
    }
  }

  /** The policy's log-probs of some pairs (no update): for display. */
  async policyLogps(pairs: readonly TokenizedPair[]): Promise<PairValues> {
    return splitPairs(
      (await sequenceLogps(this.policy.net, this.head, this.layout(pairs), { average: this.average })).logps,
    );
  }

  async step(): Promise<DPOStepResult> {
    const next = this.batches.next();
    if (next.done) throw new Error('LoraDPOTrainer: every update of the run has been taken');
    const micro = next.value;
    const result = await dpoUpdate(
      {
        config: this.config,
        pairs: this.pairs,
        policy: this.policy,
        optimizer: this.optimizer,
        layout: (pairs) => this.layout(pairs),
        refLogps: (_idx, batch) => this.refLogps(batch),
        forward: (batch) =>
          this.policy.forward(batch, this.average, mixSeed(this.config.seed, 0x10a, this.dropoutPasses++)),
      },
      micro,
      { done: this.stepsDone, microDone: this.microDone, totalSteps: this.totalSteps },
    );
    this.stepsDone++;
    this.microDone += micro.length;
    return result;
  }

  /** Pairs as a batch, padded with EOS (a token of the vocabulary; padding is outside the loss). */
  layout(pairs: readonly TokenizedPair[]): PairBatch {
    const { eos_token_id: eos, vocab_size: V } = this.base.config;
    return layoutPairBatch(pairs, eos !== null && eos < V ? eos : 0);
  }

  /** The adapters' block, laid out by their table. */
  async readAdapter(): Promise<Float32Array> {
    return this.gpu.readF32(this.lora.params, this.lora.table.total);
  }

  /** A peft adapter folder: adapter_config.json and adapter_model.safetensors. */
  async exportAdapter(baseModel: string | null): Promise<HFFiles> {
    return savePeftAdapter(this.lora.table, await this.readAdapter(), { baseModel });
  }

  /** The base with the adapters merged in, as a Hugging Face folder. */
  async exportMerged(): Promise<HFFiles> {
    const merged = mergeLora(this.base.config, this.base.params, this.lora.table, await this.readAdapter());
    return exportHFFolder(this.base.config, merged);
  }

  dispose(): void {
    this.head.dispose();
    this.optimizer.dispose();
    this.policy.dispose();
    this.lora.dispose();
  }
}
