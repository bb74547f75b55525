/**
 * PPO conformance cases (shared/conformance/README.md, "ppo/*.json"): parse a case's config and
 * inputs, and compute its `expected` object with this module's PPO maths:
 *
 *   rewards, non_score_rewards, kls = computeRewards(scores, logprobs, ref_logprobs, masks)
 *   values, advantages, returns     = computeAdvantages(values, rewards, masks)
 *   pg_loss, vf_loss, stats         = ppoLoss(old = logprobs, new = new_logprobs, logits, vpreds, ...)
 *   objective_kl                    = mean_b sum_t kls * masks
 *   kl_coef_after                   = AdaptiveKLController(kl_coef, target, horizon)
 *                                       .update(objective_kl, n_steps = B).value
 *
 * Pure (no file access), so both the CLI and the tests use it.
 */
import { computeAdvantages } from './advantages.ts';
import { AdaptiveKLController } from './kl-controller.ts';
import { ppoLoss } from './loss.ts';
import { computeRewards, type KLPenalty } from './rewards.ts';
import { LOSS_STAT_NAMES, recordStepStats, type LossStats } from './stats.ts';

export interface PpoCaseConfig {
  kl_penalty: Exclude<KLPenalty, 'full'>;
  kl_coef: number;
  gamma: number;
  lam: number;
  cliprange: number;
  cliprange_value: number;
  vf_coef: number;
  whiten_rewards: boolean;
  ratio_threshold: number;
  target: number;
  horizon: number;
}

/** A parsed case: flat row-major arrays with their shapes. */
export interface PpoCase {
  name: string;
  config: PpoCaseConfig;
  B: number;
  T: number;
  V: number;
  /** [B] */
  scores: Float64Array;
  /** [B, T] each */
  logprobs: Float64Array;
  refLogprobs: Float64Array;
  masks: Float64Array;
  values: Float64Array;
  newLogprobs: Float64Array;
  vpreds: Float64Array;
  /** [B, T, V] */
  logits: Float64Array;
}

/** The `expected` object of a case: nested arrays [B][T], scalars, and the loss stats. */
export interface PpoCaseExpected {
  rewards: number[][];
  non_score_rewards: number[][];
  kls: number[][];
  values: number[][];
  advantages: number[][];
  returns: number[][];
  pg_loss: number;
  vf_loss: number;
  stats: LossStats;
  objective_kl: number;
  kl_coef_after: number;
}

/** A case file that does not have the documented shape; the message says where. */
export class PpoCaseError extends Error {
  override name = 'PpoCaseError';
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function field(obj: Record<string, unknown>, key: string, where: string): unknown {
  if (!(key in obj)) throw new PpoCaseError(`${where}.${key} is missing`);
  return obj[key];
}

function finite(x: unknown, where: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x))
    throw new PpoCaseError(`${where} must be a finite number`);
  return x;
}

/** Flattens a nested array of exactly `shape` (row-major) into a Float64Array. */
function tensor(x: unknown, shape: number[], where: string): Float64Array {
  const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let k = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      out[k++] = finite(node, `${where}${path}`);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new PpoCaseError(
        `${where}${path} must be an array of ${shape[depth]} (shape [${shape.join(', ')}])`,
      );
    }
    node.forEach((child, i) => walk(child, depth + 1, `${path}[${i}]`));
  };
  walk(x, 0, '');
  return out;
}

function parseConfig(c: unknown): PpoCaseConfig {
  if (!isRecord(c)) throw new PpoCaseError('config must be an object');
  const mode = field(c, 'kl_penalty', 'config');
  if (mode !== 'kl' && mode !== 'abs' && mode !== 'mse') {
    throw new PpoCaseError(`config.kl_penalty must be "kl", "abs" or "mse", got ${JSON.stringify(mode)}`);
  }
  const whiten = field(c, 'whiten_rewards', 'config');
  if (typeof whiten !== 'boolean') throw new PpoCaseError('config.whiten_rewards must be true or false');
  const n = (k: string): number => finite(field(c, k, 'config'), `config.${k}`);
  return {
    kl_penalty: mode,
    kl_coef: n('kl_coef'),
    gamma: n('gamma'),
    lam: n('lam'),
    cliprange: n('cliprange'),
    cliprange_value: n('cliprange_value'),
    vf_coef: n('vf_coef'),
    whiten_rewards: whiten,
    ratio_threshold: n('ratio_threshold'),
    target: n('target'),
    horizon: n('horizon'),
  };
}

