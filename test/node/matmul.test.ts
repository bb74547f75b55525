// Expected values: the plain-loop CPU references in src/ops/matmul.ts (float64 accumulation), run on
// the same seeded inputs. Tolerances cover float32 accumulation over K <= 130 terms of size <= 1.
import { describe, expect, test } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import {
  TILE_128X128,
  TILE_128X64,
  TILE_64X64,
  blockOf,
  matmulCpu,
  matmulForwardCpu,
  matmulForwardNaive,
  matmulWith,
  pickTile,
  resolveShape,
  type MatmulKernel,
  type MatmulShape,
  type TileConfig,
} from '../../src/ops/matmul.ts';
import { expectClose, poison, randn, testGpu } from '../helpers/gpu.ts';

describe('matmul forward, naive kernel vs CPU reference', () => {
  // Odd sizes on purpose: none is a multiple of the 8x8 workgroup.
  for (const [BT, C, OC, withBias] of [
    [7, 40, 120, true],
    [13, 5, 3, false],
    [1, 64, 33, true],
  ] as const) {
    test(`BT=${BT} C=${C} OC=${OC} bias=${withBias}`, async () => {
      const gpu = await testGpu();
      const inp = randn(BT * C, 1);
      const weight = randn(C * OC, 2);
      const bias = withBias ? randn(OC, 3) : null;
      const out = gpu.createBuffer(BT * OC * 4, 'out');
      poison(gpu, out, BT * OC * 4);
      matmulForwardNaive(
        gpu,
        { out },
        { inp: gpu.upload(inp, 'inp'), weight: gpu.upload(weight, 'w'), bias: bias && gpu.upload(bias, 'b') },
        { BT, C, OC },
      );
      const expected = matmulForwardCpu(inp, weight, bias, { BT, C, OC });
      expectClose(await gpu.readF32(out, BT * OC), expected, { atol: 1e-5, rtol: 1e-5, what: 'matmul out' });
    });
  }
});

interface Case {
  name: string;
  shape: MatmulShape;
  bias?: boolean;
}

// Small, odd, transposed, batched, accumulating; 130x67x37 spans several tiles in M and N and has a
// K tail past BK = 16.
const CASES: Case[] = [
  { name: 'NN 7x40x5 +bias', shape: { M: 7, N: 40, K: 5 }, bias: true },
  { name: 'NN 33x120x64', shape: { M: 33, N: 120, K: 64 } },
  { name: 'NT 33x120x64', shape: { M: 33, N: 120, K: 64, transB: true } },
  { name: 'TN 33x120x64', shape: { M: 33, N: 120, K: 64, transA: true } },
  { name: 'TT 33x120x64 +bias', shape: { M: 33, N: 120, K: 64, transA: true, transB: true }, bias: true },
  { name: 'NN 130x67x37', shape: { M: 130, N: 67, K: 37 } },
  { name: 'TN 67x130x37 alpha=0.5', shape: { M: 67, N: 130, K: 37, transA: true, alpha: 0.5 } },
  { name: 'batched NT 3x(17x9x13)', shape: { M: 17, N: 9, K: 13, transB: true, batch: 3 } },
  {
    name: 'batched NN, padded strides',
    shape: { M: 5, N: 6, K: 7, batch: 4, strideA: 40, strideB: 50, strideC: 33 },
  },
  { name: 'accumulate NT 9x11x70 +bias', shape: { M: 9, N: 11, K: 70, transB: true, beta: 1 }, bias: true },
  { name: 'accumulate TN beta=-0.5', shape: { M: 20, N: 3, K: 65, transA: true, beta: -0.5 } },
];

/** Elements each operand spans, for allocating test buffers. */
function sizes(shape: MatmulShape): { a: number; b: number; c: number } {
  const s = resolveShape(shape);
  return {
    a: (s.batch - 1) * s.strideA + (s.transA ? s.K : s.M) * s.lda,
    b: (s.batch - 1) * s.strideB + (s.transB ? s.N : s.K) * s.ldb,
    c: (s.batch - 1) * s.strideC + s.M * s.ldc,
  };
}

