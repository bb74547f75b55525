/**
 * The optimizer state of one parameter block: AdamW's first and second moments, laid out like the
 * params and grads (the parameter table's layout), and the step count. TRL's PPOTrainer uses
 * torch.optim.Adam, i.e. weightDecay 0.
 */
import type { Gpu } from '../gpu/gpu.ts';
import { adamwUpdate, type AdamWConfig } from '../ops/adamw.ts';

export class AdamW {
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  /** Steps taken; the next step is t + 1. */
  t = 0;

  constructor(
    private readonly gpu: Gpu,
    readonly N: number,
    public config: Partial<AdamWConfig> = {},
  ) {
    this.m = gpu.createBuffer(N * 4, 'adamw.m');
    this.v = gpu.createBuffer(N * 4, 'adamw.v');
  }

  step(params: GPUBuffer, grads: GPUBuffer): void {
    this.t++;
    adamwUpdate(
      this.gpu,
      { params, m: this.m, v: this.v },
      { grads },
      { N: this.N },
      { ...this.config, t: this.t },
    );
  }

  /** Moments and step count, for checkpoints. */
  async save(): Promise<{ t: number; m: Float32Array; v: Float32Array }> {
    return {
      t: this.t,
      m: await this.gpu.readF32(this.m, this.N),
      v: await this.gpu.readF32(this.v, this.N),
    };
  }

  load({ t, m, v }: { t: number; m: Float32Array; v: Float32Array }): void {
    if (m.length !== this.N || v.length !== this.N)
      throw new Error(`AdamW state has ${m.length} elements, expected ${this.N}`);
    this.t = t;
    this.gpu.write(this.m, m);
    this.gpu.write(this.v, v);
  }

  dispose(): void {
    this.gpu.destroy(this.m);
    this.gpu.destroy(this.v);
  }
}
