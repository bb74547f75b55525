import { parseCliArgs, positiveInt } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { buildTfGpt2, loadTfWebGpu } from '../bench/tfjs-gpt2.ts';
import { LmTrainer, randomLmBatch } from '../bench/train-step.ts';
import { adapterName } from '../gpu/device.ts';
import { fmtBytes, type Gpu } from '../gpu/gpu.ts';
import { createNodeGpu, nodeGpu } from '../gpu/node.ts';
import { GPT2_SMALL, makeGPT2Config, type GPT2Config } from '../model/config.ts';
import { Generator } from '../model/generate.ts';
import { GPT2 } from '../model/gpt2.ts';
import { initGPT2Params } from '../model/init.ts';
import { matmulGflops } from '../ops/matmul.ts';
import type { Command } from './command.ts';

/** One line of the bench's JSON: ours against a baseline on the same adapter, in one run. */
export interface BenchCase {
  name: string;
  ours_ms: number | null;
  baseline: string | null;
  baseline_ms: number | null;
  /** baseline_ms / ours_ms: how many times faster ours is. */
  ratio: number | null;
  /** Extra figures (GFLOP/s, bytes, tokens/s), named. */
  [extra: string]: number | string | null;
}

/** The small GPT-2 whose training step is timed against TF.js. */
const SMALL = { vocab_size: 2048, n_positions: 64, n_embd: 128, n_layer: 2, n_head: 4 };
const SMALL_BATCH = { B: 4, T: 32 };

