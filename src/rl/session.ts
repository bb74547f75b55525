/**
 * A training session: everything one PPO run holds on the GPU (policy with value head, frozen
 * reference, generator), its prompts and reward, and the trainer. The CLI (`rlhf-studio train`) and
 * the studio's Web Worker drive the same object.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { Generator } from '../model/generate.ts';
import { exportHFFolder, type HFFiles } from '../model/hf-folder.ts';
import { autoRowsPerPass } from '../model/memory.ts';
import { gpt2ParamTable, paramSlice, valueHeadParams } from '../model/param-table.ts';
import { mergeLora, savePeftAdapter } from '../model/peft.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { mixSeed, mulberry32 } from '../util/random.ts';
import type { PPOConfig } from './config.ts';
import { LORA_MICRO_BATCH, loraPolicyBlock, type SessionLora } from './lora-policy.ts';
import { PolicyWithValueHead, ReferenceModel } from './policy.ts';
import {
  PPOTrainer,
  TRL_SENTIMENT_ROLLOUT,
  type TrainerState,
  type RewardFn,
  type RolloutSettings,
  type StepResult,
} from './trainer.ts';

/** Where queries come from: batch `step` of `B` token lists (e.g. a PromptSet). */
export interface QuerySource {
  batch(step: number, B: number): { tokens: number[] }[];
  /** The longest query it gives, in tokens (sizes the forward passes; TRL's 7 when absent). */
  readonly longestQuery?: number;
}

/** TRL's gpt2-sentiment queries: LengthSampler(2, 8), so at most 7 tokens. */
const TRL_LONGEST_QUERY = 7;

/** How responses are sampled: TRL's example uses top_k 0, top_p 1, temperature 1. */
export interface SamplingSettings {
  temperature: number;
  topK: number;
  topP: number;
}

/** A second seed part that keeps compare's draws apart from training's. */
const COMPARE_STREAM = 0xc0c0;

export const TRL_SAMPLING: SamplingSettings = { temperature: 1, topK: 0, topP: 1 };

export interface SessionSpec {
  model: LoadedGPT2;
  reward: RewardFn;
  prompts: QuerySource;
  decode: (ids: number[]) => string;
  config: PPOConfig;
  rollout?: RolloutSettings;
  sampling?: SamplingSettings;
  /** Train LoRA adapters (peft) instead of every weight; the reference is then the base itself. */
  lora?: SessionLora | null;
  /**
   * Full fine-tuning: rows per forward/backward pass of the policy and the reference (the same update
   * in less memory, for one extra forward per part); null: whole mini-batches; absent: autoRowsPerPass
   * (parts only when a mini-batch's pass would hold more than ACTIVATION_BUDGET_BYTES).
   */
  rowsPerPass?: number | null;
}

/**
 * The model's parameters laid out with TRL's value head. A head from the file is kept; otherwise it
 * is initialised as torch's nn.Linear(n_embd, 1): weight and bias from U(-1/sqrt(C), 1/sqrt(C)).
 */
export function withValueHead(model: LoadedGPT2, seed: number): Float32Array {
  if (model.table.valueHead && model.valueHeadLoaded) return model.params;
  const table = gpt2ParamTable(model.config, { valueHead: true });
  const params = new Float32Array(table.total);
  params.set(model.params.subarray(0, Math.min(model.params.length, table.total)));
  const { vw, vb } = valueHeadParams(table);
  const bound = 1 / Math.sqrt(model.config.n_embd);
  const rng = mulberry32(mixSeed(seed, 0x7e4d));
  for (const e of [vw, vb]) {
    const x = paramSlice(params, e);
    for (let i = 0; i < x.length; i++) x[i] = (rng() * 2 - 1) * bound;
  }
  return params;
}

/** A session's state besides its weights and Adam's: the trainer's and the sampler's stream position. */
export interface SessionState {
  trainer: TrainerState;
  /** Generation calls made for training; call n samples with seed mixSeed(seed, n). */
  sampleCalls: number;
  /** The policy's training forwards (LoRA dropout masks are drawn per forward; 0 without dropout). */
  dropoutPasses: number;
}

export class TrainingSession {
  readonly config: GPT2Config;
  readonly policy: PolicyWithValueHead;
  readonly ref: ReferenceModel;
  readonly trainer: PPOTrainer;
  private readonly policyGen: Generator;
  private readonly refGen: Generator;
  private readonly sampling: SamplingSettings;
  /** Rows per forward/backward pass of the policy (null: whole mini-batches). */
  readonly rowsPerPass: number | null;

  constructor(
    readonly gpu: Gpu,
    readonly spec: SessionSpec,
  ) {
    const { model, config } = spec;
    this.config = model.config;
    const baseTotal = gpt2ParamTable(model.config).total;
    if (spec.lora) {
      // LoRA: a frozen base, and as the reference the same GPT2 with its adapters off (no second copy).
      const lora = loraPolicyBlock(model, spec.lora, config.seed);
      const base = model.params.subarray(0, baseTotal);
      const microBatch = spec.lora.microBatch ?? LORA_MICRO_BATCH;
      const opts = { learningRate: config.learning_rate, lora, seed: config.seed, microBatch };
      this.policy = new PolicyWithValueHead(gpu, model.config, base, opts);
      this.ref = new ReferenceModel(gpu, model.config, { sharedWith: this.policy.net }, microBatch);
      this.rowsPerPass = microBatch;
    } else {
      const params = withValueHead(model, config.seed);
      const rollout = spec.rollout ?? TRL_SENTIMENT_ROLLOUT;
      const T = (spec.prompts.longestQuery ?? TRL_LONGEST_QUERY) + rollout.responseMaxLength - 1;
      const micro =
        spec.rowsPerPass === undefined
          ? autoRowsPerPass(model.config, config.mini_batch_size, T)
          : spec.rowsPerPass;
      this.policy = new PolicyWithValueHead(gpu, model.config, params, {
        learningRate: config.learning_rate,
        microBatch: micro,
      });
      // The reference is the starting policy without its value head; it shares no buffer with the policy.
      this.ref = new ReferenceModel(gpu, model.config, params.slice(0, baseTotal), micro);
      this.rowsPerPass = micro;
    }
    this.policyGen = new Generator(this.policy.net);
    this.refGen = new Generator(this.ref.generatorModel);
    this.sampling = spec.sampling ?? TRL_SAMPLING;
    this.trainer = new PPOTrainer(
      {
        gpu,
        policy: this.policy,
        ref: this.ref,
        generate: (queries, maxNew) => this.sample(this.policyGen, queries, maxNew),
        reward: spec.reward,
        decode: spec.decode,
      },
      config,
      spec.rollout ?? TRL_SENTIMENT_ROLLOUT,
    );
  }

