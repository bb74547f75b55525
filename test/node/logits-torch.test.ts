import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import {
  countTargets,
  crossentropyBackward,
  crossentropyBackwardCpu,
  crossentropyForward,
  crossentropyForwardCpu,
  crossentropyLoss,
  shiftLabels,
} from '../../src/ops/crossentropy.ts';
import {
  entropyBackward,
  entropyBackwardCpu,
  entropyForward,
  entropyForwardCpu,
} from '../../src/ops/entropy.ts';
import {
  logprobsBackward,
  logprobsBackwardCpu,
  logprobsForward,
  logprobsForwardCpu,
} from '../../src/ops/logprobs.ts';
import { expectClose, poison, testGpu } from '../helpers/gpu.ts';

// Every expected number here is from PyTorch: test/fixtures/logits/logits_torch.json, written by
// test/fixtures/scripts/make_logits.py (torch.log_softmax + gather, TRL's entropy_from_logits,
// F.cross_entropy with ignore_index -100, transformers' ForCausalLMLoss, and their autograd gradients).

interface LogprobCase {
  R: number;
  V: number;
  temperature: number;
  logits: number[];
  targets: number[];
  w: number[];
  u: number[];
  logprob: number[];
  lse: number[];
  entropy: number[];
  dlogits: number[];
  dlogits_entropy: number[];
}
interface Fixture {
  logprobs: LogprobCase[];
  cross_entropy: {
    R: number;
    V: number;
    logits: number[];
    targets: number[];
    loss: number;
    dlogits: number[];
  };
  causal_lm: {
    B: number;
    T: number;
    V: number;
    logits: number[];
    labels: number[];
    loss: number;
    dlogits: number[];
  };
  gpt2_vocab: {
    R: number;
    V: number;
    scales: number[];
    targets: number[];
    w: number[];
    u: number[];
    logprob: number[];
    lse: number[];
    entropy: number[];
    cols: number[];
    dlogits_cols: number[][];
  };
}

const fx = JSON.parse(
  readFileSync(new URL('../fixtures/logits/logits_torch.json', import.meta.url), 'utf8'),
) as Fixture;

// The CPU references run in float64 on the same float32 inputs as PyTorch's float64 run.
const F64 = { atol: 1e-12, rtol: 1e-10 };
// GPU f32 against float64. Worst seen on SwiftShader: 1e-5 on a logprob of about -100 (a +-80 row),
// 3e-6 on a gradient.
const GPU_STATS = { atol: 2e-5, rtol: 1e-6 };
const GPU_GRAD = { atol: 2e-6, rtol: 1e-4 };

function f32Buffer(gpu: Gpu, data: ArrayLike<number>, label: string): GPUBuffer {
  return gpu.upload(Float32Array.from(data), label);
}

function poisoned(gpu: Gpu, n: number, label: string): GPUBuffer {
  const b = gpu.createBuffer(n * 4, label);
  poison(gpu, b, n * 4);
  return b;
}

