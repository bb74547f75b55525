import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import type { View } from '../../src/gpu/buffers.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import {
  keptWeightsRow,
  sampleCpu,
  sampleForward,
  sampleForwardSimple,
  sampleUniform,
  type SampleOptions,
} from '../../src/ops/sample.ts';
import { poison, randn, rng, testGpu } from '../helpers/gpu.ts';

// Expected ids come from the float64 CPU reference in src/ops/sample.ts, which is checked against
// transformers' own warpers (fixture) below; the statistical test derives its probabilities by hand.

const SENTINEL = -7;

/** The logits chunk at a 256-byte offset inside a larger buffer, as the engine carves it. */
function chunkView(gpu: Gpu, logits: Float32Array): View {
  const buffer = gpu.createBuffer(256 + logits.byteLength + 64, 'logits chunk');
  poison(gpu, buffer, buffer.size);
  const view = { buffer, offset: 256, size: logits.byteLength };
  gpu.write(view, logits);
  return view;
}

/** Logits (R, ldV): uniform in [-span, span), padding columns NaN. */
function makeLogits(R: number, V: number, ldV: number, seed: number, span = 8): Float32Array {
  const x = new Float32Array(R * ldV).fill(NaN);
  for (let r = 0; r < R; r++) x.set(randn(V, seed + r, -span, span), r * ldV);
  return x;
}

/** ids (N = row0 + R + 2) filled with SENTINEL. */
function idsBuffer(gpu: Gpu, o: SampleOptions): GPUBuffer {
  return gpu.upload(new Int32Array((o.row0 ?? 0) + o.R + 2).fill(SENTINEL), 'ids');
}

/** The chunk's ids; the rows outside it must still hold SENTINEL. */
async function readIds(gpu: Gpu, ids: GPUBuffer, o: SampleOptions): Promise<Int32Array> {
  const row0 = o.row0 ?? 0;
  const all = new Int32Array((await gpu.readU32(ids, row0 + o.R + 2)).buffer);
  all.forEach((v, i) => {
    if (i < row0 || i >= row0 + o.R) expect(v, `id ${i} outside the chunk was written`).toBe(SENTINEL);
  });
  return all.slice(row0, row0 + o.R);
}

/**
 * Whether `id` is a right draw of u for row weights w up to f32 rounding: the CPU's prefix sums just
 * before and through `id` bracket u * total within `tol` * total.
 */
function validDraw(w: Float64Array, u: number, id: number, tol: number): boolean {
  if (!(w[id] > 0)) return false;
  const total = w.reduce((a, b) => a + b, 0);
  let before = 0;
  for (let j = 0; j < id; j++) before += w[j];
  return before <= (u + tol) * total && before + w[id] >= (u - tol) * total;
}

/** GPU ids must equal the CPU's; a mismatch passes only as a valid draw at a rounding boundary. */
function expectSameDraws(
  gpuIds: Int32Array,
  cpuIds: Int32Array,
  logits: Float32Array,
  o: SampleOptions,
  uniforms: ArrayLike<number>,
): number {
  const ldV = o.ldV ?? o.V;
  let mismatches = 0;
  for (let r = 0; r < o.R; r++) {
    if (gpuIds[r] === cpuIds[r]) continue;
    const w = keptWeightsRow(logits.subarray(r * ldV, r * ldV + o.V), o);
    // A token whose weight underflows f32 (exp below ~1e-38) cannot come out of the GPU; a u at an end
    // of [0, 1) then picks the nearest one that can. Only the other mismatches count.
    if (w[cpuIds[r]] / w.reduce((a, b) => a + b, 0) > 1e-30) mismatches++;
    expect(validDraw(w, uniforms[r], gpuIds[r], 1e-5), `row ${r}: GPU ${gpuIds[r]}, CPU ${cpuIds[r]}`).toBe(
      true,
    );
  }
  expect(mismatches, 'rounding mismatches').toBeLessThanOrEqual(Math.max(1, o.R / 50));
  return mismatches;
}

