/**
 * The DPO loss of TRL 0.19's DPOTrainer.dpo_loss (loss types sigmoid, ipo, hinge; reference not
 * free; no f-divergence), and its gradient with respect to the policy's per-sequence log-probs.
 *
 * Over n pairs, with pc, pr the policy's and rc, rr the reference's sequence log-probs of the
 * chosen and rejected completions (sums over completion tokens; for ipo their means, TRL's
 * `all_logps / loss_mask.sum(-1)`):
 *   z        = (pc - pr) - (rc - rr)
 *   sigmoid  l = -(1 - eps) logsigmoid(beta z) - eps logsigmoid(-beta z)   (eps = label_smoothing)
 *            dl/dz = beta ((1 - eps) (sigmoid(beta z) - 1) + eps sigmoid(beta z))
 *   ipo      l = (z - 1 / (2 beta))^2                 dl/dz = 2 (z - 1 / (2 beta))
 *   hinge    l = relu(1 - beta z)                     dl/dz = -beta where 1 - beta z > 0, else 0
 *   loss     = mean(l);  d loss/d pc = dl/dz / n,  d loss/d pr = -dl/dz / n
 *   rewards  chosen = beta (pc - rc),  rejected = beta (pr - rr)     (detached, for stats)
 */
import { checkLength, mean, type NumArray } from './core.ts';

export const DPO_LOSS_TYPES = ['sigmoid', 'ipo', 'hinge'] as const;
export type DPOLossType = (typeof DPO_LOSS_TYPES)[number];

export interface DPOLossSettings {
  beta: number;
  lossType: DPOLossType;
  /** Only the sigmoid loss uses it (conservative DPO); 0 = plain DPO. */
  labelSmoothing: number;
}

/** Sequence log-probs of one batch of n pairs, each (n). */
export interface DPOLossInputs {
  policyChosen: NumArray;
  policyRejected: NumArray;
  refChosen: NumArray;
  refRejected: NumArray;
}

export interface DPOLoss {
  loss: number;
  /** (n) l per pair. */
  losses: Float64Array;
  /** (n) beta (pc - rc). */
  chosenRewards: Float64Array;
  /** (n) beta (pr - rr). */
  rejectedRewards: Float64Array;
  /** (n) d loss / d pc. */
  dPolicyChosen: Float64Array;
  /** (n) d loss / d pr. */
  dPolicyRejected: Float64Array;
}

/** log(sigmoid(x)), stable for large |x|. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** l(z) and dl/dz for one pair. */
function pairLoss(z: number, { beta, lossType, labelSmoothing: eps }: DPOLossSettings): [number, number] {
  switch (lossType) {
    case 'sigmoid':
      return [
        -(1 - eps) * logSigmoid(beta * z) - eps * logSigmoid(-beta * z),
        beta * ((1 - eps) * (sigmoid(beta * z) - 1) + eps * sigmoid(beta * z)),
      ];
    case 'ipo': {
      const d = z - 1 / (2 * beta);
      return [d * d, 2 * d];
    }
    case 'hinge': {
      const h = 1 - beta * z;
      return h > 0 ? [h, -beta] : [0, 0];
    }
  }
}

export function checkDPOSettings({ beta, lossType, labelSmoothing }: DPOLossSettings): void {
  if (!(beta > 0 && Number.isFinite(beta))) throw new RangeError(`beta must be > 0, got ${beta}`);
  if (!DPO_LOSS_TYPES.includes(lossType))
    throw new RangeError(`loss_type must be one of ${DPO_LOSS_TYPES.join(', ')}, got ${String(lossType)}`);
  if (!(labelSmoothing >= 0 && labelSmoothing < 0.5))
    throw new RangeError(`label_smoothing must be in [0, 0.5), got ${labelSmoothing}`);
}

export function dpoLoss(inputs: DPOLossInputs, settings: DPOLossSettings): DPOLoss {
  checkDPOSettings(settings);
  const { policyChosen: pc, policyRejected: pr, refChosen: rc, refRejected: rr } = inputs;
  const n = pc.length;
  if (n === 0) throw new RangeError('dpoLoss: no pairs');
  checkLength('policyRejected', pr, n);
  checkLength('refChosen', rc, n);
  checkLength('refRejected', rr, n);
  const losses = new Float64Array(n);
  const chosenRewards = new Float64Array(n);
  const rejectedRewards = new Float64Array(n);
  const dPolicyChosen = new Float64Array(n);
  const dPolicyRejected = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const z = pc[i] - pr[i] - (rc[i] - rr[i]);
    const [l, dz] = pairLoss(z, settings);
    losses[i] = l;
    dPolicyChosen[i] = dz / n;
    dPolicyRejected[i] = -dz / n;
    chosenRewards[i] = settings.beta * (pc[i] - rc[i]);
    rejectedRewards[i] = settings.beta * (pr[i] - rr[i]);
  }
  return { loss: mean(losses), losses, chosenRewards, rejectedRewards, dPolicyChosen, dPolicyRejected };
}
