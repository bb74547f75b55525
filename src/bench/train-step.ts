/** One GPT-2 language-model training step on our kernels: forward, cross-entropy, backward, AdamW. */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { GPT2, type HeadBuffers } from '../model/gpt2.ts';
import { initGPT2Params } from '../model/init.ts';
import { AdamW } from '../model/optimizer.ts';

export interface LmBatch {
  B: number;
  T: number;
  ids: Int32Array; // (B, T)
  targets: Int32Array; // (B*T) next tokens
}

/** Random ids and their next-token targets (the last position predicts a random token too). */
export function randomLmBatch(V: number, B: number, T: number, seed = 1): LmBatch {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % V;
  const ids = Int32Array.from({ length: B * T }, next);
  const targets = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T === 0 ? next() : ids[i + 1]));
  return { B, T, ids, targets };
}

export class LmTrainer {
  readonly net: GPT2;
  readonly opt: AdamW;
  private head: HeadBuffers | null = null;

  constructor(
    readonly gpu: Gpu,
    cfg: GPT2Config,
    { seed = 0, lr = 1e-4 } = {},
  ) {
    this.net = new GPT2(gpu, cfg, initGPT2Params(cfg, { seed }));
    this.opt = new AdamW(gpu, this.net.table.total, { lr, weightDecay: 0 });
  }

  /** Records one step; `await gpu.sync()` (or a read) waits for it. */
  step({ B, T, ids, targets }: LmBatch): void {
    const net = this.net;
    net.forward({ B, T, ids });
    this.head = net.headForward(targets);
    net.zeroGrads();
    net.headBackward({ dlogprob: -1 / (B * T) });
    net.backward();
    this.opt.step(net.params, net.grads!);
  }

  /** Mean cross-entropy of the last step's forward (before its update). */
  async lastLoss(): Promise<number> {
    if (!this.head) throw new Error('no step yet');
    const { B, T } = this.net.batchShape;
    const logprob = await this.gpu.readF32(this.head.logprob, B * T);
    return -logprob.reduce((a, b) => a + b, 0) / (B * T);
  }

  dispose(): void {
    this.net.dispose();
    this.opt.dispose();
  }
}