describe('keptWeightsRow vs transformers warpers', () => {
  interface Fixture {
    V: number;
    cases: {
      temperature: number;
      top_k: number;
      top_p: number;
      rows: { logits: number[]; kept: boolean[]; probs: number[] }[];
    }[];
  }
  // test/fixtures/scripts/make_sample_fixture.py: Temperature -> TopK -> TopP warpers in float64.
  const fx = JSON.parse(
    readFileSync(new URL('../fixtures/sample/warpers_torch.json', import.meta.url), 'utf8'),
  ) as Fixture;
  for (const c of fx.cases) {
    test(`temperature=${c.temperature} top_k=${c.top_k} top_p=${c.top_p}`, () => {
      for (const row of c.rows) {
        const w = keptWeightsRow(Float32Array.from(row.logits), {
          V: fx.V,
          temperature: c.temperature,
          topK: c.top_k,
          topP: c.top_p,
        });
        expect(Array.from(w, (x) => x > 0)).toEqual(row.kept);
        const total = w.reduce((a, b) => a + b, 0);
        row.probs.forEach((p, j) => expect(w[j] / total).toBeCloseTo(p, 12));
      }
    });
  }
});

describe('RNG twin', () => {
  test('uniforms over (row, step) fill 16 bins evenly', () => {
    // 65536 draws, 4096 per bin expected; chi-square with 15 degrees of freedom below its 0.999
    // quantile 37.697 (scipy.stats.chi2.ppf(0.999, 15)).
    const bins = new Float64Array(16);
    for (let step = 0; step < 64; step++)
      for (let row = 0; row < 1024; row++) bins[Math.floor(sampleUniform(42, step, row) * 16)]++;
    const chi2 = bins.reduce((s, n) => s + (n - 4096) ** 2 / 4096, 0);
    expect(chi2).toBeLessThan(37.697);
    expect(sampleUniform(1, 2, 3)).not.toBe(sampleUniform(2, 2, 3));
  });
});

describe('greedy: argmax with the lowest index among ties', () => {
  const cases = [
    { R: 3, V: 50257, ldV: 50257, row0: 1 },
    { R: 3, V: 50257, ldV: 50260, row0: 0 },
    { R: 40, V: 10, ldV: 12, row0: 2 },
  ];
  for (const c of cases) {
    test(`R=${c.R} V=${c.V} ldV=${c.ldV} row0=${c.row0}`, async () => {
      const gpu = await testGpu();
      const logits = makeLogits(c.R, c.V, c.ldV, 5);
      // Ties: row 0 rounded to halves (many equal maxima), row 1 all equal, the last row has its
      // maximum at the first and the last column.
      for (let j = 0; j < c.V; j++) {
        logits[j] = Math.round(logits[j] * 2) / 2;
        logits[c.ldV + j] = 0.25;
      }
      const last = (c.R - 1) * c.ldV;
      logits[last] = logits[last + c.V - 1] = 9;
      const o: SampleOptions = { ...c, greedy: true };
      const expected = sampleCpu(logits, o);
      expect(expected[1]).toBe(0);
      expect(expected[c.R - 1]).toBe(0);
      const view = chunkView(gpu, logits);
      for (const launch of [sampleForward, sampleForwardSimple]) {
        const ids = idsBuffer(gpu, o);
        launch(gpu, { ids }, { logits: view }, o);
        expect(Array.from(await readIds(gpu, ids, o)), launch.name).toEqual(Array.from(expected));
      }
    });
  }
});

