import { BENCH_MODELS, shapeName } from '../bench/models.ts';
import { generateMs, ppoStepMs, trainStepMs } from '../bench/ours.ts';
import { modelShape, runPeer, type PeerCase, type PeerReport } from '../bench/peer.ts';
import { TRL_PPO_SHAPE, type PpoStepShape } from '../bench/ppo-step.ts';
import { parseCliArgs, positiveInt } from './args.ts';
import { checkOutFile, writeFileAtomic } from './atomic-folder.ts';
import { buildTfGpt2, loadTfWebGpu } from '../bench/tfjs-gpt2.ts';
import { median } from '../bench/timing.ts';
import { randomLmBatch } from '../bench/train-step.ts';
import { adapterName } from '../gpu/device.ts';
import { fmtBytes, type Gpu } from '../gpu/gpu.ts';
import { createNodeGpu, nodeGpu } from '../gpu/node.ts';
import { makeGPT2Config, type GPT2Config } from '../model/config.ts';
import { blockOf, matmulGflops, tileFor } from '../ops/matmul.ts';
import { TILE_NAMES, TILES, tileTableOf } from '../ops/matmul-tune.ts';
import type { Command } from './command.ts';

/** One line of the bench's JSON: ours against a baseline (and the PyTorch peer) on this machine. */
export interface BenchCase {
  name: string;
  ours_ms: number | null;
  baseline: string | null;
  baseline_ms: number | null;
  /** baseline_ms / ours_ms: how many times faster ours is. */
  ratio: number | null;
  /** Extra figures (GFLOP/s, bytes, tokens/s, the peer's ms and ratio), named. */
  [extra: string]: number | string | null;
}

/** The cases' shapes: the full set, and --quick's (seconds on SwiftShader). */
interface Sizes {
  matmul: { M: number; N: number; K: number };
  train: { cfg: GPT2Config; B: number; T: number };
  generate: { cfg: GPT2Config; lengths: number[]; newTokens: number };
  ppo: { cfg: GPT2Config; shape: PpoStepShape };
}

const range = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);

const FULL: Sizes = {
  matmul: { M: 256, N: 768, K: 768 },
  train: { cfg: BENCH_MODELS.small, B: 4, T: 32 },
  // 16 prompts of 3..18 tokens, 16 new tokens each, GPT-2's vocabulary.
  generate: {
    cfg: makeGPT2Config({ ...BENCH_MODELS.small, vocab_size: 50257 }),
    lengths: range(16, 3),
    newTokens: 16,
  },
  ppo: { cfg: BENCH_MODELS.tiny, shape: { ...TRL_PPO_SHAPE, batch_size: 8, mini_batch_size: 8 } },
};

const QUICK: Sizes = {
  matmul: { M: 64, N: 128, K: 128 },
  train: { cfg: BENCH_MODELS.tiny, B: 2, T: 8 },
  generate: { cfg: BENCH_MODELS.tiny, lengths: [3, 4, 5, 6], newTokens: 4 },
  ppo: {
    cfg: BENCH_MODELS.tiny,
    shape: { ...TRL_PPO_SHAPE, batch_size: 4, mini_batch_size: 2, ppo_epochs: 1 },
  },
};

/** Cases only a real GPU runs in useful time: GPT-2 124M and 355M at TRL's PPO defaults. */
const BIG = {
  train: { cfg: BENCH_MODELS['124M'], B: 8, T: 24 },
  generate: { cfg: BENCH_MODELS['124M'], lengths: range(16, 3), newTokens: 16 },
  ppo: [BENCH_MODELS['124M'], BENCH_MODELS['355M']].map((cfg) => ({ cfg, shape: TRL_PPO_SHAPE })),
};

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

