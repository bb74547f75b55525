/**
 * The PPO minibatch loss: TRL 0.9.6 PPOTrainer.loss, and its gradient with respect to the new
 * log-probs and value predictions (what train_minibatch backpropagates into the model).
 *
 * All per-token arrays are [B, T] over the minibatch (B = mini_batch_size), m = masks, M = sum(m):
 *   vclip    = clip_by_value(vpreds, values - cliprange_value, values + cliprange_value)
 *   vf_loss  = 0.5 * masked_mean(max((vpreds - returns)^2, (vclip - returns)^2))
 *   ratio    = exp(logprobs - old_logprobs)
 *   pg_loss  = masked_mean(max(-A * ratio, -A * clamp(ratio, 1 - cliprange, 1 + cliprange)))
 *   loss     = pg_loss + vf_coef * vf_loss
 * If masked_mean(ratio) > ratio_threshold, pg_loss, vf_loss and loss are multiplied by 0: their
 * stats read 0 and the gradient is 0, but TRL still calls optimizer.step() (Adam's moments still
 * move the weights) and still counts the minibatch in the step's averaged stats.
 */
import { checkLength, entropyFromLogits, maskedMean, maskedVar, type NumArray } from './core.ts';
import type { LossStats } from './stats.ts';

export interface PPOLossInputs {
  /** [B, T] log-probs of the sampled tokens when the batch was collected (TRL old_logprobs). */
  oldLogprobs: NumArray;
  /** [B, T] masked values from computeAdvantages. */
  values: NumArray;
  /** [B, T] log-probs of the same tokens under the current policy. */
  logprobs: NumArray;
  /** [B, T] value-head predictions of the current model. */
  vpreds: NumArray;
  /** [B, T] 1 on response tokens. */
  masks: NumArray;
  /** [B, T] whitened advantages from computeAdvantages. */
  advantages: NumArray;
  /** [B, T] returns from computeAdvantages. */
  returns: NumArray;
  /**
   * For the policy/entropy stat only (not part of the loss): either [B, T, V] logits (dims.V
   * required), or [B, T] per-token entropies already computed (e.g. on the GPU).
   */
  logits?: NumArray;
  entropy?: NumArray;
}

export interface PPOLossSettings {
  cliprange: number;
  cliprangeValue: number;
  vfCoef: number;
  ratioThreshold: number;
}

export interface PPOLoss {
  /** pg_loss (0 when skipped). */
  pgLoss: number;
  /** vf_coef * vf_loss (0 when skipped): TRL loss()'s second return value. */
  vfLoss: number;
  /** pgLoss + vfLoss, what train_minibatch backpropagates. */
  loss: number;
  /** masked_mean(ratio). */
  avgRatio: number;
  /** avgRatio > ratio_threshold: losses zeroed. */
  skipped: boolean;
  /** [B, T] the ratio (TRL logs it flattened as ppo/policy/ratio). */
  ratio: Float64Array;
  stats: LossStats;
}

type Dims = { B: number; T: number; V?: number };

function checkInputs(inp: PPOLossInputs, { B, T }: Dims): void {
  for (const k of [
    'oldLogprobs',
    'values',
    'logprobs',
    'vpreds',
    'masks',
    'advantages',
    'returns',
  ] as const) {
    checkLength(`ppoLoss ${k} [B,T]`, inp[k], B * T);
  }
}

/** Per-token pieces shared by the forward and the backward. */
function tokenTerms(inp: PPOLossInputs, n: number, { cliprange, cliprangeValue }: PPOLossSettings) {
  const ratio = new Float64Array(n);
  const pg1 = new Float64Array(n);
  const pg2 = new Float64Array(n);
  const vf1 = new Float64Array(n);
  const vf2 = new Float64Array(n);
  const vclip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const A = inp.advantages[i];
    ratio[i] = Math.exp(inp.logprobs[i] - inp.oldLogprobs[i]);
    pg1[i] = -A * ratio[i];
    pg2[i] = -A * Math.min(Math.max(ratio[i], 1 - cliprange), 1 + cliprange);
    const v = inp.values[i];
    vclip[i] = Math.max(Math.min(inp.vpreds[i], v + cliprangeValue), v - cliprangeValue);
    vf1[i] = (inp.vpreds[i] - inp.returns[i]) ** 2;
    vf2[i] = (vclip[i] - inp.returns[i]) ** 2;
  }
  return { ratio, pg1, pg2, vf1, vf2, vclip };
}

function tokenEntropy(inp: PPOLossInputs, { B, T, V }: Dims): NumArray {
  if (inp.entropy) {
    checkLength('ppoLoss entropy [B,T]', inp.entropy, B * T);
    return inp.entropy;
  }
  if (inp.logits && V !== undefined) return entropyFromLogits(inp.logits, { N: B * T, V });
  throw new Error('ppoLoss: give logits [B,T,V] with dims.V, or per-token entropy [B,T]');
}