async function runCase(
  gpu: Gpu,
  kernel: MatmulKernel,
  { shape, bias }: Case,
  tile?: TileConfig,
): Promise<number> {
  const n = sizes(shape);
  const a = randn(n.a, 11);
  const b = randn(n.b, 12);
  const biasData = bias ? randn(shape.N, 13) : null;
  const accumulate = (shape.beta ?? 0) !== 0;
  // Accumulating kernels start from real data; the others from NaN, which they must never read.
  const c0 = accumulate ? randn(n.c, 14) : new Float32Array(n.c).fill(NaN);
  const out = gpu.upload(c0, 'out');
  matmulWith(
    gpu,
    kernel,
    { out },
    { a: gpu.upload(a, 'a'), b: gpu.upload(b, 'b'), bias: biasData && gpu.upload(biasData, 'bias') },
    shape,
    tile,
  );
  const expected = c0.slice();
  matmulCpu({ out: expected }, { a, b, bias: biasData }, shape);
  return expectCloseOrNaN(await gpu.readF32(out, n.c), expected, `${kernel} out`);
}

/**
 * expectClose over the elements expected to be numbers; where NaN is expected (poison in the gaps
 * between padded rows and batches, which are not outputs) the kernel must have left the NaN alone.
 */
function expectCloseOrNaN(got: Float32Array, expected: Float32Array, what: string): number {
  const kept: number[] = [];
  const want: number[] = [];
  expected.forEach((e, i) => {
    if (Number.isNaN(e)) {
      expect(got[i], `${what}: element ${i} is not an output but was written`).toBeNaN();
    } else {
      kept.push(got[i]);
      want.push(e);
    }
  });
  return expectClose(kept, want, { atol: 2e-5, rtol: 1e-5, what }).maxAbsErr;
}

// The 8-row (and 8x8) micro-tile variants differ from the 4x4 ones only in TM and TN (rows and
// columns per thread), so they get the shapes that cross 128-wide tile edges in every direction, with
// every layout of A and B. Each transpose pair costs a pipeline compile, ~1.3 s on SwiftShader for the
// tiled kernel.
const TM8_CASES: Case[] = [
  ...CASES.filter((c) => c.name.includes('130')),
  { name: 'NT 131x133x21 +bias', shape: { M: 131, N: 133, K: 21, transB: true }, bias: true },
  { name: 'TT 129x130x18', shape: { M: 129, N: 130, K: 18, transA: true, transB: true } },
];

// The vec4 kernel takes NN, NT and TN with leading dimensions and batch strides that are multiples of
// 4: the same shapes with padded leading dimensions (the padding of C must stay NaN), plus the LM
// head's shapes (odd V = 97 as N with a padded ldc, and as K of the dx product, and as M of dwte).
const pad4 = (x: number) => Math.ceil(x / 4) * 4;
const VEC4_CASES: Case[] = [
  ...CASES.filter((c) => !(c.shape.transA && c.shape.transB)).map((c) => {
    const r = resolveShape(c.shape);
    const [lda, ldb, ldc] = [pad4(r.lda), pad4(r.ldb), pad4(r.ldc)];
    const rowsA = r.transA ? r.K : r.M;
    const rowsB = r.transB ? r.N : r.K;
    const batched =
      r.batch > 1
        ? {
            strideA: pad4(Math.max(r.strideA, rowsA * lda)),
            strideB: pad4(Math.max(r.strideB, rowsB * ldb)),
            strideC: pad4(Math.max(r.strideC, r.M * ldc)),
          }
        : {};
    return { ...c, name: `${c.name}, ld%4`, shape: { ...c.shape, lda, ldb, ldc, ...batched } };
  }),
  { name: 'logits NT 5x97x40 ldc 100', shape: { M: 5, N: 97, K: 40, transB: true, ldc: 100 } },
  { name: 'dx NN 5x40x97 lda 100', shape: { M: 5, N: 40, K: 97, lda: 100, beta: 1 } },
  { name: 'dwte TN 97x40x5 lda 100', shape: { M: 97, N: 40, K: 5, transA: true, lda: 100, beta: 1 } },
  // TN's 8x8 blocks with the matrix ending inside their second row and column vec4s.
  { name: 'TN 14x13x9 ld 16', shape: { M: 14, N: 13, K: 9, transA: true, lda: 16, ldb: 16, ldc: 16 } },
];

const KERNELS: [MatmulKernel, TileConfig | undefined, Case[]][] = [
  ['vec4', undefined, VEC4_CASES],
  ['naive', undefined, CASES],
  ['tiled', TILE_64X64, CASES],
  ['tiled', TILE_128X64, TM8_CASES],
  ['tiled', TILE_128X128, TM8_CASES],
  ['register', TILE_64X64, CASES],
  ['register', TILE_128X64, TM8_CASES],
];

