/**
 * One SFT forward/backward on the GPU, TRL 1.x SFTTrainer's loss and stats for a batch:
 *
 *   loss                 = -sum_{(b,t) labelled} log p(labels[b, t+1] | ids[b, ..t]) / count
 *                          (transformers' causal-LM loss with num_items_in_batch = the labelled tokens)
 *   mean_token_accuracy  = #{labelled (b,t): argmax_v logits[b, t, v] == label} / count
 *
 * d loss / d logprob = -1 / count on every labelled row; the head and body backward accumulate
 * into the gradient block. argmax runs on the GPU (the sampler's greedy kernel: the lowest index
 * among ties, as torch.argmax), so only B*T ids come back.
 */
import type { GPT2 } from '../model/gpt2.ts';
import { sampleForward } from '../ops/sample.ts';

export const SFT_STAT_NAMES = ['loss', 'mean_token_accuracy', 'num_tokens'] as const;
export type SFTStatName = (typeof SFT_STAT_NAMES)[number];
export type SFTStats = Record<SFTStatName, number>;

export interface SFTBatch {
  B: number;
  T: number;
  ids: Int32Array;
  /** (B*T) next-token targets, -1 where not in the loss. */
  targets: Int32Array;
  /** Labelled tokens: targets >= 0. */
  count: number;
}

/** Mean NLL and token accuracy from per-row log-probs and argmaxes (rows with target < 0 ignored). */
export function sftLoss(
  logprob: ArrayLike<number>,
  argmax: ArrayLike<number>,
  targets: ArrayLike<number>,
): { loss: number; accuracy: number; count: number } {
  let nll = 0;
  let correct = 0;
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] < 0) continue;
    nll -= logprob[i];
    if (argmax[i] === targets[i]) correct++;
    count++;
  }
  return count
    ? { loss: nll / count, accuracy: correct / count, count }
    : { loss: NaN, accuracy: NaN, count };
}

/**
 * Forward, loss and (when `backward`) the gradient of the mean loss for one batch; the caller zeroes
 * the gradients before and steps the optimizer after. Returns the batch's stats.
 */
export async function sftStep(net: GPT2, batch: SFTBatch, { backward = true } = {}): Promise<SFTStats> {
  const { B, T } = batch;
  const gpu = net.gpu;
  const N = B * T;
  net.forward(batch);
  const argmax = gpu.createBuffer(N * 4, 'sft.argmax');
  try {
    const head = net.headForward(batch.targets, {
      onLogits: (logits, r0, R) =>
        sampleForward(
          gpu,
          { ids: argmax },
          { logits },
          { R, V: net.config.vocab_size, ldV: net.ldV, row0: r0, greedy: true },
        ),
    });
    const [logprob, best] = await Promise.all([gpu.readF32(head.logprob, N), gpu.readU32(argmax, N)]);
    const { loss, accuracy, count } = sftLoss(logprob, best, batch.targets);
    if (backward && count > 0) {
      net.headBackward({ dlogprob: -1 / count });
      net.backward();
    }
    return { loss, mean_token_accuracy: accuracy, num_tokens: count };
  } finally {
    gpu.destroy(argmax);
  }
}
