/**
 * Before/after evaluation, as the end of TRL's gpt2-sentiment notebook does it: for the same queries,
 * the reference and each tuned model continue every query (sampled with TRL's generation settings:
 * min_length -1, top_k 0, top_p 1.0, do_sample True, pad_token_id eos), the reward scores
 * query + response text, and per model the mean, median and std of the reward and the mean KL to the
 * reference are reported, with one row per sample.
 *
 *   gen_len = LengthSampler(4, 16)()          drawn once per query, shared by every model
 *   response = model.generate(query, max_new_tokens=gen_len, **gen_kwargs)
 *   reward = score(decode(query) + decode(response))
 *   kl = sum over response tokens t of (log p_model(r_t | ..) - log p_ref(r_t | ..))
 *
 * The KL is TRL's objective/kl estimate for one sample (kl_penalty 'kl'), averaged over the samples.
 * Every model draws its tokens from the same keys: batch c of the queries uses the generation seed
 * mixSeed(seed, SEED_STREAM, c), and a draw depends on (seed, step, row) only (src/ops/sample.ts), so
 * two copies of one model give identical responses. Models run one after another; only the reference
 * and the model being evaluated are on the GPU at once.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { Generator } from '../model/generate.ts';
import { gpt2ParamTable } from '../model/param-table.ts';
import type { LoadedGPT2 } from '../model/safetensors.ts';
import { mixSeed, mulberry32, randRange } from '../util/random.ts';
import { mean, stdUnbiased } from './core.ts';
import { ReferenceModel } from './policy.ts';
import { layoutRollout } from './rollout.ts';
import { TRL_SAMPLING, type SamplingSettings } from './session.ts';
import type { RewardFn } from './trainer.ts';

/** Seed streams of the evaluation's draws (response lengths, sampling), apart from training's. */
const LENGTH_STREAM = 0x65766c;
const SEED_STREAM = 0x657667;

export interface EvalSettings {
  /** Seeds the response lengths and the sampling keys. */
  seed: number;
  /** Response lengths are uniform in [min, max), TRL's LengthSampler(4, 16). */
  responseMinLength: number;
  responseMaxLength: number;
  sampling: SamplingSettings;
  /** Queries per generate / forward batch (the same for every model, so the sampling keys are). */
  batchSize: number;
  /** Token that pads rows and stops a response (GPT-2: EOS 50256, TRL's pad_token_id). */
  padId: number;
}

/** TRL's notebook: LengthSampler(4, 16), sampling with top_k 0, top_p 1, temperature 1. */
export const TRL_EVAL: EvalSettings = {
  seed: 0,
  responseMinLength: 4,
  responseMaxLength: 16,
  sampling: TRL_SAMPLING,
  batchSize: 16,
  padId: 50256,
};

/** A model to evaluate: its name in reports, and its weights (a value head, if any, is ignored). */
export interface EvalModel {
  name: string;
  model: LoadedGPT2;
}

export interface EvalInput {
  /** The reference (first row of every report, KL 0 by definition). */
  ref: EvalModel;
  models: EvalModel[];
  /** Query token lists (e.g. a PromptSet's first queries). */
  queries: number[][];
  reward: RewardFn;
  decode: (ids: number[]) => string;
}

/** Reward statistics of one model over the samples. */
export interface ModelSummary {
  name: string;
  mean: number;
  median: number;
  /** Unbiased (n - 1), as TRL's env/reward_std and pandas' std. */
  std: number;
  /** Mean over samples of the summed per-token KL to the reference (TRL's objective/kl). */
  kl: number;
  /** Mean response length in tokens. */
  responseTokens: number;
}

/** One model's continuation of one query. */
export interface EvalResponse {
  /** The response's token ids (ending with EOS where the model stopped on it). */
  ids: number[];
  text: string;
  reward: number;
  kl: number;
  tokens: number;
}

export interface EvalRow {
  query: string;
  /** The drawn max_new_tokens of this query. */
  maxNewTokens: number;
  /** In the order of EvalReport.models: the reference first. */
  responses: EvalResponse[];
}

export interface EvalReport {
  settings: EvalSettings;
  /** The reference, then the evaluated models in input order. */
  models: ModelSummary[];
  rows: EvalRow[];
}

export interface EvalProgress {
  model: string;
  /** Queries done for this model. */
  done: number;
  total: number;
}

/** Median of xs (the mean of the two middle values for an even count, as pandas). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The max_new_tokens of each of n queries: LengthSampler(min, max) drawn once per query. */
export function evalResponseLengths(
  n: number,
  s: Pick<EvalSettings, 'seed' | 'responseMinLength' | 'responseMaxLength'>,
): number[] {
  if (!(
    Number.isInteger(s.responseMinLength) &&
    s.responseMinLength >= 1 &&
    s.responseMaxLength > s.responseMinLength
  )) {
    throw new Error(`bad response length range [${s.responseMinLength}, ${s.responseMaxLength})`);
  }
  const rng = mulberry32(mixSeed(s.seed, LENGTH_STREAM));
  return Array.from({ length: n }, () => randRange(rng, s.responseMinLength, s.responseMaxLength));
}