describe('logprobs and entropy vs PyTorch (R=9, V=37, rows of +-80 among them)', () => {
  for (const c of fx.logprobs) {
    const dims = { R: c.R, V: c.V, temperature: c.temperature };

    test(`CPU references, temperature ${c.temperature}`, () => {
      const f = logprobsForwardCpu(c.logits, c.targets, dims);
      expectClose(f.logprob!, c.logprob, { ...F64, what: 'logprob' });
      expectClose(f.lse, c.lse, { ...F64, what: 'lse' });
      expectClose(f.entropy, c.entropy, { ...F64, what: 'entropy' });
      expectClose(entropyForwardCpu(c.logits, dims), c.entropy, { ...F64, what: 'entropyForwardCpu' });
      const saved = { targets: c.targets, lse: f.lse, entropy: f.entropy };
      const d = logprobsBackwardCpu(c.logits, { ...saved, dlogprob: c.w, dentropy: c.u }, dims);
      expectClose(d, c.dlogits, { ...F64, what: 'dlogits' });
      const dH = entropyBackwardCpu(c.logits, { lse: f.lse, entropy: f.entropy, dentropy: c.u }, dims);
      expectClose(dH, c.dlogits_entropy, { ...F64, what: 'entropy dlogits' });
    });

    test(`GPU kernels, temperature ${c.temperature}`, async () => {
      const gpu = await testGpu();
      const logits = f32Buffer(gpu, c.logits, 'logits');
      const targets = gpu.upload(Int32Array.from(c.targets), 'targets');
      const [logprob, lse, entropy] = ['logprob', 'lse', 'entropy'].map((n) => poisoned(gpu, c.R, n));
      logprobsForward(gpu, { logprob, lse, entropy }, { logits, targets }, dims);
      expectClose(await gpu.readF32(logprob, c.R), c.logprob, { ...GPU_STATS, what: 'logprob' });
      expectClose(await gpu.readF32(lse, c.R), c.lse, { ...GPU_STATS, what: 'lse' });
      expectClose(await gpu.readF32(entropy, c.R), c.entropy, { ...GPU_STATS, what: 'entropy' });

      const [lse2, entropy2] = ['lse', 'entropy'].map((n) => poisoned(gpu, c.R, n));
      entropyForward(gpu, { entropy: entropy2, lse: lse2 }, { logits }, dims);
      expectClose(await gpu.readF32(entropy2, c.R), c.entropy, { ...GPU_STATS, what: 'entropyForward' });

      const w = f32Buffer(gpu, c.w, 'w');
      const u = f32Buffer(gpu, c.u, 'u');
      const dlogits = poisoned(gpu, c.R * c.V, 'dlogits');
      logprobsBackward(gpu, { dlogits }, { logits, targets, lse, entropy, dlogprob: w, dentropy: u }, dims);
      expectClose(await gpu.readF32(dlogits, c.R * c.V), c.dlogits, { ...GPU_GRAD, what: 'dlogits' });
      poison(gpu, dlogits, c.R * c.V * 4);
      entropyBackward(gpu, { dlogits }, { logits, lse, entropy, dentropy: u }, dims);
      expectClose(await gpu.readF32(dlogits, c.R * c.V), c.dlogits_entropy, {
        ...GPU_GRAD,
        what: 'entropy dlogits',
      });
    });
  }
});

describe('cross-entropy vs PyTorch', () => {
  test('F.cross_entropy(ignore_index=-100), mean over non-ignored rows, and its gradient', async () => {
    const c = fx.cross_entropy;
    const dims = { R: c.R, V: c.V };
    const count = countTargets(c.targets);
    expect(count, 'two of the nine targets are -100 (make_logits.py)').toBe(7);
    const cpu = crossentropyForwardCpu(c.logits, c.targets, { ...dims, count });
    expect(cpu.loss).toBeCloseTo(c.loss, 10);
    const lseCpu = logprobsForwardCpu(c.logits, null, dims).lse;
    const dCpu = crossentropyBackwardCpu(c.logits, { targets: c.targets, lse: lseCpu }, { ...dims, count });
    expectClose(dCpu, c.dlogits, { ...F64, what: 'CPU dlogits' });

    const gpu = await testGpu();
    const logits = f32Buffer(gpu, c.logits, 'logits');
    const targets = gpu.upload(Int32Array.from(c.targets), 'targets');
    const [logprob, lse, entropy] = ['logprob', 'lse', 'entropy'].map((n) => poisoned(gpu, c.R, n));
    crossentropyForward(gpu, { logprob, lse, entropy }, { logits, targets }, dims);
    const loss = crossentropyLoss(await gpu.readF32(logprob, c.R), count);
    expect(Math.abs(loss - c.loss), `GPU loss ${loss} vs torch ${c.loss}`).toBeLessThan(2e-5);
    // In place: the logits chunk becomes dlogits.
    crossentropyBackward(gpu, { dlogits: logits }, { logits, targets, lse }, { ...dims, count });
    expectClose(await gpu.readF32(logits, c.R * c.V), c.dlogits, { ...GPU_GRAD, what: 'GPU dlogits' });
  });

  test("transformers' ForCausalLMLoss: shifted labels, padding -100, and its gradient", async () => {
    const c = fx.causal_lm;
    const R = c.B * c.T;
    const dims = { R, V: c.V };
    const targets = shiftLabels(c.labels, c);
    const count = countTargets(targets);
    // (T - 1) positions per sequence, less the second sequence's two padded labels (make_logits.py).
    expect(count).toBe(2 * (c.T - 1) - 2);
    // transformers computes this one in float32, hence the looser tolerance even on the CPU.
    expect(
      Math.abs(crossentropyForwardCpu(c.logits, targets, { ...dims, count }).loss - c.loss),
    ).toBeLessThan(1e-6);

    const gpu = await testGpu();
    const logits = f32Buffer(gpu, c.logits, 'logits');
    const tgt = gpu.upload(targets, 'targets');
    const [logprob, lse, entropy] = ['logprob', 'lse', 'entropy'].map((n) => poisoned(gpu, R, n));
    crossentropyForward(gpu, { logprob, lse, entropy }, { logits, targets: tgt }, dims);
    const loss = crossentropyLoss(await gpu.readF32(logprob, R), count);
    expect(Math.abs(loss - c.loss), `GPU loss ${loss} vs transformers ${c.loss}`).toBeLessThan(2e-6);
    const dlogits = poisoned(gpu, R * c.V, 'dlogits');
    crossentropyBackward(gpu, { dlogits }, { logits, targets: tgt, lse }, { ...dims, count });
    expectClose(await gpu.readF32(dlogits, R * c.V), c.dlogits, {
      atol: 1e-7,
      rtol: 1e-4,
      what: 'GPU dlogits',
    });
  });
});