/** PPOTrainer.loss(old_logprobs, values, logits, vpreds, logprobs, mask, advantages, returns). */
export function ppoLoss(inp: PPOLossInputs, dims: Dims, settings: PPOLossSettings): PPOLoss {
  checkInputs(inp, dims);
  const n = dims.B * dims.T;
  const m = inp.masks;
  const { ratio, pg1, pg2, vf1, vf2 } = tokenTerms(inp, n, settings);
  const vfMax = new Float64Array(n);
  const vfClipped = new Float64Array(n);
  const pgMax = new Float64Array(n);
  const pgClipped = new Float64Array(n);
  const sqErr = new Float64Array(n);
  const logRatioSq = new Float64Array(n);
  const negLogRatio = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    vfMax[i] = Math.max(vf1[i], vf2[i]);
    vfClipped[i] = vf2[i] > vf1[i] ? 1 : 0;
    pgMax[i] = Math.max(pg1[i], pg2[i]);
    pgClipped[i] = pg2[i] > pg1[i] ? 1 : 0;
    sqErr[i] = vf1[i];
    const d = inp.logprobs[i] - inp.oldLogprobs[i];
    logRatioSq[i] = d * d;
    negLogRatio[i] = inp.oldLogprobs[i] - inp.logprobs[i];
  }
  let vfLoss = 0.5 * maskedMean(vfMax, m);
  let pgLoss = maskedMean(pgMax, m);
  let loss = pgLoss + settings.vfCoef * vfLoss;
  const avgRatio = maskedMean(ratio, m);
  const skipped = avgRatio > settings.ratioThreshold;
  if (skipped) {
    pgLoss *= 0;
    vfLoss *= 0;
    loss *= 0;
  }
  const stats: LossStats = {
    'loss/policy': pgLoss,
    'loss/value': vfLoss,
    'loss/total': loss,
    'policy/entropy': maskedMean(tokenEntropy(inp, dims), m),
    'policy/approxkl': 0.5 * maskedMean(logRatioSq, m),
    'policy/policykl': maskedMean(negLogRatio, m),
    'policy/clipfrac': maskedMean(pgClipped, m),
    'policy/advantages_mean': maskedMean(inp.advantages, m),
    'returns/mean': maskedMean(inp.returns, m),
    'returns/var': maskedVar(inp.returns, m),
    'val/vpred': maskedMean(inp.vpreds, m),
    'val/error': maskedMean(sqErr, m),
    'val/clipfrac': maskedMean(vfClipped, m),
    'val/mean': maskedMean(inp.values, m),
    'val/var': maskedVar(inp.values, m),
  };
  return { pgLoss, vfLoss: settings.vfCoef * vfLoss, loss, avgRatio, skipped, ratio, stats };
}

/** d max(a, b)/da as torch.maximum's backward: 1 if a > b, 1/2 on a tie, else 0. */
function maxGradFirst(a: number, b: number): number {
  return a > b ? 1 : a === b ? 0.5 : 0;
}

export interface PPOLossGrads {
  /** [B, T] d loss / d logprobs (the new log-probs). */
  dlogprobs: Float64Array;
  /** [B, T] d loss / d vpreds. */
  dvpreds: Float64Array;
}

/**
 * Gradient of dloss * (pg_loss + vf_coef * vf_loss) with respect to logprobs and vpreds, with
 * PyTorch autograd's subgradients: ties in max/min split the gradient in half, clamp passes it on
 * its closed interval. All zero when the minibatch is skipped (ratio_threshold). Pass
 * dloss = 1 / gradient_accumulation_steps to match accelerate's backward().
 */
export function ppoLossBackward(
  inp: PPOLossInputs,
  dims: Dims,
  settings: PPOLossSettings,
  dloss = 1,
): PPOLossGrads {
  checkInputs(inp, dims);
  const n = dims.B * dims.T;
  const m = inp.masks;
  const { cliprange, cliprangeValue, vfCoef, ratioThreshold } = settings;
  const { ratio, pg1, pg2, vf1, vf2, vclip } = tokenTerms(inp, n, settings);
  const dlogprobs = new Float64Array(n);
  const dvpreds = new Float64Array(n);
  if (maskedMean(ratio, m) > ratioThreshold) return { dlogprobs, dvpreds };
  let M = 0;
  for (let i = 0; i < n; i++) M += m[i];
  for (let i = 0; i < n; i++) {
    const w = (dloss * m[i]) / M;
    // pg: d/d ratio of max(-A r, -A clamp(r)), times d r/d logprob = r.
    const A = inp.advantages[i];
    const inRange = ratio[i] >= 1 - cliprange && ratio[i] <= 1 + cliprange ? 1 : 0;
    const g1 = maxGradFirst(pg1[i], pg2[i]);
    const g2 = maxGradFirst(pg2[i], pg1[i]);
    dlogprobs[i] = w * -A * (g1 + g2 * inRange) * ratio[i];
    // vf: vf_coef * 0.5 * d/d vpred of max(vf1, vf2).
    const vp = inp.vpreds[i];
    const v = inp.values[i];
    const R = inp.returns[i];
    const inner = Math.min(vp, v + cliprangeValue);
    const dclip = maxGradFirst(-vp, -(v + cliprangeValue)) * maxGradFirst(inner, v - cliprangeValue);
    const h1 = maxGradFirst(vf1[i], vf2[i]);
    const h2 = maxGradFirst(vf2[i], vf1[i]);
    dvpreds[i] = w * vfCoef * 0.5 * (h1 * 2 * (vp - R) + h2 * 2 * (vclip[i] - R) * dclip);
  }
  return { dlogprobs, dvpreds };
}
