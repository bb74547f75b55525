import { describe, expect, test } from 'vitest';
import type { View } from '../../src/gpu/buffers.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import {
  logprobsBackward,
  logprobsBackwardCpu,
  logprobsForward,
  logprobsForwardCpu,
  logprobsForwardSimple,
  type LogitsDims,
} from '../../src/ops/logprobs.ts';
import { bestReduction, type Reduction } from '../../src/ops/reduction.ts';
import { expectClose, poison, randn, rng, testGpu } from '../helpers/gpu.ts';

// Expected numbers here come from the float64 CPU references in src/ops/logprobs.ts, which are checked
// against PyTorch in logits-torch.test.ts and against finite differences below.

interface Case {
  R: number;
  V: number;
  ldV: number;
  row0: number;
  temperature: number;
}

type ForwardKernel = (
  gpu: Gpu,
  outs: { logprob: GPUBuffer; lse: GPUBuffer; entropy: GPUBuffer },
  ins: { logits: View; targets: GPUBuffer },
  dims: LogitsDims,
) => void;

/** The row reductions this device can run: 'workgroup' always, 'subgroups' with the feature. */
function reductions(gpu: Gpu): Reduction[] {
  return bestReduction(gpu) === 'subgroups' ? ['workgroup', 'subgroups'] : ['workgroup'];
}

const CASES: Case[] = [
  { R: 3, V: 50257, ldV: 50257, row0: 2, temperature: 1 }, // GPT-2's odd vocabulary: scalar kernels
  { R: 3, V: 50257, ldV: 50260, row0: 0, temperature: 0.7 }, // padded rows: vec4 kernels
  { R: 9, V: 37, ldV: 37, row0: 1, temperature: 1 },
  { R: 9, V: 37, ldV: 40, row0: 0, temperature: 1.3 },
  { R: 4, V: 301, ldV: 304, row0: 1, temperature: 1 }, // 76 vec4s on 64 invocations: some take two
  { R: 2, V: 3001, ldV: 3004, row0: 0, temperature: 1 }, // 128 invocations per row
];

/** Logits (R, ldV): uniform in [-8, 8), the last row in [-80, 80); padding columns NaN. */
function makeLogits({ R, V, ldV }: Case, seed: number): Float32Array {
  const x = new Float32Array(R * ldV).fill(NaN);
  for (let r = 0; r < R; r++) {
    const span = r === R - 1 ? 80 : 8;
    x.set(randn(V, seed + r, -span, span), r * ldV);
  }
  return x;
}

/** Targets (R): random ids, with row 1 ignored (-100) and the last row at V - 1. */
function makeTargets({ R, V }: Case, seed: number): Int32Array {
  const next = rng(seed);
  const t = Int32Array.from({ length: R }, () => Math.floor(next() * V));
  t[1] = -100;
  t[R - 1] = V - 1;
  return t;
}

const SENTINEL = 12345;

/** (R, ldV) holding `value` on columns < V and `pad` on the padding columns. */
function columnsPoison({ R, V, ldV }: Case, value: number, pad: number): Float32Array {
  return Float32Array.from({ length: R * ldV }, (_, i) => (i % ldV < V ? value : pad));
}

/** The logits chunk at a 256-byte offset inside a larger buffer, as the engine carves it. */
function chunkView(gpu: Gpu, logits: Float32Array): View {
  const buffer = gpu.createBuffer(256 + logits.byteLength + 64, 'logits chunk');
  poison(gpu, buffer, buffer.size);
  const view = { buffer, offset: 256, size: logits.byteLength };
  gpu.write(view, logits);
  return view;
}

/** A per-row array of N = row0 + R + 2 rows holding `rows` at row0, the rest NaN. */
function rowsAt(
  c: Case,
  rows: ArrayLike<number> | null,
  Ctor: typeof Float32Array | typeof Int32Array = Float32Array,
) {
  const all = new Ctor(c.row0 + c.R + 2).fill(Ctor === Int32Array ? -100 : NaN);
  if (rows) all.set(rows, c.row0);
  return all;
}

function dims(c: Case): LogitsDims {
  return { R: c.R, V: c.V, ldV: c.ldV, row0: c.row0, temperature: c.temperature };
}

/** The chunk rows [row0, row0 + R) of a per-row GPU array; the other rows must still be poison. */
async function readRows(gpu: Gpu, buf: GPUBuffer, c: Case): Promise<Float32Array> {
  const all = await gpu.readF32(buf, c.row0 + c.R + 2);
  all.forEach((v, i) => {
    if (i < c.row0 || i >= c.row0 + c.R) expect(v, `row ${i} outside the chunk was written`).toBeNaN();
  });
  return all.subarray(c.row0, c.row0 + c.R);
}

