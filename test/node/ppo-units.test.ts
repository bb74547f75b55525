/**
 * Unit tests of src/rl: KL controllers, masked statistics, config validation, score scaling,
 * 'full' KL, loss gradients and step stats. Sources of expected numbers:
 *  - "hand": derived in the comment next to the check;
 *  - test/fixtures/ppo/extra/*.json, written by test/fixtures/scripts/make_ppo_extra.py:
 *    loss-grads (torch autograd through shared/reference/ppo_ref.py), full-kl (TRL's F.kl_div
 *    expression), scores (TRL's RunningMoments in torch float32), step-stats (TRL's
 *    record_step_stats over ppo_ref minibatch stats).
 * Tolerance, unless stated: |ours - ref| <= 1e-6 + 1e-5 * |ref|.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import {
  AdaptiveKLController,
  clipByValue,
  computeRewards,
  entropyFromLogits,
  envStats,
  FixedKLController,
  flattenDict,
  logprobsFromLogits,
  makeKLController,
  maskedMean,
  maskedVar,
  maskedWhiten,
  ppoLoss,
  ppoLossBackward,
  PPOConfigError,
  recordStepStats,
  RunningMoments,
  scaleScores,
  TRL_DEFAULTS,
  validatePPOConfig,
  whiten,
  type LossStats,
  type NumArray,
  type PPOConfig,
  type PPOLossInputs,
} from '../../src/rl/index.ts';

const EXTRA = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'test/fixtures/ppo/extra');
const fixture = <T>(name: string): T => JSON.parse(readFileSync(join(EXTRA, name), 'utf8')) as T;
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

/** Every element within atol + rtol*|ref|; returns the max |err|. */
function close(actual: NumArray, expected: NumArray, what: string, atol = 1e-6, rtol = 1e-5): number {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) {
      expect.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (|err| ${err})`);
    }
    worst = Math.max(worst, err);
  }
  return worst;
}

describe('KL controllers', () => {
  test('adaptive: value *= 1 + clip(kl/target - 1, ±0.2) * n/horizon (hand)', () => {
    const c = new AdaptiveKLController(0.2, 6, 10000);
    c.update(9, 256); // 9/6 - 1 = 0.5 -> clipped to 0.2: 0.2 * (1 + 0.2*256/1e4) = 0.201024
    close([c.value], [0.201024], 'above target');
    c.update(3, 256); // 3/6 - 1 = -0.5 -> -0.2: * (1 - 0.00512)
    close([c.value], [0.201024 * 0.99488], 'below target');
    c.update(6.6, 100); // 0.1 unclipped: * (1 + 0.001)
    close([c.value], [0.201024 * 0.99488 * 1.001], 'inside the clip');
    c.update(NaN, 1);
    expect(c.value).toBeNaN(); // np.clip keeps NaN, as TRL
  });

  test('fixed ignores updates; makeKLController follows adap_kl_ctrl', () => {
    const f = new FixedKLController(0.05);
    f.update(100, 1000);
    expect(f.value).toBe(0.05);
    expect(makeKLController({ ...TRL_DEFAULTS, adap_kl_ctrl: false })).toBeInstanceOf(FixedKLController);
    const a = makeKLController(TRL_DEFAULTS);
    expect(a).toBeInstanceOf(AdaptiveKLController);
    expect(a.value).toBe(0.2);
  });
});

describe('masked statistics', () => {
  // values [1, 2, 3, 100] with the last masked out: mean 2, squared deviations 1, 0, 1.
  const x = [1, 2, 3, 100];
  const m = [1, 1, 1, 0];

  test('maskedMean and maskedVar with and without Bessel (hand)', () => {
    expect(maskedMean(x, m)).toBe(2);
    expect(maskedVar(x, m)).toBe(1); // 2/3 * 3/2
    close([maskedVar(x, m, false)], [2 / 3], 'biased');
    expect(() => maskedVar(x, [0, 0, 0, 0])).toThrow(/sum of the mask is zero/);
    expect(maskedVar(x, [0, 1, 0, 0])).toBeNaN(); // 0 * 1/0, as TRL
  });

  test('maskedWhiten, with and without the mean shift (hand)', () => {
    const s = 1 / Math.sqrt(1 + 1e-8);
    close(maskedWhiten(x, m), [-s, 0, s, 98 * s], 'shift_mean');
    close(maskedWhiten(x, m, { shiftMean: false }), [2 - s, 2, 2 + s, 2 + 98 * s], 'no shift');
    close(whiten([1, 2, 3]), [-s, 0, s], 'unmasked whiten');
  });

  test('whitened values have masked mean 0 and unbiased masked variance ~1', () => {
    const v = Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.3) * 5 + i * 0.1);
    const mask = v.map((_, i) => (i % 3 === 0 ? 0 : 1));
    const w = maskedWhiten(v, mask);
    expect(Math.abs(maskedMean(w, mask))).toBeLessThan(1e-12);
    expect(Math.abs(maskedVar(w, mask) - 1)).toBeLessThan(1e-6); // 1 - 1e-8/var exactly
  });

  test('clipByValue, entropy, logprobs (hand)', () => {
    expect(Array.from(clipByValue([-3, 0.5, 3], [-1, -1, -1], 1))).toEqual([-1, 0.5, 1]);
    // uniform logits over V=5: entropy log 5, every log-prob -log 5
    close(entropyFromLogits([2, 2, 2, 2, 2], { N: 1, V: 5 }), [Math.log(5)], 'entropy');
    // logits [0, ln 3] -> probabilities 1/4, 3/4
    close(logprobsFromLogits([0, Math.log(3)], [1], { N: 1, V: 2 }), [Math.log(0.75)], 'logprob');
    expect(() => logprobsFromLogits([0, 1], [2], { N: 1, V: 2 })).toThrow(/outside/);
  });

  test('flattenDict joins keys with / and refuses keys holding it', () => {
    const isNum = (v: unknown): v is number => typeof v === 'number';
    expect(flattenDict({ loss: { policy: 1, value: 2 }, a: 3 }, isNum)).toEqual({
      'loss/policy': 1,
      'loss/value': 2,
      a: 3,
    });
    expect(() => flattenDict({ 'a/b': 1 }, isNum)).toThrow(/separator/);
  });
});

describe('PPOConfig', () => {
  test('TRL_DEFAULTS are TRL 0.9.6 PPOConfig() defaults, and validate', () => {
    expect(TRL_DEFAULTS).toMatchObject({
      learning_rate: 1.41e-5,
      batch_size: 128,
      mini_batch_size: 128,
      gradient_accumulation_steps: 1,
      ppo_epochs: 4,
      init_kl_coef: 0.2,
      adap_kl_ctrl: true,
      kl_penalty: 'kl',
      target: 6,
      horizon: 10000,
      gamma: 1,
      lam: 0.95,
      cliprange: 0.2,
      cliprange_value: 0.2,
      vf_coef: 0.1,
      target_kl: 1,
      ratio_threshold: 10,
      max_grad_norm: null,
      score_clip: null,
      whiten_rewards: false,
    });
    expect(validatePPOConfig()).toEqual(TRL_DEFAULTS);
    const c = validatePPOConfig({
      batch_size: 16,
      mini_batch_size: 4,
      gradient_accumulation_steps: 2,
      score_clip: 3,
    });
    expect(c.batch_size).toBe(16);
    expect(c.learning_rate).toBe(1.41e-5);
  });

  test.each<[Record<string, unknown>, string, RegExp]>([
    [{ learning_rate: NaN }, 'learning_rate', /finite number > 0/],
    [{ learning_rate: -1e-5 }, 'learning_rate', /> 0/],
    [{ init_kl_coef: -0.1 }, 'init_kl_coef', />= 0/],
    [{ gamma: 1.5 }, 'gamma', /\[0, 1\]/],
    [{ lam: -0.1 }, 'lam', /\[0, 1\]/],
    [{ cliprange: 0 }, 'cliprange', /\(0, 1\)/],
    [{ cliprange_value: Infinity }, 'cliprange_value', /finite/],
    [{ vf_coef: -1 }, 'vf_coef', />= 0/],
    [{ target: 0 }, 'target', /> 0/],
    [{ horizon: NaN }, 'horizon', /finite/],
    [{ ratio_threshold: 0.5 }, 'ratio_threshold', />= 1/],
    [{ batch_size: 0 }, 'batch_size', /integer >= 1/],
    [{ mini_batch_size: 2.5 }, 'mini_batch_size', /integer/],
    [{ ppo_epochs: -4 }, 'ppo_epochs', /integer/],
    [
      { batch_size: 10, mini_batch_size: 4 },
      'batch_size',
      /multiple of mini_batch_size \* gradient_accumulation_steps = 4/,
    ],
    [{ batch_size: 16, mini_batch_size: 8, gradient_accumulation_steps: 4 }, 'batch_size', /= 32/],
    [{ max_grad_norm: 0 }, 'max_grad_norm', /> 0/],
    [{ score_clip: -1 }, 'score_clip', /> 0/],
    [{ kl_penalty: 'kl2' }, 'kl_penalty', /one of kl, abs, mse, full/],
    [{ whiten_rewards: 'yes' }, 'whiten_rewards', /true or false/],
    [{ learning_rate: '1e-5' }, 'learning_rate', /finite number/],
    [{ learningRate: 1e-5 }, 'learningRate', /unknown field/],
  ])('refuses %o naming %s', (partial, field, message) => {
    let err: unknown;
    try {
      validatePPOConfig(partial);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PPOConfigError);
    expect((err as PPOConfigError).field).toBe(field);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`PPOConfig.${field}`);
  });

  test('undefined fields keep their defaults', () => {
    const partial: Partial<PPOConfig> = { learning_rate: undefined };
    expect(validatePPOConfig(partial).learning_rate).toBe(1.41e-5);
  });
});

describe('score scaling (fixture: TRL RunningMoments, torch float32)', () => {
  interface Step {
    scores: number[];
    scaled: number[];
    batch_mean_std: [number, number] | null;
    running: { mean: number; std: number; var: number; count: number };
  }
  interface Run {
    use_score_scaling: boolean;
    use_score_norm: boolean;
    score_clip: number | null;
    steps: Step[];
  }
  const { runs } = fixture<{ runs: Run[] }>('scores.json');
  for (const run of runs) {
    test(`scaling=${run.use_score_scaling} norm=${run.use_score_norm} clip=${run.score_clip}`, () => {
      const running = new RunningMoments();
      for (const [i, step] of run.steps.entries()) {
        const before = { ...running };
        const out = scaleScores(step.scores, running, run);
        // float32 in TRL vs float64 here: relative 1e-5 covers float32 rounding.
        close(out, step.scaled, `step ${i} scores`);
        close(
          [running.mean, running.std, running.var],
          [step.running.mean, step.running.std, step.running.var],
          `step ${i} running`,
        );
        if (step.batch_mean_std) {
          close(
            Object.values(new RunningMoments().update(step.scores)),
            step.batch_mean_std,
            `step ${i} batch moments`,
          );
        } else {
          expect({ ...running }).toEqual(before);
        }
      }
    });
  }
});

describe("kl_penalty 'full' (fixture: TRL F.kl_div expression)", () => {
  const f = fixture<{
    B: number;
    T: number;
    V: number;
    kl_coef: number;
    inputs: Record<'logprob' | 'ref_logprob' | 'masks' | 'scores', unknown>;
    expected: Record<'kls' | 'non_score_rewards' | 'rewards', unknown>;
  }>('full-kl.json');

  test('computeRewards with [B,T,V] log-probs', () => {
    const r = computeRewards(
      {
        scores: flat(f.inputs.scores),
        logprobs: flat(f.inputs.logprob),
        refLogprobs: flat(f.inputs.ref_logprob),
        masks: flat(f.inputs.masks),
      },
      { B: f.B, T: f.T, V: f.V },
      { klCoef: f.kl_coef, klPenalty: 'full' },
    );
    close(r.kls, flat(f.expected.kls), 'kls');
    close(r.nonScoreRewards, flat(f.expected.non_score_rewards), 'non_score_rewards');
    close(r.rewards, flat(f.expected.rewards), 'rewards');
  });

  test('a row without response tokens is refused', () => {
    expect(() =>
      computeRewards(
        { scores: [1, 2], logprobs: [0, 0, 0, 0], refLogprobs: [0, 0, 0, 0], masks: [0, 1, 0, 0] },
        { B: 2, T: 2 },
        { klCoef: 0.1, klPenalty: 'kl' },
      ),
    ).toThrow(/row 1/);
  });
});

type Cfg = { cliprange: number; cliprange_value: number; vf_coef: number; ratio_threshold: number };
const settingsOf = (c: Cfg) => ({
  cliprange: c.cliprange,
  cliprangeValue: c.cliprange_value,
  vfCoef: c.vf_coef,
  ratioThreshold: c.ratio_threshold,
});

describe('ppoLossBackward (fixture: torch autograd through ppo_ref.ppo_loss)', () => {
  interface GradCase {
    name: string;
    config: Cfg;
    B: number;
    T: number;
    inputs: Record<string, number[][]>;
    expected: { loss: number; dlogprobs: number[][]; dvpreds: number[][] };
  }
  const { cases } = fixture<{ cases: GradCase[] }>('loss-grads.json');
  const inputsOf = (c: GradCase): PPOLossInputs => ({
    oldLogprobs: flat(c.inputs.old_logprobs),
    values: flat(c.inputs.values),
    logprobs: flat(c.inputs.new_logprobs),
    vpreds: flat(c.inputs.vpreds),
    masks: flat(c.inputs.masks),
    advantages: flat(c.inputs.advantages),
    returns: flat(c.inputs.returns),
    entropy: new Float64Array(c.B * c.T),
  });

  for (const c of cases) {
    test(`${c.name}: gradients, ties included`, () => {
      const dims = { B: c.B, T: c.T };
      const loss = ppoLoss(inputsOf(c), dims, settingsOf(c.config));
      close([loss.loss], [c.expected.loss], 'loss');
      const g = ppoLossBackward(inputsOf(c), dims, settingsOf(c.config));
      close(g.dlogprobs, flat(c.expected.dlogprobs), 'dlogprobs', 1e-9);
      close(g.dvpreds, flat(c.expected.dvpreds), 'dvpreds', 1e-9);
    });
  }

  test('agrees with central differences of ppoLoss away from ties', () => {
    const c = cases[0];
    const inp = inputsOf(c);
    const dims = { B: c.B, T: c.T };
    const s = settingsOf(c.config);
    // move the tied rows off their ties, then difference each input
    const lp = Float64Array.from(inp.logprobs, (x, i) => x + 1e-3 * Math.sin(i + 1));
    const vp = Float64Array.from(inp.vpreds, (x, i) => x + 1e-3 * Math.cos(i + 1));
    const at = { ...inp, logprobs: lp, vpreds: vp };
    const g = ppoLossBackward(at, dims, s);
    const h = 1e-6;
    for (const [key, grad] of [
      ['logprobs', g.dlogprobs],
      ['vpreds', g.dvpreds],
    ] as const) {
      const fd = new Float64Array(grad.length);
      for (let i = 0; i < grad.length; i++) {
        const plus = Float64Array.from(at[key]);
        const minus = Float64Array.from(at[key]);
        plus[i] += h;
        minus[i] -= h;
        fd[i] =
          (ppoLoss({ ...at, [key]: plus }, dims, s).loss - ppoLoss({ ...at, [key]: minus }, dims, s).loss) /
          (2 * h);
      }
      close(grad, fd, `d/d${key} vs central differences`, 1e-7, 1e-4);
    }
  });
});

describe('recordStepStats (fixture: TRL record_step_stats over ppo_ref minibatches)', () => {
  interface Minibatch {
    rows: number[];
    new_logprobs: number[][];
    vpreds: number[][];
  }
  const f = fixture<{
    B: number;
    T: number;
    config: Cfg & { kl_coef: number };
    inputs: Record<string, unknown>;
    batch: Record<'non_score_rewards' | 'kls' | 'values' | 'advantages' | 'returns', number[][]>;
    minibatches: Minibatch[];
    expected: { kl_dist: number[]; scalars: Record<string, number> };
  }>('step-stats.json');
  /** The rows `idx` of a nested [B, ...] array, flattened. */
  const rows = (x: unknown, idx: number[]): number[] => idx.flatMap((r) => flat((x as unknown[])[r]));

  test('loss stats per minibatch, averaged; objective/*, ppo/*, tokens/*', () => {
    const { T } = f;
    const V = (f.inputs.logits as number[][][])[0][0].length;
    const trainStats: LossStats[] = f.minibatches.map((mb) => {
      const r2 = (x: unknown): number[] => rows(x, mb.rows);
      return ppoLoss(
        {
          oldLogprobs: r2(f.inputs.logprobs),
          values: r2(f.batch.values),
          logits: r2(f.inputs.logits),
          vpreds: flat(mb.vpreds),
          logprobs: flat(mb.new_logprobs),
          masks: r2(f.inputs.masks),
          advantages: r2(f.batch.advantages),
          returns: r2(f.batch.returns),
        },
        { B: mb.rows.length, T, V },
        settingsOf(f.config),
      ).stats;
    });
    const s = recordStepStats(
      {
        scores: flat(f.inputs.scores),
        logprobs: flat(f.inputs.logprobs),
        refLogprobs: flat(f.inputs.ref_logprobs),
        nonScoreRewards: flat(f.batch.non_score_rewards),
        kls: flat(f.batch.kls),
        masks: flat(f.inputs.masks),
        queryLens: flat(f.inputs.query_lens),
        responseLens: flat(f.inputs.response_lens),
        trainStats,
        klCoef: f.config.kl_coef,
      },
      { B: f.B, T },
    );
    const names = Object.keys(f.expected.scalars).sort();
    expect(Object.keys(s.scalars).sort()).toEqual(names);
    close(
      names.map((k) => s.scalars[k as keyof typeof s.scalars]),
      names.map((k) => f.expected.scalars[k]),
      'step scalars',
    );
    close(s.dists['objective/kl_dist'], f.expected.kl_dist, 'kl_dist');
  });

  test('envStats: mean and unbiased std of raw scores (hand)', () => {
    // [1, 2, 3, 4]: mean 2.5, squared deviations sum 5, std sqrt(5/3)
    const e = envStats([1, 2, 3, 4]);
    close([e['env/reward_mean'], e['env/reward_std']], [2.5, Math.sqrt(5 / 3)], 'env');
  });
});
