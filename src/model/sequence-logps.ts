/**
 * Per-sequence log-probs of completions, on the LM head's per-row log-probs (TRL 0.19
 * DPOTrainer.concatenated_forward for a decoder-only model):
 *
 *   batch     (B, T) token rows, right-padded; lossMask (B, T) = 1 where token t is a completion
 *             token predicted from position t-1 (position 0 never)
 *   targets   (B*T)  row b*T + t predicts tokens[b, t+1] when lossMask[b, t+1], else -1 (ignored)
 *   logp[b]   = sum_t logprob[b*T + t]                   (sum over the completion's tokens)
 *             or that sum / count[b] when `average` (TRL's ipo: all_logps / loss_mask.sum(-1))
 *   backward  d logprob[b*T + t] = d logp[b] (/ count[b] when averaged) on every target row
 *
 * and, for the `logits/chosen` / `logits/rejected` stats (TRL: logits[loss_mask].mean(), the mean
 * over the completion's predicting rows and the whole vocabulary), each sequence's sum of logits
 * over those rows. The head runs on the target rows only (completion-head.ts).
 */
import type { CompletionHead } from './completion-head.ts';
import type { GPT2 } from './gpt2.ts';

/** The batch fields the head needs (src/data/preferences.ts PairBatch has them). */
export interface CompletionBatch {
  B: number;
  T: number;
  /** (B, T) token ids. */
  tokens: Int32Array;
  /** (B, T) 1 on completion tokens (never at t = 0). */
  lossMask: Float32Array;
  /** (B) completion tokens per row. */
  counts: Float32Array;
}

/** (B*T) next-token targets, -1 where the next token is not a completion token. */
export function completionTargets({ B, T, tokens, lossMask }: CompletionBatch): Int32Array {
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++)
      if (lossMask[b * T + t + 1] !== 0) targets[b * T + t] = tokens[b * T + t + 1];
  }
  return targets;
}

/** (B) sum over each row of (B*T) per-row values, divided by counts[b] when `average`. */
export function sumRows(
  perRow: ArrayLike<number>,
  { B, T, counts }: CompletionBatch,
  average: boolean,
): Float64Array {
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += perRow[b * T + t];
    out[b] = average ? s / counts[b] : s;
  }
  return out;
}

/** (B*T) d loss / d logprob from (B) d loss / d logp: the row's value on its target rows, 0 elsewhere. */
export function sequenceDlogprob(
  dlogp: ArrayLike<number>,
  targets: Int32Array,
  { B, T, counts }: CompletionBatch,
  average: boolean,
): Float32Array {
  const out = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const d = average ? dlogp[b] / counts[b] : dlogp[b];
    for (let t = 0; t < T; t++) if (targets[b * T + t] >= 0) out[b * T + t] = d;
  }
  return out;
}

export interface SequenceLogpsOut {
  /** (B) completion log-prob sums (means when averaged). */
  logps: Float64Array;
  /** (B) sum over each row's completion-predicting positions of the sum of its logits; null unless asked. */
  logitSums: Float64Array | null;
  /** (B*T) the targets given to the head (for backward). */
  targets: Int32Array;
}

/**
 * Forward of `net` on the batch and `head` on the completion-predicting rows: the per-sequence
 * log-probs and, with `logits`, the per-sequence logit sums. Keeps what backward needs
 * (head.backward(sequenceDlogprob(...)), then net.backward()). `dropoutSeed`: the LoRA dropout
 * masks of a training pass (gpt2.ts; null = none).
 */
export async function sequenceLogps(
  net: GPT2,
  head: CompletionHead,
  batch: CompletionBatch,
  {
    average,
    logits = false,
    dropoutSeed = null,
  }: { average: boolean; logits?: boolean; dropoutSeed?: number | null },
): Promise<SequenceLogpsOut> {
  const { B, T, tokens } = batch;
  net.forward({ B, T, ids: tokens }, { dropoutSeed });
  const targets = completionTargets(batch);
  const { logprob, rowSums } = await head.forward(net, targets, { sums: logits });
  return {
    logps: sumRows(logprob, batch, average),
    logitSums: rowSums ? sumRows(rowSums, batch, false) : null,
    targets,
  };
}