describe('sampling: GPU and CPU choose the same ids from the same uniforms', () => {
  const settings: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>[] = [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.7, topK: 50, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.9 },
    { temperature: 1.3, topK: 40, topP: 0.95 },
    { temperature: 0.6, topK: 7, topP: 0.5 },
    { temperature: 1, topK: 1, topP: 1 },
    { temperature: 1, topK: 0, topP: 0 },
    { temperature: 0.05, topK: 0, topP: 1 },
  ];
  const shapes = [
    { R: 3, V: 50257, ldV: 50257, row0: 0, span: 8 },
    { R: 48, V: 300, ldV: 304, row0: 3, span: 4 },
  ];
  for (const s of shapes) {
    for (const st of settings) {
      const name = `V=${s.V} R=${s.R} T=${st.temperature} k=${st.topK} p=${st.topP}`;
      test(name, async () => {
        const gpu = await testGpu();
        const o: SampleOptions = { ...s, ...st, seed: 99, step: 5 };
        const logits = makeLogits(s.R, s.V, s.ldV, 17, s.span);
        // A row with masked (-inf) tokens, as a bad-words filter leaves them.
        for (let j = 0; j < s.V; j += 3) logits[s.ldV + j] = -Infinity;
        const view = chunkView(gpu, logits);
        // The RNG path against its CPU twin, the simple kernel too.
        const rngU = Array.from({ length: s.R }, (_, r) => sampleUniform(99, 5, s.row0 + r));
        const cpuRng = sampleCpu(logits, o);
        for (const launch of [sampleForward, sampleForwardSimple]) {
          const ids = idsBuffer(gpu, o);
          launch(gpu, { ids }, { logits: view }, o);
          expectSameDraws(await readIds(gpu, ids, o), cpuRng, logits, o, rngU);
        }
        // Given uniforms, including both ends of [0, 1).
        const next = rng(3);
        const given = Float32Array.from({ length: s.R }, (_, r) =>
          r === 0 ? 0 : r === 1 ? 1 - 2 ** -24 : next(),
        );
        const all = new Float32Array(s.row0 + s.R + 2).fill(NaN);
        all.set(given, s.row0);
        const ids = idsBuffer(gpu, o);
        sampleForward(gpu, { ids }, { logits: view, uniforms: gpu.upload(all, 'uniforms') }, o);
        expectSameDraws(await readIds(gpu, ids, o), sampleCpu(logits, o, given), logits, o, given);
      });
    }
  }

  // One row repeated R times, with uniform r at the middle of the r-th kept token's interval: each kept
  // token must come out exactly once and no removed token at all. The quantized rows (logits on a 0.25
  // grid, ~19 tokens per value) put the top-k and top-p boundaries inside groups of tied logits.
  const V = 300;
  const quantized = randn(V, 29, -2, 2).map((x) => Math.round(x * 4) / 4);
  const intervalCases = [
    { name: 'top-k 60, top-p 0.9', row: randn(V, 23, -2, 2), st: { temperature: 0.8, topK: 60, topP: 0.9 } },
    { name: 'top-k 30', row: randn(V, 37, -2, 2), st: { temperature: 1.2, topK: 30, topP: 1 } },
    { name: 'ties, top-k 40', row: quantized, st: { temperature: 1, topK: 40, topP: 1 } },
    { name: 'ties, top-p 0.3', row: quantized, st: { temperature: 0.7, topK: 0, topP: 0.3 } },
  ];
  for (const { name, row, st } of intervalCases) {
    test(`every kept token is drawn where its interval says (V=${V}, ${name})`, async () => {
      const gpu = await testGpu();
      const w = keptWeightsRow(row, { V, ...st });
      const total = w.reduce((a, b) => a + b, 0);
      const mids: number[] = [];
      const keptIds: number[] = [];
      let before = 0;
      w.forEach((x, j) => {
        if (x > 0) {
          mids.push((before + x / 2) / total);
          keptIds.push(j);
          before += x;
        }
      });
      expect(keptIds.length).toBeGreaterThan(10);
      expect(keptIds.length).toBeLessThan(V / 3);
      // Ties at the k-th largest logit are all kept, so more than k survive.
      if (st.topK === 40) expect(keptIds.length).toBeGreaterThan(40);
      const R = keptIds.length;
      const logits = new Float32Array(R * V);
      for (let r = 0; r < R; r++) logits.set(row, r * V);
      const o: SampleOptions = { R, V, ...st };
      const ids = idsBuffer(gpu, o);
      const uniforms = gpu.upload(Float32Array.from(mids), 'uniforms');
      sampleForward(gpu, { ids }, { logits: gpu.upload(logits, 'logits'), uniforms }, o);
      expect(Array.from(await readIds(gpu, ids, o))).toEqual(keptIds);
    });
  }
});