/** Columns < V of each row of (R, ldV); with `pad`, padding columns must still hold it (untouched). */
function columns(x: ArrayLike<number>, { R, V, ldV }: Case, pad: number | null): Float32Array {
  const out = new Float32Array(R * V);
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < ldV; j++) {
      if (j < V) out[r * V + j] = x[r * ldV + j];
      else if (pad !== null) expect(x[r * ldV + j], `padding column ${j} of row ${r} was written`).toBe(pad);
    }
  }
  return out;
}

describe('logprobs forward, GPU vs CPU reference', () => {
  for (const c of CASES) {
    test(`R=${c.R} V=${c.V} ldV=${c.ldV} row0=${c.row0} temperature=${c.temperature}`, async () => {
      const gpu = await testGpu();
      const logits = makeLogits(c, 11);
      const targets = makeTargets(c, 12);
      const ref = logprobsForwardCpu(logits, targets, c);
      const view = chunkView(gpu, logits);
      const tgt = gpu.upload(rowsAt(c, targets, Int32Array), 'targets');
      // f32 sums of V terms vs float64. The row kernels sum V / logprobsRowLanes(V) terms per
      // invocation (~200 for V = 50257), then merge the partials: within 1e-5 (seen: 6e-6); the simple
      // kernel sums 50257 terms serially, so its error grows ~sqrt(V) eps (seen: 5e-5).
      const kernels: [string, ForwardKernel, number][] = [
        ...reductions(gpu).map((red): [string, ForwardKernel, number] => [
          `logprobsForward ${red}`,
          (g, o, i, d) => logprobsForward(g, o, i, d, red),
          2e-5,
        ]),
        ['logprobsForwardSimple', logprobsForwardSimple, 2e-4],
      ];
      for (const [name, kernel, atol] of kernels) {
        const [logprob, lse, entropy] = ['logprob', 'lse', 'entropy'].map((n) =>
          gpu.upload(rowsAt(c, null), n),
        );
        kernel(gpu, { logprob, lse, entropy }, { logits: view, targets: tgt }, dims(c));
        const what = `${name} V=${c.V}`;
        expectClose(await readRows(gpu, lse, c), ref.lse, { atol, rtol: 1e-6, what: `${what} lse` });
        expectClose(await readRows(gpu, entropy, c), ref.entropy, {
          atol,
          rtol: 1e-6,
          what: `${what} entropy`,
        });
        expectClose(await readRows(gpu, logprob, c), ref.logprob!, {
          atol,
          rtol: 1e-6,
          what: `${what} logprob`,
        });
      }
      // Without targets only lse and entropy are written.
      for (const red of reductions(gpu)) {
        const [lse, entropy] = ['lse', 'entropy'].map((n) => gpu.upload(rowsAt(c, null), n));
        logprobsForward(gpu, { logprob: null, lse, entropy }, { logits: view, targets: null }, dims(c), red);
        expectClose(await readRows(gpu, entropy, c), ref.entropy, {
          atol: 2e-5,
          rtol: 1e-6,
          what: `${red}: entropy only`,
        });
        expectClose(await readRows(gpu, lse, c), ref.lse, {
          atol: 2e-5,
          rtol: 1e-6,
          what: `${red}: lse only`,
        });
      }
    });
  }
});