describe("logprobs vs PyTorch on GPT-2's vocabulary (R=3, V=50257)", () => {
  const c = fx.gpt2_vocab;

  /** make_logits.py's formula: float32(((j * 7919 + r * 104729) % 4001 - 2000) / scales[r]). */
  function logits(ldV: number): Float32Array {
    const x = new Float32Array(c.R * ldV).fill(NaN);
    for (let r = 0; r < c.R; r++) {
      for (let j = 0; j < c.V; j++) x[r * ldV + j] = (((j * 7919 + r * 104729) % 4001) - 2000) / c.scales[r];
    }
    return x;
  }

  function gradAtCols(d: ArrayLike<number>, ldV: number): number[] {
    return Array.from({ length: c.R }, (_, r) => c.cols.map((j) => d[r * ldV + j])).flat();
  }

  test('CPU references', () => {
    const dims = { R: c.R, V: c.V };
    const x = logits(c.V);
    const f = logprobsForwardCpu(x, c.targets, dims);
    expectClose(f.logprob!, c.logprob, { ...F64, what: 'logprob' });
    expectClose(f.lse, c.lse, { ...F64, what: 'lse' });
    expectClose(f.entropy, c.entropy, { ...F64, what: 'entropy' });
    const d = logprobsBackwardCpu(x, { targets: c.targets, ...f, dlogprob: c.w, dentropy: c.u }, dims);
    expectClose(gradAtCols(d, c.V), c.dlogits_cols.flat(), { ...F64, what: 'dlogits' });
  });

  for (const ldV of [c.V, c.V + 3]) {
    test(`GPU kernels, ldV=${ldV} (${ldV % 4 ? 'scalar' : 'vec4'} loads), in place`, async () => {
      const gpu = await testGpu();
      const dims = { R: c.R, V: c.V, ldV };
      const chunk = f32Buffer(gpu, logits(ldV), 'logits');
      const targets = gpu.upload(Int32Array.from(c.targets), 'targets');
      const [logprob, lse, entropy] = ['logprob', 'lse', 'entropy'].map((n) => poisoned(gpu, c.R, n));
      logprobsForward(gpu, { logprob, lse, entropy }, { logits: chunk, targets }, dims);
      expectClose(await gpu.readF32(logprob, c.R), c.logprob, { ...GPU_STATS, what: 'logprob' });
      expectClose(await gpu.readF32(lse, c.R), c.lse, { ...GPU_STATS, what: 'lse' });
      expectClose(await gpu.readF32(entropy, c.R), c.entropy, { ...GPU_STATS, what: 'entropy' });
      const inputs = {
        targets,
        lse,
        entropy,
        dlogprob: f32Buffer(gpu, c.w, 'w'),
        dentropy: f32Buffer(gpu, c.u, 'u'),
      };
      logprobsBackward(gpu, { dlogits: chunk }, { logits: chunk, ...inputs }, dims);
      const d = await gpu.readF32(chunk, c.R * ldV);
      expectClose(gradAtCols(d, ldV), c.dlogits_cols.flat(), { ...GPU_GRAD, what: 'dlogits' });
    });
  }
});
