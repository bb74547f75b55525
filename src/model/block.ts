/**
 * One GPT-2 transformer block's forward, shared by training (src/model/gpt2.ts, which keeps every
 * layer's activations for backward) and generation (src/model/generate.ts, which reuses one set of
 * buffers for every layer and attends through its KV cache). Attention is the caller's: the block
 * hands it the qkv projection and takes its output.
 *
 *   ln1 = layernorm(inp)                 qkv = ln1 @ W_attn + b (+ LoRA)
 *   atty = attend(qkv)                   residual2 = inp + (atty @ W_proj + b (+ LoRA))
 *   ln2 = layernorm(residual2)           fch = ln2 @ W_fc + b (+ LoRA); fchGelu = gelu_new(fch)
 *   out = residual2 + (fchGelu @ W_mlp_proj + b (+ LoRA))
 *
 * The backward of these steps, in the reverse order, is GPT2.backward.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { geluForward } from '../ops/gelu.ts';
import { layernormForward } from '../ops/layernorm.ts';
import { matmulForward } from '../ops/matmul.ts';
import { residualForward } from '../ops/residual.ts';
import type { Lora, LoraPass } from './lora.ts';
import type { LayerViews } from './param-table.ts';

/** The buffers one block reads and writes (the same buffer may serve several roles across layers). */
export interface BlockBuffers {
  /** The residual stream in (rows x C). */
  inp: GPUBuffer;
  ln1: GPUBuffer;
  ln1Mean: GPUBuffer;
  ln1Rstd: GPUBuffer;
  qkv: GPUBuffer;
  atty: GPUBuffer;
  /** Scratch for the two output projections (attention's and the MLP's). */
  proj: GPUBuffer;
  residual2: GPUBuffer;
  ln2: GPUBuffer;
  ln2Mean: GPUBuffer;
  ln2Rstd: GPUBuffer;
  fch: GPUBuffer;
  fchGelu: GPUBuffer;
  /** The residual stream out (may be `inp`: it is read before this is written). */
  out: GPUBuffer;
}

export interface BlockShape {
  /** Rows as the layer norms see them: B rows of T tokens (B * T rows in all). */
  B: number;
  T: number;
  C: number;
}

/** Records block `l`'s forward; `attend(qkv, atty)` records the attention between the projections. */
export function blockForward(
  gpu: Gpu,
  l: number,
  w: LayerViews,
  b: BlockBuffers,
  { B, T, C }: BlockShape,
  attend: (qkv: GPUBuffer, atty: GPUBuffer) => void,
  lora: Lora | null,
  pass: LoraPass,
): void {
  const N = B * T;
  const rows = { B, T, C };
  layernormForward(
    gpu,
    { out: b.ln1, mean: b.ln1Mean, rstd: b.ln1Rstd },
    { inp: b.inp, weight: w.ln1w, bias: w.ln1b },
    rows,
  );
  matmulForward(gpu, { out: b.qkv }, { inp: b.ln1, weight: w.qkvw, bias: w.qkvb }, { BT: N, C, OC: 3 * C });
  lora?.forward(l, 'qkv', { out: b.qkv }, { inp: b.ln1 }, N, pass);
  attend(b.qkv, b.atty);
  matmulForward(
    gpu,
    { out: b.proj },
    { inp: b.atty, weight: w.attprojw, bias: w.attprojb },
    { BT: N, C, OC: C },
  );
  lora?.forward(l, 'attproj', { out: b.proj }, { inp: b.atty }, N, pass);
  residualForward(gpu, { out: b.residual2 }, { inp1: b.inp, inp2: b.proj }, { N: N * C });
  layernormForward(
    gpu,
    { out: b.ln2, mean: b.ln2Mean, rstd: b.ln2Rstd },
    { inp: b.residual2, weight: w.ln2w, bias: w.ln2b },
    rows,
  );
  matmulForward(gpu, { out: b.fch }, { inp: b.ln2, weight: w.fcw, bias: w.fcb }, { BT: N, C, OC: 4 * C });
  lora?.forward(l, 'fc', { out: b.fch }, { inp: b.ln2 }, N, pass);
  geluForward(gpu, { out: b.fchGelu }, { inp: b.fch }, { N: N * 4 * C });
  matmulForward(
    gpu,
    { out: b.proj },
    { inp: b.fchGelu, weight: w.fcprojw, bias: w.fcprojb },
    { BT: N, C: 4 * C, OC: C },
  );
  lora?.forward(l, 'fcproj', { out: b.proj }, { inp: b.fchGelu }, N, pass);
  residualForward(gpu, { out: b.out }, { inp1: b.residual2, inp2: b.proj }, { N: N * C });
}