  /** Whether the policy trains LoRA adapters on a frozen base (checkpoints do not cover that yet). */
  get lora(): boolean {
    return Boolean(this.spec.lora);
  }

  get step(): number {
    return this.trainer.stepCount;
  }

  /** One PPO step on the next batch of prompts. */
  async trainStep(): Promise<StepResult> {
    const B = this.spec.config.batch_size;
    const queries = this.spec.prompts.batch(this.trainer.stepCount, B).map((p) => p.tokens);
    return this.trainer.step(queries);
  }

  /**
   * The reference model's and the policy's continuations of one prompt, and their rewards; with
   * `against: 'policy'`, `ref` is a second, independent sample of the policy instead.
   */
  async compare(
    prompt: number[],
    maxNewTokens: number,
    against: CompareAgainst = 'reference',
  ): Promise<{ ref: Continuation; policy: Continuation }> {
    const other = against === 'policy' ? this.policyGen : this.refGen;
    const [refIds] = await this.sample(other, [prompt], maxNewTokens, 'compare');
    const [policyIds] = await this.sample(this.policyGen, [prompt], maxNewTokens, 'compare');
    const texts = [refIds, policyIds].map((ids) => this.spec.decode(prompt) + this.spec.decode(ids));
    const [refScore, policyScore] = await this.spec.reward(texts);
    return {
      ref: { ids: refIds, text: this.spec.decode(refIds), score: refScore },
      policy: { ids: policyIds, text: this.spec.decode(policyIds), score: policyScore },
    };
  }

  /**
   * The fine-tuned policy as a Hugging Face folder (value head included, as TRL saves it); with LoRA
   * the peft adapter folder (adapter_config.json, adapter_model.safetensors, value head beside).
   */
  async exportFolder(): Promise<HFFiles> {
    const adapters = this.policy.net.adapters;
    if (adapters)
      return savePeftAdapter(adapters.table, await adapters.readParams(), {
        baseModel: this.spec.lora?.baseModel,
      });
    return exportHFFolder(this.config, await this.policy.readParams(), { valueHead: true });
  }

  /**
   * The policy's GPT-2 weights as one block laid out by gpt2ParamTable(config): with LoRA the base
   * with the adapters merged in (W + scaling (B A)^T); without, the trained block minus its value head.
   */
  async policyWeights(): Promise<Float32Array> {
    const adapters = this.policy.net.adapters;
    const total = gpt2ParamTable(this.config).total;
    if (!adapters) return (await this.policy.readParams()).slice(0, total);
    const base = await this.policy.net.readParams();
    return mergeLora(this.config, base, adapters.table, await adapters.readParams());
  }

  /** With LoRA: the base with the adapters merged in, as a Hugging Face folder. */
  async exportMergedFolder(): Promise<HFFiles> {
    if (!this.policy.net.adapters) return this.exportFolder();
    return exportHFFolder(this.config, await this.policyWeights());
  }

  dispose(): void {
    this.policyGen.dispose();
    this.refGen.dispose();
    this.policy.dispose();
    this.ref.dispose();
  }

  captureState(): SessionState {
    return {
      trainer: this.trainer.captureState(),
      sampleCalls: this.sampleCalls,
      dropoutPasses: this.policy.dropoutPasses,
    };
  }

  restoreState(s: SessionState): void {
    this.trainer.restoreState(s.trainer);
    this.sampleCalls = s.sampleCalls;
    this.policy.dropoutPasses = s.dropoutPasses;
  }

  private sampleCalls = 0;
  private compareCalls = 0;

  /** Training draws seeds (seed, n); compare draws (seed, COMPARE_STREAM, n), so it never shifts training's stream. */
  private async sample(
    gen: Generator,
    queries: number[][],
    maxNew: number,
    stream: 'train' | 'compare' = 'train',
  ): Promise<number[][]> {
    const seed = this.spec.config.seed;
    const r = await gen.generate(queries, {
      maxNewTokens: maxNew,
      temperature: this.sampling.temperature,
      topK: this.sampling.topK,
      topP: this.sampling.topP,
      seed:
        stream === 'train'
          ? mixSeed(seed, this.sampleCalls++)
          : mixSeed(seed, COMPARE_STREAM, this.compareCalls++),
      // TRL's generate keeps a response up to and including its first EOS.
      stopAtEos: true,
    });
    return r.ids;
  }
}

/** What the policy's continuation is set against: the reference's, or another of its own samples. */
export type CompareAgainst = 'reference' | 'policy';

export interface Continuation {
  ids: number[];
  text: string;
  score: number;
}