async function median(reps: number, run: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function oursTrainStepMs(gpu: Gpu, cfg: GPT2Config, B: number, T: number, reps: number) {
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
}

async function tfTrainStepMs(cfg: GPT2Config, B: number, T: number, reps: number) {
  const tf = await loadTfWebGpu(nodeGpu());
  const model = buildTfGpt2(
    tf,
    { V: cfg.vocab_size, maxT: cfg.n_positions, C: cfg.n_embd, L: cfg.n_layer, NH: cfg.n_head },
    1e-4,
  );
  const batch = randomLmBatch(cfg.vocab_size, B, T);
  await model.step(batch.ids, batch.targets, B, T);
  const ms = await median(reps, async () => {
    await model.step(batch.ids, batch.targets, B, T);
  });
  model.dispose();
  return ms;
}

async function tfMatmulMs(M: number, N: number, K: number, reps: number) {
  const tf = await loadTfWebGpu(nodeGpu());
  const a = tf.randomNormal([M, K]);
  const b = tf.randomNormal([K, N]);
  const run = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await run();
  const ms = await median(reps, run);
  tf.dispose([a, b]);
  return ms;
}

export const bench: Command = {
  name: 'bench',
  summary: 'time our kernels against TF.js WebGPU and our naive kernel on this adapter',
  usage:
    'rlhf-studio bench [--json FILE] [--reps N] [--big | --no-big]\n' +
    '  --big times GPT-2 124M (B=8, T=24); on by default on real GPUs, off on software adapters.',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        json: { type: 'string' },
        reps: { type: 'string', default: '5' },
        big: { type: 'boolean' },
        'no-big': { type: 'boolean' },
      },
    });
    const reps = positiveInt('--reps', values.reps);
    const json = values.json !== undefined ? checkOutFile(values.json, '--json') : undefined;
    const gpu = await createNodeGpu();
    const adapter = adapterName(gpu.adapter);
    console.log(`adapter: ${adapter}`);
    const cases: BenchCase[] = [];
    const report = (c: BenchCase) => {
      cases.push(c);
      const ratio = c.ratio === null ? '' : `  ratio ${c.ratio.toFixed(2)}x`;
      const extra = Object.entries(c)
        .filter(([k]) => !['name', 'ours_ms', 'baseline', 'baseline_ms', 'ratio'].includes(k))
        .map(([k, v]) => `${k} ${typeof v === 'number' ? +v.toPrecision(4) : v}`)
        .join(', ');
      const base = c.baseline ? `  ${c.baseline} ${c.baseline_ms?.toFixed(1)} ms` : '';
      console.log(
        `${c.name.padEnd(34)} ours ${c.ours_ms?.toFixed(1)} ms${base}${ratio}${extra ? `  (${extra})` : ''}`,
      );
    };

    // 1. matmul throughput at GPT-2's c_fc-like shape.
    const [M, N, K] = [256, 768, 768];
    const flop = 2 * M * N * K;
    const tiledGf = await matmulGflops(gpu, gpu.adapter.isFallback ? 'vec4' : 'tiled', { M, N, K }, reps);
    const naiveGf = await matmulGflops(gpu, 'naive', { M, N, K }, Math.min(reps, 3));
    const tfMs = await tfMatmulMs(M, N, K, reps);
    const oursMs = flop / tiledGf / 1e6;
    report({
      name: `matmul ${M}x${K}x${N} vs naive`,
      ours_ms: oursMs,
      baseline: 'ours-naive',
      baseline_ms: flop / naiveGf / 1e6,
      ratio: naiveGf > 0 ? tiledGf / naiveGf : null,
      ours_gflops: tiledGf,
      baseline_gflops: naiveGf,
    });
    report({
      name: `matmul ${M}x${K}x${N} vs tfjs`,
      ours_ms: oursMs,
      baseline: 'tfjs-webgpu',
      baseline_ms: tfMs,
      ratio: tfMs / oursMs,
      ours_gflops: tiledGf,
      baseline_gflops: flop / tfMs / 1e6,
    });

    // 2. one training step of a small GPT-2, ours vs TF.js (tf.grads-style autodiff + Adam).
    const small = makeGPT2Config(SMALL);
    const { B, T } = SMALL_BATCH;
    const ours = await oursTrainStepMs(gpu, small, B, T, reps);
    const tf = await tfTrainStepMs(small, B, T, reps);
    report({
      name: `train step gpt2 C${small.n_embd} L${small.n_layer} V${small.vocab_size} B${B} T${T}`,
      ours_ms: ours.ms,
      baseline: 'tfjs-webgpu',
      baseline_ms: tf,
      ratio: tf / ours.ms,
    });

    // 3. GPT-2 124M, B=8, T=24: step time and peak GPU memory, where the adapter can hold it.
    const big = values['no-big'] ? false : (values.big ?? !gpu.adapter.isFallback);
    if (big) {
      const before = gpu.allocatedBytes;
      gpu.peakBytes = before;
      try {
        const r = await oursTrainStepMs(gpu, GPT2_SMALL, 8, 24, reps);
        report({
          name: 'train step gpt2-124M B8 T24',
          ours_ms: r.ms,
          baseline: null,
          baseline_ms: null,
          ratio: null,
          peak_gpu_bytes: gpu.peakBytes - before,
          peak_gpu: fmtBytes(gpu.peakBytes - before),
        });
      } catch (e) {
        console.log(`train step gpt2-124M B8 T24: not run: ${(e as Error).message}`);
      }
    } else {
      console.log('train step gpt2-124M B8 T24: skipped on a software adapter (--big runs it)');
    }

    // 4. Generation with the KV cache: 16 prompts of 3..18 tokens, 16 new tokens each, sampled on the
    //    GPU as TRL's PPO samples (top_k 0, top_p 1); the small GPT-2 above with GPT-2's vocabulary of
    //    50257 (about 10 s a run on SwiftShader, so at most 3 timed runs there).
    {
      const cfg = makeGPT2Config({ ...SMALL, vocab_size: 50257 });
      const net = new GPT2(gpu, cfg, initGPT2Params(cfg, { seed: 1 }));
      const gen = new Generator(net);
      const prompts = Array.from({ length: 16 }, (_, b) =>
        Array.from({ length: 3 + b }, (_, i) => (b * 7919 + i * 104729) % cfg.vocab_size),
      );
      const opts = { maxNewTokens: 16, topK: 0, topP: 1, stopAtEos: false };
      await gen.generate(prompts, { ...opts, seed: 0 }); // compiles the pipelines
      let tokens = 0;
      let seed = 0;
      const ms = await median(gpu.adapter.isFallback ? Math.min(reps, 3) : reps, async () => {
        const r = await gen.generate(prompts, { ...opts, seed: ++seed });
        tokens = r.ids.reduce((n, x) => n + x.length, 0);
      });
      report({
        name: `generate gpt2 C${cfg.n_embd} L${cfg.n_layer} V${cfg.vocab_size} B16 +16`,
        ours_ms: ms,
        baseline: null,
        baseline_ms: null,
        ratio: null,
        tokens_per_s: (tokens / ms) * 1000,
      });
      gen.dispose();
      net.dispose();
    }

    if (json)
      writeFileAtomic(json, new TextEncoder().encode(JSON.stringify({ adapter, cases }, null, 2) + '\n'));
    gpu.dispose();
    return 0;
  },
};
