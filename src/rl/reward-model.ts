/**
 * A GPT-2 reward model on the GPU: transformers' GPT2ForSequenceClassification with num_labels = 1.
 * The score head is `score.weight` (1, C), no bias, applied to the final hidden state (after ln_f)
 * at one position per row, the last non-pad token:
 *
 *   values (B*T)  = lnf (B*T, C) @ score.weight^T (C, 1)
 *   score[b]      = values[b, last[b]],   last[b] = lastNonPadIndex(ids[b], pad_token_id)
 *
 * The head's weight lives in the GPT-2 parameter block (gpt2ParamTable(config, {scoreHead: true})),
 * so AdamW, checkpoints and the exported folder see it like any other parameter. Rows are
 * right-padded, as TRL's DataCollatorForPreference pads them; positions are 0..T-1 on every row and
 * no attention mask is needed: under causal attention a real token never sees the padding after it.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { GPT2 } from '../model/gpt2.ts';
import { Lora } from '../model/lora.ts';
import type { LoraConfig } from '../model/lora-table.ts';
import { paramView, scoreHeadParam } from '../model/param-table.ts';
import { matmul } from '../ops/matmul.ts';

/**
 * Index of the rightmost token that is not `padId`, 0 when every token is padding (the argmax of
 * `arange(T) * (ids != pad)` in GPT2ForSequenceClassification.forward). With pad = EOS, as for GPT-2,
 * an EOS at the end of a row is padding too: the score is read at the token before it.
 */
export function lastNonPadIndex(row: ArrayLike<number>, padId: number | null): number {
  if (padId === null) return row.length - 1;
  for (let t = row.length - 1; t >= 0; t--) if (row[t] !== padId) return t;
  return 0;
}

/** (B, T) ids of right-padded rows, each row's tokens then `padId` to the longest row's length. */
export function rightPad(
  rows: readonly (readonly number[])[],
  padId: number,
): { B: number; T: number; ids: Int32Array } {
  const B = rows.length;
  const T = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(padId);
  rows.forEach((r, b) => ids.set(r, b * T));
  return { B, T, ids };
}

export class GPT2RewardModel {
  readonly net: GPT2;
  private values: GPUBuffer | null = null;
  private dvalues: GPUBuffer | null = null;
  /** last[b] of the last forward, (B). */
  private last: Int32Array = new Int32Array(0);

  /**
   * `params` laid out by gpt2ParamTable(config, {scoreHead: true}); `padTokenId` is config.json's
   * pad_token_id (null: the last position of every row, as transformers with batch size 1).
   * `lora`: LoRA adapters on the frozen body, their block laid out by loraTable(config, lora,
   * {scoreHead: true}); the score head used and trained is then the block's score.weight.
   */
  constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    params: Float32Array,
    readonly padTokenId: number | null,
    lora: { config: LoraConfig; params: Float32Array } | null = null,
  ) {
    this.net = new GPT2(gpu, config, params, { scoreHead: true });
    if (lora) this.net.attachLora(new Lora(gpu, config, lora.config, lora.params, { scoreHead: true }));
  }

  /**
   * Scores (B) of token rows (any lengths; right-padded here). Keeps what backward needs.
   * `dropoutSeed`: LoRA dropout's masks for a training forward (backward recomputes them from it).
   */
  async forward(
    rows: readonly (readonly number[])[],
    { dropoutSeed = null }: { dropoutSeed?: number | null } = {},
  ): Promise<Float32Array> {
    if (rows.length === 0) return new Float32Array(0);
    rows.forEach((r, i) => {
      if (r.length === 0) throw new Error(`reward model: row ${i} has no tokens`);
    });
    const batch = rightPad(rows, this.padTokenId ?? 0);
    const { B, T } = batch;
    this.net.forward(batch, { dropoutSeed });
    const values = this.valuesForward(B * T);
    this.last = Int32Array.from(rows, (r) => lastNonPadIndex(r, this.padTokenId));
    const all = await this.gpu.readF32(values, B * T);
    return Float32Array.from(this.last, (t, b) => all[b * T + t]);
  }

  /**
   * Accumulates d loss / d params for the last forward from d loss / d score (B): through the head
   * into dlnf and score.weight, then through the body. Call net.zeroGrads() before the first.
   */
  backward(dscores: ArrayLike<number>): void {
    const { B, T } = this.net.batchShape;
    if (dscores.length !== B)
      throw new Error(`reward model backward: ${dscores.length} scores for ${B} rows`);
    const dv = new Float32Array(B * T);
    for (let b = 0; b < B; b++) dv[b * T + this.last[b]] = dscores[b];
    this.dvalues = this.ensure(this.dvalues, B * T, 'reward.dvalues');
    this.gpu.write(this.dvalues, dv);
    this.net.trainGrads();
    this.headBackward(B * T);
    this.net.backward();
  }

  dispose(): void {
    this.net.adapters?.dispose();
    this.net.dispose();
    for (const b of [this.values, this.dvalues]) if (b) this.gpu.destroy(b);
  }

  /** values (B*T) = lnf (B*T, C) @ score.weight^T (C, 1). */
  private valuesForward(BT: number): GPUBuffer {
    const C = this.config.n_embd;
    this.values = this.ensure(this.values, BT, 'reward.values');
    const w = paramView(this.net.trainParams, scoreHeadParam(this.net.trainTable));
    matmul(this.gpu, { out: this.values }, { a: this.net.lnf, b: w }, { M: BT, N: 1, K: C, transB: true });
    return this.values;
  }

  /** dlnf += dvalues (BT, 1) @ w (1, C);  dw (1, C) += dvalues^T (1, BT) @ lnf (BT, C). */
  private headBackward(BT: number): void {
    const C = this.config.n_embd;
    const e = scoreHeadParam(this.net.trainTable);
    const dv = this.dvalues!;
    matmul(
      this.gpu,
      { out: this.net.dlnf },
      { a: dv, b: paramView(this.net.trainParams, e) },
      { M: BT, N: C, K: 1, beta: 1 },
    );
    matmul(
      this.gpu,
      { out: paramView(this.net.trainGrads(), e) },
      { a: dv, b: this.net.lnf },
      { M: 1, N: C, K: BT, transA: true, beta: 1 },
    );
  }

  private ensure(buf: GPUBuffer | null, n: number, label: string): GPUBuffer {
    if (buf && buf.size >= n * 4) return buf;
    if (buf) this.gpu.destroy(buf);
    return this.gpu.createBuffer(n * 4, label);
  }
}
