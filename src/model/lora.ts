/**
 * LoRA adapters on the GPU: one block of trainable tensors laid out by lora-table.ts (params, grads;
 * the optimizer keeps its moments in the same layout), and the low-rank add of one adapted layer,
 * forward and backward, on the matmul op. For one layer with input x (N, in) and output y (N, out):
 *
 *   forward   xd = dropout(x)                        (x itself when dropout is off)
 *             h  (N, r)   = xd @ A^T                 A (r, in)
 *             y  (N, out) += scaling * h @ B^T       B (out, r)
 *   backward  xd, h recomputed (nothing is kept from the forward but the dropout seed)
 *             dB (out, r) += scaling * dy^T @ h
 *             dh (N, r)    = scaling * dy @ B
 *             dA (r, in)  += dh^T @ xd
 *             dx (N, in)  += dropout_backward(dh @ A)
 *
 * The base layer's own forward and dx (x W + b, dy W^T) stay in gpt2.ts; its weights get no gradient.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { View } from '../gpu/buffers.ts';
import { dropoutBackward, dropoutForward, type DropoutMask } from '../ops/dropout.ts';
import { matmul } from '../ops/matmul.ts';
import type { GPT2Config } from './config.ts';
import {
  loraTable,
  LORA_MODULE_ORDER,
  type LoraConfig,
  type LoraModule,
  type LoraSlot,
  type LoraTable,
} from './lora-table.ts';
import { paramView } from './param-table.ts';

/** Dropout of one forward pass: the seed its masks are drawn with (null = no dropout). */
export type LoraPass = { dropoutSeed: number | null };

export const EVAL_PASS: LoraPass = { dropoutSeed: null };

export class Lora {
  readonly table: LoraTable;
  readonly params: GPUBuffer;
  grads: GPUBuffer | null = null;
  private readonly scratch = new Map<string, GPUBuffer>();

