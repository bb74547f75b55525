/**
 * What `rlhf-studio reward-dump` computes: TRL's RewardTrainer loss over all pairs of a file as one
 * batch (no update), the chosen and rejected scores, and d loss / d param for every parameter of the
 * GPT-2 reward model, named as in its model.safetensors (`transformer.h.0.attn.c_attn.weight`,
 * `score.weight`; the embedding gradient once, as `transformer.wte.weight`).
 */
import type { Gpu } from '../gpu/gpu.ts';
import { paramSlice } from '../model/param-table.ts';
import type { WriteTensor } from '../model/safetensors.ts';
import type { LoadedGPT2Reward } from '../reward/gpt2-reward-folder.ts';
import { rewardModelLoss } from './reward-model-loss.ts';
import { rewardBatchRows, type RewardPair } from './reward-model-data.ts';
import { GPT2RewardModel } from './reward-model.ts';

export interface RewardDump {
  loss: number;
  chosenScores: Float32Array;
  rejectedScores: Float32Array;
  /** By the parameter's name in model.safetensors. */
  grads: Map<string, { shape: readonly number[]; data: Float32Array }>;
}

export async function rewardDump(
  gpu: Gpu,
  model: LoadedGPT2Reward,
  pairs: readonly RewardPair[],
  { centerRewardsCoefficient = null }: { centerRewardsCoefficient?: number | null } = {},
): Promise<RewardDump> {
  const n = pairs.length;
  const rm = new GPT2RewardModel(gpu, model.config, model.params, model.padTokenId);
  try {
    const scores = await rm.forward(rewardBatchRows(pairs));
    const chosenScores = scores.slice(0, n);
    const rejectedScores = scores.slice(n);
    const out = rewardModelLoss(chosenScores, rejectedScores, { centerRewardsCoefficient });
    rm.net.zeroGrads();
    rm.backward(Float32Array.from([...out.dchosen, ...out.drejected]));
    const block = await gpu.readF32(rm.net.grads!, rm.net.table.total);
    const grads = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const e of rm.net.table.entries) {
      const name = e.name === 'score.weight' ? e.name : `transformer.${e.name}`;
      grads.set(name, { shape: e.shape, data: paramSlice(block, e).slice() });
    }
    return { loss: out.loss, chosenScores, rejectedScores, grads };
  } finally {
    rm.dispose();
  }
}

/** The dump as safetensors tensors: loss [1], chosen_scores [N], rejected_scores [N], grad.<name>. */
export function rewardDumpTensors(d: RewardDump): [string, WriteTensor][] {
  const f32 = (data: Float32Array, shape: number[]): WriteTensor => ({ dtype: 'F32', shape, data });
  return [
    ['loss', f32(Float32Array.of(d.loss), [1])],
    ['chosen_scores', f32(d.chosenScores, [d.chosenScores.length])],
    ['rejected_scores', f32(d.rejectedScores, [d.rejectedScores.length])],
    ...[...d.grads].map(([k, g]): [string, WriteTensor] => [
      `grad.${k}`,
      { dtype: 'F32', shape: g.shape, data: g.data },
    ]),
  ];
}
