/** The GPT-2 shapes the bench and the profiler run, by name. */
import { GPT2_LARGE, GPT2_MEDIUM, GPT2_SMALL, makeGPT2Config, type GPT2Config } from '../model/config.ts';

export const BENCH_MODELS = {
  /** A few seconds per PPO step on SwiftShader. */
  tiny: makeGPT2Config({ vocab_size: 512, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 }),
  /** The bench's small GPT-2 (train step against TF.js and PyTorch). */
  small: makeGPT2Config({ vocab_size: 2048, n_positions: 64, n_embd: 128, n_layer: 2, n_head: 4 }),
  '124M': GPT2_SMALL,
  '355M': GPT2_MEDIUM,
  '774M': GPT2_LARGE,
} as const satisfies Record<string, GPT2Config>;

export type BenchModelName = keyof typeof BENCH_MODELS;

export function benchModel(name: string): GPT2Config {
  if (!(name in BENCH_MODELS))
    throw new Error(`unknown model '${name}': one of ${Object.keys(BENCH_MODELS).join(', ')}`);
  return BENCH_MODELS[name as BenchModelName];
}

/** "C768 L12 NH12 V50257". */
export function shapeName(c: GPT2Config): string {
  return `C${c.n_embd} L${c.n_layer} NH${c.n_head} V${c.vocab_size}`;
}
