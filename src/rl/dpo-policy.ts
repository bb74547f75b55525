/**
 * The two models of DPO on the GPU: the policy (a plain GPT-2 LM with gradients) and the
 * frozen reference, each giving per-sequence completion log-probs of a pair batch
 * (src/model/sequence-logps.ts). Batches are (B, T) = (2n, T): chosen rows 0..n-1, rejected rows
 * n..2n-1 (src/data/preferences.ts layoutPairBatch).
 */
import type { PairBatch } from '../data/preferences.ts';
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { GPT2 } from '../model/gpt2.ts';
import { CompletionHead } from '../model/completion-head.ts';
import { sequenceDlogprob, sequenceLogps } from '../model/sequence-logps.ts';

/** Per-pair values of a batch of n pairs: the chosen half and the rejected half, each (n). */
export interface PairValues {
  chosen: Float64Array;
  rejected: Float64Array;
}

/** (2n) rows → chosen (n), rejected (n). */
export function splitPairs(rows: Float64Array): PairValues {
  const n = rows.length / 2;
  return { chosen: rows.slice(0, n), rejected: rows.slice(n) };
}

/** The frozen reference: completion log-probs only. */
export class DPOReference {
  readonly net: GPT2;
  private readonly head: CompletionHead;
  constructor(gpu: Gpu, config: GPT2Config, params: Float32Array) {
    this.net = new GPT2(gpu, config, params);
    this.head = new CompletionHead(gpu);
  }

  /** (n) chosen and rejected sequence log-probs (means when `average`, TRL's ipo). */
  async logps(batch: PairBatch, average: boolean): Promise<PairValues> {
    return splitPairs((await sequenceLogps(this.net, this.head, batch, { average })).logps);
  }

  dispose(): void {
    this.net.dispose();
    this.head.dispose();
  }
}

export interface PolicyForward {
  logps: PairValues;
  /** TRL's mean_chosen_logits / mean_rejected_logits: mean logit over the completion rows and V. */
  meanLogits: { chosen: number; rejected: number };
}

export class DPOPolicy {
  readonly net: GPT2;
  private readonly head: CompletionHead;
  private last: { batch: PairBatch; targets: Int32Array; average: boolean } | null = null;

  constructor(
    readonly gpu: Gpu,
    config: GPT2Config,
    params: Float32Array,
  ) {
    this.net = new GPT2(gpu, config, params);
    this.head = new CompletionHead(gpu);
  }

  /** Forward with sequence log-probs and mean logits; keeps what backward needs. `dropoutSeed`: LoRA dropout. */
  async forward(
    batch: PairBatch,
    average: boolean,
    dropoutSeed: number | null = null,
  ): Promise<PolicyForward> {
    const out = await sequenceLogps(this.net, this.head, batch, { average, logits: true, dropoutSeed });
    this.last = { batch, targets: out.targets, average };
    const n = batch.B / 2;
    const V = this.net.config.vocab_size;
    const s = out.logitSums!;
    const half = (from: number) => {
      let sum = 0;
      let count = 0;
      for (let b = from; b < from + n; b++) {
        sum += s[b];
        count += batch.counts[b];
      }
      return sum / (count * V);
    };
    return { logps: splitPairs(out.logps), meanLogits: { chosen: half(0), rejected: half(n) } };
  }

  /**
   * Accumulates d loss / d params for the last forward from d loss / d logp per pair (each (n)).
   * Call zeroGrads() before the first micro-batch of a step.
   */
  backward(d: { chosen: ArrayLike<number>; rejected: ArrayLike<number> }): void {
    if (!this.last) throw new Error('DPOPolicy.backward before forward');
    const { batch, targets, average } = this.last;
    const dlogp = Float64Array.from([...Array.from(d.chosen), ...Array.from(d.rejected)]);
    const perRow = sequenceDlogprob(dlogp, targets, batch, average);
    this.head.backward(perRow);
    this.net.backward();
  }

  zeroGrads(): void {
    this.net.zeroGrads();
  }

  async readParams(): Promise<Float32Array> {
    return this.net.readParams();
  }

  dispose(): void {
    this.net.dispose();
    this.head.dispose();
  }
}