function print(c: BenchCase): void {
  const known = ['name', 'ours_ms', 'baseline', 'baseline_ms', 'ratio'];
  const ratio = c.ratio === null ? '' : `  ratio ${c.ratio.toFixed(2)}x`;
  const extra = Object.entries(c)
    .filter(([k, v]) => !known.includes(k) && v !== null)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? +v.toPrecision(4) : v}`)
    .join(', ');
  const base = c.baseline ? `  ${c.baseline} ${c.baseline_ms?.toFixed(1)} ms` : '';
  console.log(
    `${c.name.padEnd(40)} ours ${c.ours_ms?.toFixed(1)} ms${base}${ratio}${extra ? `  (${extra})` : ''}`,
  );
}

/** Our cases, each with the spec its PyTorch peer runs (same id). */
async function runOurs(gpu: Gpu, sizes: Sizes, big: boolean, reps: number, withTf: boolean) {
  const cases: { c: BenchCase; peer: PeerCase | null }[] = [];
  const add = (c: BenchCase, peer: PeerCase | null) => {
    cases.push({ c, peer });
    print(c);
  };
  const slow = gpu.adapter.isFallback ? Math.min(reps, 3) : reps;

  // 1. matmul throughput at GPT-2's c_fc-like shape: ours, our naive kernel, TF.js.
  const { M, N, K } = sizes.matmul;
  const flop = 2 * M * N * K;
  const tiledGf = await matmulGflops(gpu, gpu.adapter.isFallback ? 'vec4' : 'tiled', { M, N, K }, reps);
  const naiveGf = await matmulGflops(gpu, 'naive', { M, N, K }, Math.min(reps, 3));
  const oursMs = flop / tiledGf / 1e6;
  const mmName = `matmul ${M}x${K}x${N}`;
  add(
    {
      name: `${mmName} vs naive`,
      ours_ms: oursMs,
      baseline: 'ours-naive',
      baseline_ms: flop / naiveGf / 1e6,
      ratio: naiveGf > 0 ? tiledGf / naiveGf : null,
      ours_gflops: tiledGf,
    },
    { id: mmName, kind: 'matmul', M, N, K },
  );
  if (withTf) {
    const tfMs = await tfMatmulMs(M, N, K, reps);
    add(
      {
        name: `${mmName} vs tfjs`,
        ours_ms: oursMs,
        baseline: 'tfjs-webgpu',
        baseline_ms: tfMs,
        ratio: tfMs / oursMs,
        ours_gflops: tiledGf,
      },
      null,
    );
  }

  // 1b. on a GPU, each block tile of the workgroup-memory kernel at a PPO step's c_fc product (TRL's
  // batch 128 x ~23 tokens, 768 -> 3072), and the one in use (the tuned table's, else pickTile's).
  if (!gpu.adapter.isFallback) {
    const big = { M: 2944, N: 3072, K: 768 };
    const byTile: Record<string, number> = {};
    for (const name of TILE_NAMES)
      byTile[`gflops_${name}`] = await matmulGflops(gpu, 'tiled', big, reps, TILES[name]);
    const picked = blockOf(tileFor(gpu, big.M, big.N));
    const gf = byTile[`gflops_${picked.BM}x${picked.BN}`];
    const name = `matmul ${big.M}x${big.K}x${big.N}`;
    add(
      {
        name: `${name} tiles`,
        ours_ms: (2 * big.M * big.N * big.K) / gf / 1e6,
        baseline: null,
        baseline_ms: null,
        ratio: null,
        picked: `${picked.BM}x${picked.BN}`,
        ...byTile,
      },
      { id: name, kind: 'matmul', ...big },
    );
  }

  // 2. one training step of a small GPT-2: ours vs TF.js (tf.grads-style autodiff + Adam).
  const trainCase = async (t: Sizes['train'], tf: boolean) => {
    const name = `train step ${shapeName(t.cfg)} B${t.B} T${t.T}`;
    const ours = await trainStepMs(gpu, t.cfg, t.B, t.T, t.cfg.n_embd >= 768 ? reps : slow);
    const tfMs = tf ? await tfTrainStepMs(t.cfg, t.B, t.T, slow) : null;
    add(
      {
        name,
        ours_ms: ours.ms,
        baseline: tfMs === null ? null : 'tfjs-webgpu',
        baseline_ms: tfMs,
        ratio: tfMs === null ? null : tfMs / ours.ms,
        peak_bytes: ours.peakBytes,
      },
      { id: name, kind: 'train', config: modelShape(t.cfg), B: t.B, T: t.T },
    );
  };
  const generateCase = async (g: Sizes['generate']) => {
    const name = `generate ${shapeName(g.cfg)} B${g.lengths.length} +${g.newTokens}`;
    const r = await generateMs(gpu, g.cfg, g.lengths, g.newTokens, slow);
    add(
      {
        name,
        ours_ms: r.ms,
        baseline: null,
        baseline_ms: null,
        ratio: null,
        tokens_per_s: r.tokensPerS,
        peak_bytes: r.peakBytes,
      },
      {
        id: name,
        kind: 'generate',
        config: modelShape(g.cfg),
        prompt_lengths: g.lengths,
        new_tokens: g.newTokens,
      },
    );
  };
  const ppoCase = async (p: Sizes['ppo']) => {
    const s = p.shape;
    const name = `ppo step ${shapeName(p.cfg)} batch ${s.batch_size}/${s.mini_batch_size} epochs ${s.ppo_epochs}`;
    const r = await ppoStepMs(gpu, p.cfg, s, slow);
    add(
      {
        name,
        ours_ms: r.ms,
        baseline: null,
        baseline_ms: null,
        ratio: null,
        peak_bytes: r.peakBytes,
        // Rows per forward/backward pass (null: whole mini-batches); memory.ts autoRowsPerPass.
        rows_per_pass: r.rowsPerPass,
      },
      { id: name, kind: 'ppo', config: modelShape(p.cfg), shape: s },
    );
  };
  await trainCase(sizes.train, withTf);
  // 3. generation with the KV cache, sampled on the GPU as TRL's PPO samples.
  await generateCase(sizes.generate);
  // 4. one PPO step at TRL's settings on a tiny model.
  await ppoCase(sizes.ppo);
  // 5. GPT-2 124M and 355M: train step, generation, PPO steps at TRL's defaults.
  if (big) {
    const attempt = async (what: string, body: () => Promise<void>) => {
      try {
        await body();
      } catch (e) {
        console.log(`${what}: not run: ${(e as Error).message}`);
      }
    };
    await attempt('train step 124M', () => trainCase(BIG.train, false));
    await attempt('generate 124M', () => generateCase(BIG.generate));
    for (const p of BIG.ppo) await attempt(`ppo step ${shapeName(p.cfg)}`, () => ppoCase(p));
  } else {
    console.log('GPT-2 124M/355M cases: skipped on a software adapter (--big runs them)');
  }
  return cases;
}

/**
 * The peer's figures beside ours: peer_ms, peer_ratio = peer_ms / ours_ms, its peak memory (CUDA),
 * or its process's peak RSS (CPU).
 */
export function mergePeer(cases: { c: BenchCase; peer: PeerCase | null }[], report: PeerReport): void {
  const byId = new Map(report.cases.map((r) => [r.id, r]));
  for (const { c, peer } of cases) {
    const r = peer && byId.get(peer.id);
    if (!r || c.ours_ms === null) continue;
    c.peer_ms = r.ms;
    c.peer_ratio = r.ms / c.ours_ms;
    c.peer_peak_bytes = r.peak_bytes;
    if (r.peak_bytes === null) c.peer_rss_peak_bytes = r.rss_peak_bytes;
    if (r.tokens_per_s !== undefined) c.peer_tokens_per_s = r.tokens_per_s;
  }
}

export const bench: Command = {
  name: 'bench',
  summary: 'time our kernels, training, generation and PPO against TF.js WebGPU and PyTorch',
  usage:
    'rlhf-studio bench [--json FILE] [--reps N] [--big | --no-big] [--quick] [--no-tfjs] [--peer PYTHON]\n' +
    "  --big       also GPT-2 124M (train B8 T24, generation) and PPO steps of 124M and 355M at TRL's\n" +
    '              defaults; on by default on real GPUs, off on software adapters\n' +
    '  --quick     tiny shapes and one rep (seconds on SwiftShader): checks that the bench runs\n' +
    '  --peer PY   also run scripts/bench_torch.py with the Python PY (needs torch, transformers) on\n' +
    '              the same cases; its times go beside ours (peer_ms, peer_ratio = peer_ms / ours_ms)',
  async run(argv) {
    const { values } = parseCliArgs({
      args: argv,
      options: {
        json: { type: 'string' },
        reps: { type: 'string' },
        big: { type: 'boolean' },
        'no-big': { type: 'boolean' },
        quick: { type: 'boolean' },
        'no-tfjs': { type: 'boolean' },
        peer: { type: 'string' },
      },
    });
    const quick = values.quick ?? false;
    const reps = positiveInt('--reps', values.reps ?? (quick ? '1' : '5'));
    const json = values.json !== undefined ? checkOutFile(values.json, '--json') : undefined;
    const gpu = await createNodeGpu();
    const adapter = adapterName(gpu.adapter);
    console.log(`adapter: ${adapter}`);
    const big = values['no-big'] ? false : (values.big ?? !gpu.adapter.isFallback);
    const cases = await runOurs(gpu, quick ? QUICK : FULL, big, reps, !values['no-tfjs']);
    const peakBytes = gpu.peakBytes;
    const tiles = tileTableOf(gpu);
    gpu.dispose();

    let peer: PeerReport | null = null;
    if (values.peer) {
      const specs = cases.flatMap(({ peer: p }) => (p ? [p] : []));
      console.log(`peer: ${values.peer} scripts/bench_torch.py on ${specs.length} cases`);
      peer = runPeer(values.peer, specs, reps);
      mergePeer(cases, peer);
      console.log(`peer device: ${peer.device}, torch ${peer.torch}`);
      for (const { c } of cases) {
        if (typeof c.peer_ms !== 'number') continue;
        const ratio = (c.peer_ratio as number).toFixed(2);
        const mem = typeof c.peer_peak_bytes === 'number' ? `, peak ${fmtBytes(c.peer_peak_bytes)}` : '';
        console.log(
          `  ${c.name.padEnd(40)} pytorch ${c.peer_ms.toFixed(1)} ms  ours/pytorch speed ${ratio}x${mem}`,
        );
      }
    }
    if (json) {
      const out = {
        adapter,
        peak_bytes: peakBytes,
        matmul_tiles: tiles,
        peer,
        cases: cases.map(({ c }) => c),
      };
      writeFileAtomic(json, new TextEncoder().encode(JSON.stringify(out, null, 2) + '\n'));
    }
    return 0;
  },
};
