/**
 * The PPO trainer: TRL 0.9.6's PPOTrainer.step as an orchestration of the pure maths in this folder
 * and the policy/reference models on the GPU. One `step(queries)`:
 *   rollout   responses sampled by the policy (lengths from LengthSampler(min, max)), scored by the reward
 *   forward   old log-probs and values of the policy, log-probs of the reference (no gradients)
 *   rewards   compute_rewards (per-token KL penalty, score on the last response token), GAE advantages
 *   optimise  ppo_epochs passes over shuffled minibatches, gradient accumulation, Adam
 *   stats     TRL's names (src/rl/stats.ts), then the KL controller's update
 * A NaN or Inf in a score, a loss or a gradient stops the step before the weights change.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { mulberry32, randRange, shuffled, type StatefulRng } from '../util/random.ts';
import { computeAdvantages } from './advantages.ts';
import { TRL_SENTIMENT, type PPOConfig, type RolloutSpec } from './config.ts';
import { AdaptiveKLController, makeKLController, type KLController } from './kl-controller.ts';
import { ppoLoss, ppoLossBackward } from './loss.ts';
import { NonFiniteError, type ForwardOut, type PolicyWithValueHead, type ReferenceModel } from './policy.ts';
import { computeRewards } from './rewards.ts';
import { layoutRollout, pickRows, selectRows, type RolloutBatch } from './rollout.ts';
import { RunningMoments, scaleScores } from './scores.ts';
import { envStats, recordStepStats, type LossStats, type ScalarStatName } from './stats.ts';

/** Samples `maxNewTokens` tokens after each query with the policy; returns only the new tokens. */
export type GenerateFn = (queries: number[][], maxNewTokens: number) => Promise<number[][]>;
/** One score per text (e.g. a sentiment logit). */
export type RewardFn = (texts: string[]) => Promise<number[]>;

export interface RolloutSettings {
  /** Response lengths are drawn uniformly from [min, max) per sample, TRL's LengthSampler. */
  responseMinLength: number;
  responseMaxLength: number;
  /** Token that pads rows (GPT-2: EOS 50256). */
  padId: number;
}

/** GPT-2's EOS, which pads rows. */
export const GPT2_PAD_ID = 50256;

/** The trainer's rollout settings from a RolloutSpec (the query lengths belong to the prompt sampler). */
export function rolloutSettings(spec: RolloutSpec, padId = GPT2_PAD_ID): RolloutSettings {
  return { responseMinLength: spec.response_min_length, responseMaxLength: spec.response_max_length, padId };
}

export const TRL_SENTIMENT_ROLLOUT: RolloutSettings = rolloutSettings(TRL_SENTIMENT.rollout);

export interface Sample {
  query: string;
  response: string;
  score: number;
}

export interface StepResult {
  step: number;
  stats: Partial<Record<ScalarStatName, number>>;
  samples: Sample[];
}

export interface TrainerParts {
  gpu: Gpu;
  policy: PolicyWithValueHead;
  ref: ReferenceModel;
  generate: GenerateFn;
  reward: RewardFn;
  decode: (ids: number[]) => string;
}

function assertFinite(what: string, xs: ArrayLike<number>): void {
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) throw new NonFiniteError(`non-finite ${what} (element ${i}: ${xs[i]})`);
  }
}

/**
 * What the next step depends on besides the weights and Adam's state: a checkpoint saves it, and a
 * trainer restored from it continues the same stream of draws as one that never stopped.
 */
export interface TrainerState {
  /** PPO steps done. */
  step: number;
  /** The KL controller's coefficient (adaptive control changes it every step). */
  klCoef: number;
  /** The mulberry32 state behind response lengths and minibatch order. */
  rng: number;
  /** RunningMoments of the scores (use_score_scaling). */
  scoreMoments: { mean: number; std: number; var: number; count: number };
}

export class PPOTrainer {
  readonly kl: KLController;
  private readonly running = new RunningMoments();
  private readonly rng: StatefulRng;
  stepCount = 0;