/** Checks and flattens a case object (JSON.parse of a case file). Throws PpoCaseError. */
export function parsePpoCase(json: unknown): PpoCase {
  if (!isRecord(json)) throw new PpoCaseError('a case must be a JSON object');
  const config = parseConfig(field(json, 'config', 'case'));
  const inputs = field(json, 'inputs', 'case');
  if (!isRecord(inputs)) throw new PpoCaseError('inputs must be an object');
  const scoresRaw = field(inputs, 'scores', 'inputs');
  const masksRaw = field(inputs, 'masks', 'inputs');
  const logitsRaw = field(inputs, 'logits', 'inputs');
  const B = Array.isArray(scoresRaw) ? scoresRaw.length : 0;
  const T = Array.isArray(masksRaw) && Array.isArray(masksRaw[0]) ? masksRaw[0].length : 0;
  const row0 = Array.isArray(logitsRaw) && Array.isArray(logitsRaw[0]) ? logitsRaw[0][0] : undefined;
  const V = Array.isArray(row0) ? row0.length : 0;
  if (B < 1 || T < 1 || V < 1)
    throw new PpoCaseError('inputs: need B >= 1 scores, T >= 1 positions, V >= 1 logits');
  const bt = (k: string): Float64Array => tensor(field(inputs, k, 'inputs'), [B, T], `inputs.${k}`);
  const name = typeof json.name === 'string' ? json.name : '(unnamed case)';
  return {
    name,
    config,
    B,
    T,
    V,
    scores: tensor(scoresRaw, [B], 'inputs.scores'),
    logprobs: bt('logprobs'),
    refLogprobs: bt('ref_logprobs'),
    masks: bt('masks'),
    values: bt('values'),
    newLogprobs: bt('new_logprobs'),
    vpreds: bt('vpreds'),
    logits: tensor(logitsRaw, [B, T, V], 'inputs.logits'),
  };
}

function nested(x: Float64Array, B: number, T: number): number[][] {
  return Array.from({ length: B }, (_, b) => Array.from(x.subarray(b * T, (b + 1) * T)));
}

/** Computes a parsed case's `expected` object. */
export function computePpoCase(c: PpoCase): PpoCaseExpected {
  const { B, T, V, config: cfg } = c;
  const r = computeRewards(
    { scores: c.scores, logprobs: c.logprobs, refLogprobs: c.refLogprobs, masks: c.masks },
    { B, T },
    { klCoef: cfg.kl_coef, klPenalty: cfg.kl_penalty },
  );
  const a = computeAdvantages(
    { values: c.values, rewards: r.rewards, masks: c.masks },
    { B, T },
    { gamma: cfg.gamma, lam: cfg.lam, whitenRewards: cfg.whiten_rewards },
  );
  const l = ppoLoss(
    {
      oldLogprobs: c.logprobs,
      values: a.values,
      logits: c.logits,
      vpreds: c.vpreds,
      logprobs: c.newLogprobs,
      masks: c.masks,
      advantages: a.advantages,
      returns: a.returns,
    },
    { B, T, V },
    {
      cliprange: cfg.cliprange,
      cliprangeValue: cfg.cliprange_value,
      vfCoef: cfg.vf_coef,
      ratioThreshold: cfg.ratio_threshold,
    },
  );
  // objective/kl exactly as the trainer records it (query/response lengths do not matter here).
  const ones = new Float64Array(B).fill(1);
  const step = recordStepStats(
    {
      scores: c.scores,
      logprobs: c.logprobs,
      refLogprobs: c.refLogprobs,
      nonScoreRewards: r.nonScoreRewards,
      kls: r.kls,
      masks: c.masks,
      queryLens: ones,
      responseLens: ones,
      trainStats: [l.stats],
      klCoef: cfg.kl_coef,
    },
    { B, T },
  );
  const objectiveKl = step.scalars['objective/kl'];
  const ctl = new AdaptiveKLController(cfg.kl_coef, cfg.target, cfg.horizon);
  ctl.update(objectiveKl, B);
  const stats = {} as LossStats;
  for (const k of LOSS_STAT_NAMES) stats[k] = l.stats[k];
  return {
    rewards: nested(r.rewards, B, T),
    non_score_rewards: nested(r.nonScoreRewards, B, T),
    kls: nested(r.kls, B, T),
    values: nested(a.values, B, T),
    advantages: nested(a.advantages, B, T),
    returns: nested(a.returns, B, T),
    pg_loss: l.pgLoss,
    vf_loss: l.vfLoss,
    stats,
    objective_kl: objectiveKl,
    kl_coef_after: ctl.value,
  };
}
