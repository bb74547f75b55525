/**
 * One PPO step as TRL's gpt2-sentiment example takes it, on a random-init GPT-2 and with a stand-in
 * reward, for timing and profiling: TRL's PPOConfig defaults (batch_size 128, mini_batch_size 128,
 * ppo_epochs 4) unless overridden, queries of 2..7 tokens, responses of 4..15 (TRL's LengthSampler
 * ranges in the example). The reward is a fixed function of the text (no reward model), so only the
 * policy, the reference and generation are on the GPU. scripts/bench_torch.py times the same step
 * in PyTorch.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { initGPT2Params } from '../model/init.ts';
import { gpt2ParamTable } from '../model/param-table.ts';
import { TRL_DEFAULTS, type PPOConfig } from '../rl/config.ts';
import { TrainingSession } from '../rl/session.ts';
import { TRL_SENTIMENT_ROLLOUT } from '../rl/trainer.ts';
import { mulberry32, randRange } from '../util/random.ts';

export interface PpoStepShape {
  batch_size: number;
  mini_batch_size: number;
  ppo_epochs: number;
  /** Query lengths are drawn from [queryMin, queryMax). */
  queryMin: number;
  queryMax: number;
  /** Response lengths are drawn from [responseMin, responseMax). */
  responseMin: number;
  responseMax: number;
  /** Rows per forward/backward pass (SessionSpec.rowsPerPass); absent: autoRowsPerPass. */
  rowsPerPass?: number | null;
}

/** TRL's gpt2-sentiment example: PPOConfig defaults, LengthSampler(2, 8) queries, (4, 16) responses. */
export const TRL_PPO_SHAPE: Readonly<PpoStepShape> = Object.freeze({
  batch_size: TRL_DEFAULTS.batch_size,
  mini_batch_size: TRL_DEFAULTS.mini_batch_size,
  ppo_epochs: TRL_DEFAULTS.ppo_epochs,
  queryMin: 2,
  queryMax: 8,
  responseMin: TRL_SENTIMENT_ROLLOUT.responseMinLength,
  responseMax: TRL_SENTIMENT_ROLLOUT.responseMaxLength,
});

/** The longest row a step of this shape can lay out: longest query + longest response. */
export function ppoMaxT(s: PpoStepShape): { Q: number; R: number; T: number } {
  const Q = s.queryMax - 1;
  const R = s.responseMax - 1;
  return { Q, R, T: Q + R };
}

/** A training session on random weights with random queries; `step()` runs one PPO step. */
export function ppoBenchSession(gpu: Gpu, cfg: GPT2Config, shape: PpoStepShape, seed = 0): TrainingSession {
  const table = gpt2ParamTable(cfg);
  const params = initGPT2Params(cfg, { seed });
  const config: PPOConfig = {
    ...TRL_DEFAULTS,
    seed,
    batch_size: shape.batch_size,
    mini_batch_size: shape.mini_batch_size,
    ppo_epochs: shape.ppo_epochs,
  };
  const rng = mulberry32(seed + 1);
  return new TrainingSession(gpu, {
    model: { config: cfg, table, params, valueHeadLoaded: false },
    // A score in [-1, 1) from the text's characters: cheap, deterministic, varied.
    reward: async (texts) => texts.map((t) => ((hash(t) % 2000) - 1000) / 1000),
    prompts: {
      batch: (_step, B) =>
        Array.from({ length: B }, () => ({
          tokens: Array.from({ length: randRange(rng, shape.queryMin, shape.queryMax) }, () =>
            Math.floor(rng() * Math.min(cfg.vocab_size, 50000)),
          ),
        })),
      longestQuery: shape.queryMax - 1,
    },
    decode: (ids) => ids.join(' '),
    config,
    rollout: {
      responseMinLength: shape.responseMin,
      responseMaxLength: shape.responseMax,
      padId: cfg.eos_token_id !== null && cfg.eos_token_id < cfg.vocab_size ? cfg.eos_token_id : 0,
    },
    ...(shape.rowsPerPass !== undefined && { rowsPerPass: shape.rowsPerPass }),
  });
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}