  constructor(
    private readonly parts: TrainerParts,
    readonly config: PPOConfig,
    readonly rollout: RolloutSettings = TRL_SENTIMENT_ROLLOUT,
  ) {
    if (config.kl_penalty === 'full') {
      // 'full' needs both models' whole next-token distributions per token; the trainer keeps
      // only per-token log-probs (ppo-math computes it from given log-prob tables).
      throw new Error("kl_penalty 'full' is not supported by the trainer: use 'kl', 'abs' or 'mse'");
    }
    this.kl = makeKLController(config);
    this.rng = mulberry32(config.seed);
  }

  captureState(): TrainerState {
    const { mean, std, var: variance, count } = this.running;
    return {
      step: this.stepCount,
      klCoef: this.kl.value,
      rng: this.rng.state,
      scoreMoments: { mean, std, var: variance, count },
    };
  }

  restoreState(s: TrainerState): void {
    if (this.kl instanceof AdaptiveKLController) this.kl.value = s.klCoef;
    else if (s.klCoef !== this.kl.value)
      throw new Error(
        `the saved KL coefficient ${s.klCoef} differs from the fixed init_kl_coef ${this.kl.value}`,
      );
    this.stepCount = s.step;
    this.rng.state = s.rng;
    Object.assign(this.running, s.scoreMoments);
  }

  /** One PPO step on `queries` (batch_size token lists). */
  async step(queries: number[][]): Promise<StepResult> {
    const c = this.config;
    if (queries.length !== c.batch_size)
      throw new Error(`step: ${queries.length} queries, batch_size is ${c.batch_size}`);
    const t0 = performance.now();
    await this.parts.policy.assertFiniteParams();
    const { responseMinLength: lo, responseMaxLength: hi, padId } = this.rollout;
    const lens = queries.map(() => randRange(this.rng, lo, hi));
    const generated = await this.parts.generate(queries, Math.max(...lens));
    const responses = generated.map((g, i) => g.slice(0, lens[i]));
    // As TRL's example: query and response decoded apart, the reward scores their concatenation.
    const queryTexts = queries.map((q) => this.parts.decode(q));
    const responseTexts = responses.map((r) => this.parts.decode(r));
    const texts = queryTexts.map((q, i) => q + responseTexts[i]);
    const rawScores = await this.parts.reward(texts);
    assertFinite('reward score', rawScores);
    const tGen = performance.now();

    const batch = layoutRollout(queries, responses, padId);
    const { B, T } = batch;
    const W = T - 1;
    const old = await this.forwardAll(batch);
    assertFinite('policy log-prob', old.logprobs);
    assertFinite('value', old.values);
    const tForward = performance.now();

    const scores = scaleScores(rawScores, this.running, c);
    const klCoef = this.kl.value;
    const masks = batch.responseMask;
    const r = computeRewards(
      { scores, logprobs: old.logprobs, refLogprobs: old.refLogprobs, masks },
      { B, T: W },
      { klCoef, klPenalty: c.kl_penalty },
    );
    const tRewards = performance.now();
    const adv = computeAdvantages(
      { values: old.values, rewards: r.rewards, masks },
      { B, T: W },
      { gamma: c.gamma, lam: c.lam, whitenRewards: c.whiten_rewards },
    );
    const tAdvantages = performance.now();

    const trainStats = await this.optimise(batch, old, adv);
    const tOptimise = performance.now();

    const step = recordStepStats(
      {
        scores,
        logprobs: old.logprobs,
        refLogprobs: old.refLogprobs,
        nonScoreRewards: r.nonScoreRewards,
        kls: r.kls,
        masks,
        queryLens: batch.queryLens,
        responseLens: batch.responseLens,
        trainStats,
        klCoef,
      },
      { B, T: W },
    );
    this.kl.update(step.scalars['objective/kl'], c.batch_size);
    const tEnd = performance.now();
    this.stepCount++;
    return {
      step: this.stepCount - 1,
      stats: {
        ...envStats(rawScores),
        ...step.scalars,
        'ppo/learning_rate': c.learning_rate,
        'time/ppo/forward_pass': (tForward - tGen) / 1000,
        'time/ppo/compute_rewards': (tRewards - tForward) / 1000,
        'time/ppo/compute_advantages': (tAdvantages - tRewards) / 1000,
        'time/ppo/optimize_step': (tOptimise - tAdvantages) / 1000,
        'time/ppo/calc_stats': (tEnd - tOptimise) / 1000,
        'time/ppo/total': (tEnd - t0) / 1000,
      },
      samples: queryTexts.map((query, i) => ({ query, response: responseTexts[i], score: rawScores[i] })),
    };
  }