describe('logprobs backward, GPU vs CPU reference', () => {
  for (const c of CASES) {
    test(`R=${c.R} V=${c.V} ldV=${c.ldV} row0=${c.row0} temperature=${c.temperature}`, async () => {
      const gpu = await testGpu();
      const logits = makeLogits(c, 21);
      const targets = makeTargets(c, 22);
      const fwd = logprobsForwardCpu(logits, targets, c);
      const dlogprob = randn(c.R, 23);
      const dentropy = randn(c.R, 24);
      const bufs = {
        targets: gpu.upload(rowsAt(c, targets, Int32Array), 'targets'),
        lse: gpu.upload(rowsAt(c, fwd.lse), 'lse'),
        entropy: gpu.upload(rowsAt(c, fwd.entropy), 'entropy'),
        dlogprob: gpu.upload(rowsAt(c, dlogprob), 'dlogprob'),
        dentropy: gpu.upload(rowsAt(c, dentropy), 'dentropy'),
      };
      const terms = [
        { name: 'dlogprob + dentropy', dlogprob: bufs.dlogprob, dentropy: bufs.dentropy },
        { name: 'dlogprob constant', dlogprob: -0.25, dentropy: null },
        { name: 'dentropy only', dlogprob: null, dentropy: bufs.dentropy },
      ];
      for (const { name, dlogprob: dlp, dentropy: dH } of terms) {
        const expected = columns(
          logprobsBackwardCpu(
            logits,
            {
              targets,
              lse: fwd.lse,
              entropy: fwd.entropy,
              dlogprob: typeof dlp === 'number' ? dlp : dlp && dlogprob,
              dentropy: dH && dentropy,
            },
            c,
          ),
          c,
          null,
        );
        const inputs = { ...bufs, dlogprob: dlp, dentropy: dH };
        // Out of place, into a buffer at a 256-byte offset poisoned with NaN on columns < V and with
        // a sentinel on the padding columns (where the logits hold NaN).
        const dlogits = chunkView(gpu, columnsPoison(c, NaN, SENTINEL));
        logprobsBackward(gpu, { dlogits }, { logits: chunkView(gpu, logits), ...inputs }, dims(c));
        const got = columns(await gpu.readF32(dlogits), c, SENTINEL);
        // p = exp(z - lse) carries lse's f32 error relatively; gradients are at most ~|dlogprob|.
        expectClose(got, expected, { atol: 2e-6, rtol: 1e-4, what: `${name}: dlogits` });
        // In place: the logits chunk becomes dlogits; its NaN padding must stay.
        const inplace = chunkView(gpu, logits);
        logprobsBackward(gpu, { dlogits: inplace }, { logits: inplace, ...inputs }, dims(c));
        const gotInPlace = columns(await gpu.readF32(inplace), c, NaN);
        expectClose(gotInPlace, expected, { atol: 2e-6, rtol: 1e-4, what: `${name}: dlogits in place` });
      }
    });
  }

  test('refuses missing inputs and overlapping out-of-place chunks', async () => {
    const gpu = await testGpu();
    const c: Case = { R: 2, V: 64, ldV: 64, row0: 0, temperature: 1 };
    const buf = gpu.createBuffer(1024, 'b');
    const half = { buffer: buf, offset: 256, size: 512 };
    const none = { targets: null, lse: buf, entropy: null, dlogprob: null, dentropy: null };
    expect(() => logprobsBackward(gpu, { dlogits: buf }, { logits: half, ...none }, c)).toThrow(
      /no dlogprob/,
    );
    expect(() => logprobsBackward(gpu, { dlogits: buf }, { logits: half, ...none, dlogprob: 1 }, c)).toThrow(
      /needs targets/,
    );
    expect(() =>
      logprobsBackward(gpu, { dlogits: buf }, { logits: half, ...none, dentropy: buf }, c),
    ).toThrow(/needs entropy/);
    const overlap = { buffer: buf, offset: 0, size: 512 };
    expect(() =>
      logprobsBackward(gpu, { dlogits: overlap }, { logits: half, ...none, dentropy: buf, entropy: buf }, c),
    ).toThrow(/overlaps/);
    expect(() => logprobsForwardCpu([1, 2], [2], { R: 1, V: 2 })).toThrow(/outside the vocabulary/);
  });
});

describe('logprobs backward CPU reference vs central finite differences (float64)', () => {
  // L(logits) = sum_r w_r logprob_r + u_r H_r; each dL/dlogits_ij against (L(x + h) - L(x - h)) / 2h.
  for (const temperature of [1, 0.7]) {
    test(`R=3 V=7 temperature=${temperature}, one row ignored`, () => {
      const d = { R: 3, V: 7, ldV: 8, temperature };
      const x = Float64Array.from(randn(d.R * d.ldV, 31, -3, 3));
      const targets = [4, -100, 0];
      const w = [0.7, -1.1, 1.9];
      const u = [-0.4, 1.3, 0.6];
      const loss = (xs: Float64Array) => {
        const f = logprobsForwardCpu(xs, targets, d);
        let L = 0;
        for (let r = 0; r < d.R; r++) L += w[r] * f.logprob![r] + u[r] * f.entropy[r];
        return L;
      };
      const f = logprobsForwardCpu(x, targets, d);
      const analytic = logprobsBackwardCpu(
        x,
        { targets, lse: f.lse, entropy: f.entropy, dlogprob: w, dentropy: u },
        d,
      );
      const h = 1e-5;
      const numeric = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        if (i % d.ldV >= d.V) continue; // padding column: gradient 0 on both sides
        const xp = x.slice();
        const xm = x.slice();
        xp[i] += h;
        xm[i] -= h;
        numeric[i] = (loss(xp) - loss(xm)) / (2 * h);
      }
      // Central differences: truncation O(h^2) ~ 1e-10, rounding ~ 1e-16 / h ~ 1e-11.
      expectClose(analytic, numeric, { atol: 1e-8, rtol: 1e-7, what: 'dlogits vs finite differences' });
    });
  }
});
