/**
 * What `rlhf-studio dpo-dump` computes: the DPO loss over all pairs of a file as one batch, the
 * policy's and reference's sequence log-probs, the rewards, TRL's mean logits and the gradient of
 * the loss for every policy parameter; no update. The output tensors use the names of the
 * policy's own file (`transformer.` prefix or not; the tied head only as wte).
 */
import { layoutPairBatch, type TokenizedPair } from '../data/preferences.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { paramSlice } from '../model/param-table.ts';
import type { LoadedGPT2, WriteTensor } from '../model/safetensors.ts';
import { dpoLoss, type DPOLossSettings } from './dpo.ts';
import { DPOPolicy, DPOReference, type PairValues } from './dpo-policy.ts';

export interface DPODumpResult {
  loss: number;
  policy: PairValues;
  rewards: PairValues;
  meanLogits: { chosen: number; rejected: number };
  grads: Map<string, { shape: readonly number[]; data: Float32Array }>;
}

export async function dpoDump(
  gpu: Gpu,
  models: { policy: LoadedGPT2; ref: LoadedGPT2 },
  pairs: readonly TokenizedPair[],
  settings: DPOLossSettings,
  { prefixed }: { prefixed: boolean },
): Promise<DPODumpResult> {
  const batch = layoutPairBatch(pairs);
  const average = settings.lossType === 'ipo';
  const refNet = new DPOReference(gpu, models.ref.config, models.ref.params);
  let ref: PairValues;
  try {
    ref = await refNet.logps(batch, average);
  } finally {
    refNet.dispose();
  }
  const policy = new DPOPolicy(gpu, models.policy.config, models.policy.params);
  try {
    const fwd = await policy.forward(batch, average);
    const loss = dpoLoss(
      {
        policyChosen: fwd.logps.chosen,
        policyRejected: fwd.logps.rejected,
        refChosen: ref.chosen,
        refRejected: ref.rejected,
      },
      settings,
    );
    policy.zeroGrads();
    policy.backward({ chosen: loss.dPolicyChosen, rejected: loss.dPolicyRejected });
    const block = await gpu.readF32(policy.net.grads!, policy.net.table.total);
    const grads = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const e of policy.net.table.entries) {
      grads.set((prefixed ? 'transformer.' : '') + e.name, {
        shape: e.shape,
        data: paramSlice(block, e).slice(),
      });
    }
    return {
      loss: loss.loss,
      policy: fwd.logps,
      rewards: { chosen: loss.chosenRewards, rejected: loss.rejectedRewards },
      meanLogits: fwd.meanLogits,
      grads,
    };
  } finally {
    policy.dispose();
  }
}

/** The dump as safetensors tensors (all F32). */
export function dpoDumpTensors(r: DPODumpResult): [string, WriteTensor][] {
  const f32 = (x: ArrayLike<number>): WriteTensor => ({
    dtype: 'F32',
    shape: [x.length],
    data: Float32Array.from(x),
  });
  return [
    ['loss', f32([r.loss])],
    ['chosen_logps', f32(r.policy.chosen)],
    ['rejected_logps', f32(r.policy.rejected)],
    ['chosen_rewards', f32(r.rewards.chosen)],
    ['rejected_rewards', f32(r.rewards.rejected)],
    ['mean_chosen_logits', f32([r.meanLogits.chosen])],
    ['mean_rejected_logits', f32([r.meanLogits.rejected])],
    ...[...r.grads].map(([k, g]): [string, WriteTensor] => [
      `grad.${k}`,
      { dtype: 'F32', shape: g.shape, data: g.data },
    ]),
  ];
}