  /** Policy log-probs and values, reference log-probs, all (B, T-1), in forward batches of mini_batch_size rows. */
  private async forwardAll(batch: RolloutBatch) {
    const { B, T } = batch;
    const W = T - 1;
    const logprobs = new Float32Array(B * W);
    const values = new Float32Array(B * W);
    const refLogprobs = new Float32Array(B * W);
    const fbs = this.config.mini_batch_size;
    for (let s = 0; s < B; s += fbs) {
      const rows = Array.from({ length: Math.min(fbs, B - s) }, (_, i) => s + i);
      const sub = selectRows(batch, rows);
      const p = await this.parts.policy.forward(sub);
      logprobs.set(p.logprobs, s * W);
      values.set(p.values!, s * W);
      refLogprobs.set(await this.parts.ref.logprobs(sub), s * W);
    }
    return { logprobs, values, refLogprobs };
  }

  /** ppo_epochs over shuffled minibatches; one optimiser step per gradient_accumulation_steps minibatches. */
  private async optimise(
    batch: RolloutBatch,
    old: { logprobs: Float32Array; values: Float32Array },
    adv: { values: Float64Array; advantages: Float64Array; returns: Float64Array },
  ): Promise<LossStats[]> {
    const c = this.config;
    const W = batch.T - 1;
    const policy = this.parts.policy;
    const settings = {
      cliprange: c.cliprange,
      cliprangeValue: c.cliprange_value,
      vfCoef: c.vf_coef,
      ratioThreshold: c.ratio_threshold,
    };
    const gas = c.gradient_accumulation_steps;
    const backwardBatch = c.mini_batch_size * gas;
    const all: LossStats[] = [];
    for (let epoch = 0; epoch < c.ppo_epochs; epoch++) {
      const order = shuffled(
        this.rng,
        Array.from({ length: c.batch_size }, (_, i) => i),
      );
      for (let bb = 0; bb < c.batch_size; bb += backwardBatch) {
        policy.zeroGrads();
        let policykl = 0;
        for (let mb = bb; mb < bb + backwardBatch; mb += c.mini_batch_size) {
          const rows = order.slice(mb, mb + c.mini_batch_size);
          const sub = selectRows(batch, rows);
          const now: ForwardOut = await policy.forward(sub, { train: true });
          const inputs = {
            oldLogprobs: pickRows(old.logprobs, W, rows),
            values: pickRows(adv.values, W, rows),
            logprobs: now.logprobs,
            vpreds: now.values!,
            masks: sub.responseMask,
            advantages: pickRows(adv.advantages, W, rows),
            returns: pickRows(adv.returns, W, rows),
            entropy: now.entropy,
          };
          const dims = { B: rows.length, T: W };
          const loss = ppoLoss(inputs, dims, settings);
          if (!Number.isFinite(loss.pgLoss) || !Number.isFinite(loss.vfLoss)) {
            throw new NonFiniteError(`non-finite PPO loss (policy ${loss.pgLoss}, value ${loss.vfLoss})`);
          }
          const grads = ppoLossBackward(inputs, dims, settings, 1 / gas);
          policy.backward(grads.dlogprobs, grads.dvpreds);
          all.push(loss.stats);
          policykl = loss.stats['policy/policykl'];
        }
        await policy.step({ maxGradNorm: c.max_grad_norm });
        if (c.early_stopping && policykl > 1.5 * c.target_kl) return all;
      }
    }
    return all;
  }
}
