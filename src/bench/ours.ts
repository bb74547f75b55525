/**
 * Our side of each bench case, on one Gpu: a GPT-2 LM training step, batched generation, a PPO step.
 * Each returns the median time and the peak bytes of our allocations during the case (the Gpu's
 * accounting: every buffer the engine creates, not the driver's own overhead).
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { GPT2Config } from '../model/config.ts';
import { Generator } from '../model/generate.ts';
import { GPT2 } from '../model/gpt2.ts';
import { initGPT2Params } from '../model/init.ts';
import { ppoBenchSession, type PpoStepShape } from './ppo-step.ts';
import { median } from './timing.ts';
import { LmTrainer, randomLmBatch } from './train-step.ts';

export interface OursResult {
  ms: number;
  /** Peak of allocatedBytes during the case, above what was allocated before it. */
  peakBytes: number;
}

/** Runs `body` with the Gpu's peak reset to what is allocated now; the peak above that. */
async function withPeak<T>(gpu: Gpu, body: () => Promise<T>): Promise<T & { peakBytes: number }> {
  const before = gpu.allocatedBytes;
  gpu.peakBytes = before;
  const r = await body();
  return { ...r, peakBytes: gpu.peakBytes - before };
}

export function trainStepMs(gpu: Gpu, cfg: GPT2Config, B: number, T: number, reps: number) {
  return withPeak(gpu, async () => {
    const trainer = new LmTrainer(gpu, cfg);
    const batch = randomLmBatch(cfg.vocab_size, B, T);
    trainer.step(batch); // compiles the pipelines
    await gpu.sync();
    const ms = await median(reps, async () => {
      trainer.step(batch);
      await gpu.sync();
    });
    const loss = await trainer.lastLoss();
    trainer.dispose();
    return { ms, loss };
  });
}

/** Prompts of the given lengths with ids spread over the vocabulary. */
export function benchPrompts(lengths: readonly number[], V: number): number[][] {
  return lengths.map((n, b) => Array.from({ length: n }, (_, i) => (b * 7919 + i * 104729) % V));
}

/** Batched sampling as TRL's PPO samples (top_k 0, top_p 1), every row `newTokens` long. */
export function generateMs(gpu: Gpu, cfg: GPT2Config, lengths: number[], newTokens: number, reps: number) {
  return withPeak(gpu, async () => {
    const net = new GPT2(gpu, cfg, initGPT2Params(cfg, { seed: 1 }));
    const gen = new Generator(net);
    const prompts = benchPrompts(lengths, cfg.vocab_size);
    const opts = { maxNewTokens: newTokens, topK: 0, topP: 1, stopAtEos: false };
    await gen.generate(prompts, { ...opts, seed: 0 }); // compiles the pipelines
    let tokens = 0;
    let seed = 0;
    const ms = await median(reps, async () => {
      const r = await gen.generate(prompts, { ...opts, seed: ++seed });
      tokens = r.ids.reduce((n, x) => n + x.length, 0);
    });
    gen.dispose();
    net.dispose();
    return { ms, tokensPerS: (tokens / ms) * 1000 };
  });
}

/** One PPO step (src/bench/ppo-step.ts): one warm-up step, then the median of `reps` steps. */
export function ppoStepMs(gpu: Gpu, cfg: GPT2Config, shape: PpoStepShape, reps: number) {
  return withPeak(gpu, async () => {
    const session = ppoBenchSession(gpu, cfg, shape);
    await session.trainStep();
    const ms = await median(reps, async () => {
      await session.trainStep();
    });
    const rowsPerPass = session.rowsPerPass;
    session.dispose();
    // Rows per forward/backward pass (null: whole mini-batches; see memory.ts autoRowsPerPass).
    return { ms, rowsPerPass };
  });
}