describe('sampling statistics (V = 10, 20000 draws per setting)', () => {
  // Logits ln(w) with the weights w below at shuffled positions. softmax(ln(w) / T) is proportional
  // to w^(1/T); the filters then act on the weights, so the expected probabilities follow by hand:
  //   T=1,   k=0, p=1:   p = w / 55 over all ten.
  //   T=0.5, k=7, p=0.8: w^2, top-7 keeps w = 4..10 (sum of squares 371); descending, the mass above
  //     w = 6 is (100+81+64+49)/371 = 0.792 < 0.8 (kept), above w = 5 it is 330/371 = 0.889 (removed):
  //     p = w^2 / 330 over w = 6..10.
  //   T=1,   k=0, p=0.7: descending masses above w = 6 and w = 5 are 34/55 = 0.618 (kept) and
  //     40/55 = 0.727 (removed): p = w / 40 over w = 6..10.
  //   T=1,   k=4, p=1:   p = w / 34 over w = 7..10.
  // chi-square 0.999 quantiles (scipy.stats.chi2.ppf(0.999, df)): df 9: 27.877, 4: 18.467, 3: 16.266.
  const weights = [3, 7, 1, 10, 5, 2, 9, 4, 8, 6];
  const logits1 = Float32Array.from(weights, Math.log);
  const expected = (pow: number, minW: number) => {
    const q = weights.map((w) => (w >= minW ? w ** pow : 0));
    const s = q.reduce((a, b) => a + b, 0);
    return q.map((x) => x / s);
  };
  const settings = [
    { st: { temperature: 1, topK: 0, topP: 1 }, p: expected(1, 1), quantile: 27.877 },
    { st: { temperature: 0.5, topK: 7, topP: 0.8 }, p: expected(2, 6), quantile: 18.467 },
    { st: { temperature: 1, topK: 0, topP: 0.7 }, p: expected(1, 6), quantile: 18.467 },
    { st: { temperature: 1, topK: 4, topP: 1 }, p: expected(1, 7), quantile: 16.266 },
  ];
  const R = 2000;
  const STEPS = 10;
  for (const { st, p, quantile } of settings) {
    test(`T=${st.temperature} k=${st.topK} p=${st.topP}`, async () => {
      const gpu = await testGpu();
      const V = 10;
      const logits = new Float32Array(R * V);
      for (let r = 0; r < R; r++) logits.set(logits1, r * V);
      const view = gpu.upload(logits, 'logits');
      const counts = new Float64Array(V);
      for (let step = 0; step < STEPS; step++) {
        const o: SampleOptions = { R, V, ...st, seed: 7, step };
        const ids = idsBuffer(gpu, o);
        sampleForward(gpu, { ids }, { logits: view }, o);
        for (const id of await readIds(gpu, ids, o)) counts[id]++;
      }
      const n = R * STEPS;
      let chi2 = 0;
      p.forEach((pj, j) => {
        if (pj === 0) expect(counts[j], `token ${j} (w = ${weights[j]}) is filtered out`).toBe(0);
        else chi2 += (counts[j] - n * pj) ** 2 / (n * pj);
      });
      expect(chi2).toBeLessThan(quantile);
    });
  }
});

describe('done rows', () => {
  for (const greedy of [true, false]) {
    test(`greedy=${greedy}: done rows get the pad id, rows that choose eos become done`, async () => {
      const gpu = await testGpu();
      const R = 8;
      const V = 300;
      const row0 = 2;
      const logits = makeLogits(R, V, V, 31, 3);
      const base: SampleOptions = { R, V, row0, greedy, temperature: 0.9, topK: 30, topP: 0.95, seed: 4 };
      const free = sampleCpu(logits, base);
      const eosId = free[3]; // row 3 chooses eos
      const o: SampleOptions = { ...base, eosId, padId: V - 1 };
      const doneIn = [0, 1, 0, 0, 0, 1, 0, 0];
      const done = gpu.upload(Uint32Array.from([9, 9, ...doneIn, 9, 9]), 'done');
      const ids = idsBuffer(gpu, o);
      sampleForward(gpu, { ids, done }, { logits: gpu.upload(logits, 'logits') }, o);
      const want = Array.from(free, (id, r) => (doneIn[r] ? V - 1 : id));
      expect(Array.from(await readIds(gpu, ids, o))).toEqual(want);
      const wantDone = doneIn.map((d, r) => (d || want[r] === eosId ? 1 : 0));
      expect(Array.from(await gpu.readU32(done, R + 4))).toEqual([9, 9, ...wantDone, 9, 9]);
    });
  }
});