/** The parameters of `model` without a value head: what a ReferenceModel holds. */
function baseParams(model: LoadedGPT2): Float32Array {
  const total = gpt2ParamTable(model.config).total;
  return model.params.length === total ? model.params : model.params.slice(0, total);
}

/** Why `cfg` cannot be compared token by token with the reference's, or null. */
function mismatch(cfg: GPT2Config, ref: GPT2Config): string | null {
  if (cfg.vocab_size !== ref.vocab_size)
    return `vocab_size ${cfg.vocab_size}, the reference has ${ref.vocab_size}`;
  return null;
}

/** Responses (token lists) and per-sample KL sums of one model (`net`) against the reference. */
async function runModel(
  net: ReferenceModel,
  ref: ReferenceModel,
  queries: number[][],
  lens: number[],
  s: EvalSettings,
  onBatch: (done: number) => void,
): Promise<{ responses: number[][]; kl: number[] }> {
  const gen = new Generator(net.net);
  const responses: number[][] = [];
  const kl: number[] = [];
  try {
    for (let c = 0, q0 = 0; q0 < queries.length; c++, q0 += s.batchSize) {
      const qs = queries.slice(q0, q0 + s.batchSize);
      const r = await gen.generate(qs, {
        maxNewTokens: lens.slice(q0, q0 + qs.length),
        temperature: s.sampling.temperature,
        topK: s.sampling.topK,
        topP: s.sampling.topP,
        seed: mixSeed(s.seed, SEED_STREAM, c),
        // TRL's generate keeps a response up to and including its first EOS (pad_token_id = eos).
        stopAtEos: true,
        eosId: s.padId,
      });
      const batch = layoutRollout(qs, r.ids, s.padId);
      const W = batch.T - 1;
      // (B, T-1) log-probs of the next token; the response mask picks the response tokens.
      const lp = await net.logprobs(batch);
      const lpRef = net === ref ? lp : await ref.logprobs(batch);
      for (let b = 0; b < batch.B; b++) {
        let sum = 0;
        for (let t = 0; t < W; t++) {
          const i = b * W + t;
          if (batch.responseMask[i]) sum += lp[i] - lpRef[i];
        }
        kl.push(sum);
      }
      responses.push(...r.ids);
      onBatch(q0 + qs.length);
    }
  } finally {
    gen.dispose();
  }
  return { responses, kl };
}

/** Summary statistics of one model's column of the rows. */
export function summarize(name: string, responses: readonly EvalResponse[]): ModelSummary {
  const rewards = responses.map((r) => r.reward);
  return {
    name,
    mean: mean(rewards),
    median: median(rewards),
    std: stdUnbiased(rewards),
    kl: mean(responses.map((r) => r.kl)),
    responseTokens: mean(responses.map((r) => r.tokens)),
  };
}

/**
 * Evaluates the reference and every model of `input` on the same queries (see the file comment).
 * Throws naming the model when one cannot be compared with the reference (another vocabulary).
 */
export async function evaluate(
  gpu: Gpu,
  input: EvalInput,
  settings: EvalSettings = TRL_EVAL,
  onProgress?: (p: EvalProgress) => void,
): Promise<EvalReport> {
  const { queries } = input;
  if (queries.length === 0) throw new Error('evaluate: no queries');
  if (!(Number.isInteger(settings.batchSize) && settings.batchSize >= 1))
    throw new Error(`evaluate: batchSize ${settings.batchSize} is not a positive integer`);
  const all = [input.ref, ...input.models];
  for (const m of input.models) {
    const why = mismatch(m.model.config, input.ref.model.config);
    if (why) throw new Error(`evaluate: ${m.name} cannot be compared with the reference: ${why}`);
  }
  const lens = evalResponseLengths(queries.length, settings);
  const columns: EvalResponse[][] = [];
  const ref = new ReferenceModel(gpu, input.ref.model.config, baseParams(input.ref.model));
  try {
    for (const [k, m] of all.entries()) {
      const net = k === 0 ? ref : new ReferenceModel(gpu, m.model.config, baseParams(m.model));
      try {
        const progress = (done: number) => onProgress?.({ model: m.name, done, total: queries.length });
        const out = await runModel(net, ref, queries, lens, settings, progress);
        const texts = out.responses.map((r, i) => input.decode(queries[i]) + input.decode(r));
        const rewards: number[] = [];
        for (let i = 0; i < texts.length; i += settings.batchSize)
          rewards.push(...(await input.reward(texts.slice(i, i + settings.batchSize))));
        if (rewards.length !== texts.length)
          throw new Error(`evaluate: the reward gave ${rewards.length} scores for ${texts.length} texts`);
        columns.push(
          out.responses.map((r, i) => ({
            ids: r,
            text: input.decode(r),
            reward: rewards[i],
            kl: out.kl[i],
            tokens: r.length,
          })),
        );
      } finally {
        if (net !== ref) net.dispose();
      }
    }
  } finally {
    ref.dispose();
  }
  return {
    settings,
    models: all.map((m, k) => summarize(m.name, columns[k])),
    rows: queries.map((q, i) => ({
      query: input.decode(q),
      maxNewTokens: lens[i],
      responses: columns.map((col) => col[i]),
    })),
  };
}