describe('general matmul on the GPU vs CPU reference', () => {
  for (const [kernel, tile, cases] of KERNELS) {
    const block = tile && blockOf(tile, kernel);
    const label = block ? `${kernel} ${block.BM}x${block.BN}` : kernel;
    test(`${label}: ${cases.length} shapes`, async () => {
      const gpu = await testGpu();
      let worst = 0;
      for (const c of cases) {
        try {
          worst = Math.max(worst, await runCase(gpu, kernel, c, tile));
        } catch (e) {
          throw new Error(`${c.name}: ${(e as Error).message}`);
        }
      }
      console.log(`[matmul] ${label}: max |err| ${worst.toExponential(2)}`);
    });
  }

  test('a sub-block bound through Views at 256-byte offsets, with leading dims', async () => {
    // op(A) = rows 3.. of a (M, 20) slab starting at element 64; B^T = a (N, ldb=50) slab at element
    // 128; C = a 9x11 window of a (_, 32) slab at element 192. Everything else in C stays NaN.
    const gpu = await testGpu();
    const [M, N, K] = [9, 11, 17];
    const shape: MatmulShape = { M, N, K, transB: true, lda: 20, ldb: 50, ldc: 32 };
    const aAll = randn(64 + M * 20, 21);
    const bAll = randn(128 + N * 50, 22);
    const cAll = new Float32Array(192 + M * 32 + 64).fill(NaN);
    const aBuf = gpu.upload(aAll, 'a');
    const bBuf = gpu.upload(bAll, 'b');
    for (const [kernel, tile] of KERNELS.filter(([k, t]) => t === TILE_64X64 || k === 'naive')) {
      const cBuf = gpu.upload(cAll, 'c');
      const view = (buffer: GPUBuffer, offset: number, total: number) => ({
        buffer,
        offset: offset * 4,
        size: (total - offset) * 4,
      });
      matmulWith(
        gpu,
        kernel,
        { out: view(cBuf, 192, cAll.length) },
        { a: view(aBuf, 64, aAll.length), b: view(bBuf, 128, bAll.length) },
        shape,
        tile,
      );
      const expected = cAll.slice();
      matmulCpu({ out: expected.subarray(192) }, { a: aAll.subarray(64), b: bAll.subarray(128) }, shape);
      expectCloseOrNaN(await gpu.readF32(cBuf, cAll.length), expected, `${kernel} view out`);
      gpu.destroy(cBuf);
    }
  });

  test('rejects operands too small for the shape', async () => {
    const gpu = await testGpu();
    const small = gpu.createBuffer(16 * 4, 'small');
    const out = gpu.createBuffer(64 * 4, 'out');
    expect(() => matmulWith(gpu, 'tiled', { out }, { a: small, b: small }, { M: 4, N: 4, K: 8 })).toThrow(
      /a needs 128 bytes, has 64/,
    );
    expect(() => resolveShape({ M: 4, N: 4, K: 8, lda: 7 })).toThrow(/lda 7/);
  });
});

describe('block tile choice on GPUs', () => {
  test('the largest tile that still gives 256 workgroups: 128x128 for a PPO step, 64x64 for small', () => {
    // c_fc at TRL's batch (128 x ~23 tokens, 768 -> 3072): 23 x 24 = 552 tiles of 128x128.
    expect(pickTile(2944, 3072)).toBe(TILE_128X128);
    // An output projection at batch 8 x 24 tokens: 12 tiles of 128x128, 24 of 128x64: too few for either.
    expect(pickTile(192, 768)).toBe(TILE_64X64);
    // 1024 x 768: 48 tiles of 128x128, 96 of 128x64; batched 16 times, 768 of 128x128.
    expect(pickTile(1024, 768)).toBe(TILE_64X64);
    expect(pickTile(1024, 768, 16)).toBe(TILE_128X128);
    // 2048 x 1024: 128 tiles of 128x128, 256 of 128x64.
    expect(pickTile(2048, 1024)).toBe(TILE_128X64);
    expect(blockOf(TILE_128X128)).toEqual({ BM: 128, BN: 128 });
    // The register kernel's threads always own 4 columns.
    expect(blockOf(TILE_128X128, 'register')).toEqual({ BM: 128, BN: 64 });
  });
});
