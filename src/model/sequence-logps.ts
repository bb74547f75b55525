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
 * over the completion's predicting rows and the whole vocabulary), each row's sum of logits
 *   sum_v logits[r, v] = lnf[r] . sum_v wte[v]    (logits = lnf @ wte^T, tied head)
 * as two thin matmuls: s (1, C) = ones (1, V) @ wte (V, C), then rowSums (B*T) = lnf (B*T, C) @ s^T.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { matmul } from '../ops/matmul.ts';
import type { GPT2 } from './gpt2.ts';
import { modelParams, paramView } from './param-table.ts';

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
export function rowSums(
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
 * Forward of `net` on the batch and its head on the completion targets; reads back the per-row
 * log-probs (B*T floats) and, with `logits`, the per-row logit sums. Keeps what backward needs.
 */
export async function sequenceLogps(
  net: GPT2,
  batch: CompletionBatch,
  { average, logits = false, sums }: { average: boolean; logits?: boolean; sums?: LogitRowSums },
): Promise<SequenceLogpsOut> {
  const { B, T, tokens } = batch;
  net.forward({ B, T, ids: tokens });
  const targets = completionTargets(batch);
  const head = net.headForward(targets);
  const logprob = await net.gpu.readF32(head.logprob, B * T);
  let logitSums: Float64Array | null = null;
  if (logits) {
    const own = sums ?? new LogitRowSums(net.gpu);
    const perRow = await own.compute(net, B * T);
    if (!sums) own.dispose();
    const masked = perRow.map((x, i) => (targets[i] >= 0 ? x : 0));
    logitSums = rowSums(masked, batch, false);
  }
  return { logps: rowSums(logprob, batch, average), logitSums, targets };
}

/** The per-row sum of logits over the vocabulary, (B*T), for the rows of net's last forward. */
export class LogitRowSums {
  private ones: GPUBuffer | null = null;
  private s: GPUBuffer | null = null;
  private out: GPUBuffer | null = null;

  constructor(private readonly gpu: Gpu) {}

  async compute(net: GPT2, BT: number): Promise<Float32Array> {
    const { vocab_size: V, n_embd: C } = net.config;
    if (!this.ones || this.ones.size < V * 4) {
      if (this.ones) this.gpu.destroy(this.ones);
      this.ones = this.gpu.upload(new Float32Array(V).fill(1), 'logit-sums.ones');
    }
    this.s ??= this.gpu.createBuffer(C * 4, 'logit-sums.wte-colsum');
    if (!this.out || this.out.size < BT * 4) {
      if (this.out) this.gpu.destroy(this.out);
      this.out = this.gpu.createBuffer(BT * 4, 'logit-sums.rows');
    }
    const wte = paramView(net.params, modelParams(net.table).wte);
    // s (1, C) = ones (1, V) @ wte (V, C)
    matmul(this.gpu, { out: this.s }, { a: this.ones, b: wte }, { M: 1, N: C, K: V, beta: 0 });
    // rows (BT, 1) = lnf (BT, C) @ s^T (C, 1)
    matmul(
      this.gpu,
      { out: this.out },
      { a: net.lnf, b: this.s },
      { M: BT, N: 1, K: C, transB: true, beta: 0 },
    );
    return this.gpu.readF32(this.out, BT);
  }

  dispose(): void {
    for (const b of [this.ones, this.s, this.out]) if (b) this.gpu.destroy(b);
    this.ones = this.s = this.out = null;
  }
}