  /** `params` laid out by loraTable(config, lora, {valueHead, scoreHead}). */
  constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    lora: LoraConfig,
    params: Float32Array,
    { valueHead = false, scoreHead = false } = {},
  ) {
    this.table = loraTable(config, lora, { valueHead, scoreHead });
    if (params.length !== this.table.total)
      throw new Error(`Lora: params has ${params.length} elements, the table ${this.table.total}`);
    this.params = gpu.upload(params, 'lora.params');
  }

  /** The widest adapted input: scratch for dropout(x) is sized for it, so it never grows within a pass. */
  private get maxIn(): number {
    return Math.max(0, ...this.table.slots.map((s) => s.inF));
  }

  get scaling(): number {
    return this.table.scaling;
  }

  allocateGrads(): GPUBuffer {
    this.grads ??= this.gpu.createBuffer(this.table.total * 4, 'lora.grads');
    return this.grads;
  }

  zeroGrads(): void {
    this.gpu.clear(this.allocateGrads());
  }

  /** The adapted slot of (layer, module), or null when the module is not targeted. */
  slot(layer: number, module: LoraModule): LoraSlot | null {
    return this.table.slotOf.get(`${layer}.${module}`) ?? null;
  }

  /** out (N, out) += scaling * dropout(inp) (N, in) @ A^T @ B^T; nothing when the module is not adapted. */
  forward(
    layer: number,
    module: LoraModule,
    { out }: { out: GPUBuffer },
    { inp }: { inp: GPUBuffer },
    N: number,
    pass: LoraPass,
  ): void {
    const s = this.slot(layer, module);
    if (!s) return;
    const { r } = this.table.config;
    const xd = this.dropped(s, inp, N, pass);
    const h = this.buf('h', N * r);
    matmul(
      this.gpu,
      { out: h },
      { a: xd, b: paramView(this.params, s.A) },
      { M: N, N: r, K: s.inF, transB: true },
    );
    matmul(
      this.gpu,
      { out },
      { a: h, b: paramView(this.params, s.B) },
      { M: N, N: s.outF, K: r, transB: true, alpha: this.scaling, beta: 1 },
    );
  }

  /** dA, dB += (into grads) and dinp (N, in) += this layer's share, for dout (N, out) and the forward's inp. */
  backward(
    layer: number,
    module: LoraModule,
    { dinp }: { dinp: GPUBuffer },
    { dout, inp }: { dout: GPUBuffer; inp: GPUBuffer },
    N: number,
    pass: LoraPass,
  ): void {
    const s = this.slot(layer, module);
    if (!s) return;
    const gpu = this.gpu;
    const { r } = this.table.config;
    const g = this.allocateGrads();
    const A = paramView(this.params, s.A);
    const B = paramView(this.params, s.B);
    const xd = this.dropped(s, inp, N, pass);
    const h = this.buf('h', N * r);
    const dh = this.buf('dh', N * r);
    matmul(gpu, { out: h }, { a: xd, b: A }, { M: N, N: r, K: s.inF, transB: true });
    matmul(
      gpu,
      { out: paramView(g, s.B) },
      { a: dout, b: h },
      { M: s.outF, N: r, K: N, transA: true, alpha: this.scaling, beta: 1 },
    );
    matmul(gpu, { out: dh }, { a: dout, b: B }, { M: N, N: r, K: s.outF, alpha: this.scaling });
    matmul(
      gpu,
      { out: paramView(g, s.A) },
      { a: dh, b: xd },
      { M: r, N: s.inF, K: N, transA: true, beta: 1 },
    );
    const mask = this.mask(s, pass);
    if (!mask) {
      matmul(gpu, { out: dinp }, { a: dh, b: A }, { M: N, N: s.inF, K: r, beta: 1 });
      return;
    }
    const dxd = this.buf('dxd', N * this.maxIn);
    matmul(gpu, { out: dxd }, { a: dh, b: A }, { M: N, N: s.inF, K: r });
    dropoutBackward(gpu, { dinp }, { dout: dxd }, mask, { N: N * s.inF });
  }

  async readParams(): Promise<Float32Array> {
    return this.gpu.readF32(this.params, this.table.total);
  }

  /** Frees the scratch buffers (they are allocated again when needed). */
  releaseScratch(): void {
    this.gpu.flush(); // dispatches recorded with these buffers go first
    for (const b of this.scratch.values()) this.gpu.destroy(b);
    this.scratch.clear();
  }

  dispose(): void {
    this.releaseScratch(); // flushes first
    this.gpu.destroy(this.params);
    if (this.grads) this.gpu.destroy(this.grads);
  }

  /** The dropout of slot s in this pass, or null when there is none. */
  private mask(s: LoraSlot, pass: LoraPass): DropoutMask | null {
    const p = this.table.config.dropout;
    if (pass.dropoutSeed === null || p === 0) return null;
    return {
      seed: pass.dropoutSeed,
      stream: s.layer * LORA_MODULE_ORDER.length + LORA_MODULE_ORDER.indexOf(s.module),
      p,
    };
  }

  /** dropout(inp) in scratch, or inp itself when there is no dropout. */
  private dropped(s: LoraSlot, inp: GPUBuffer, N: number, pass: LoraPass): GPUBuffer | View {
    const mask = this.mask(s, pass);
    if (!mask) return inp;
    const xd = this.buf('xd', N * this.maxIn);
    dropoutForward(this.gpu, { out: xd }, { inp }, mask, { N: N * s.inF });
    return xd;
  }

  /** A scratch buffer of at least `floats` elements, grown when needed. */
  private buf(name: string, floats: number): GPUBuffer {
    const have = this.scratch.get(name);
    if (have && have.size >= floats * 4) return have;
    if (have) {
      this.gpu.flush(); // dispatches recorded with the old buffer go first
      this.gpu.destroy(have);
    }
    const b = this.gpu.createBuffer(floats * 4, `lora.${name}`);
    this.scratch.set(name, b);
    return b;
  }
}
