/**
 * matmul: the one general matrix product every GPT-2 layer goes through, and llm.c's
 * matmul_forward / matmul_backward pair on top of it.
 *
 *   out[z] = alpha * op(a[z]) @ op(b[z]) + beta * out[z] + bias      op(a): (M, K), op(b): (K, N)
 *
 * Row-major. `a` is stored (M, K) with row stride lda, or (K, M) when transA; `b` is stored (K, N) with
 * row stride ldb, or (N, K) when transB; `out` is (M, N) with row stride ldc. bias (N) is broadcast
 * over rows. beta = 0 overwrites `out` without reading it; beta = 1 is llm.c's `+=`. Batches z in
 * 0..batch start at z * stride{A,B,C} elements. Sub-matrices (a chunk of vocab rows, one head) are
 * bound as Views (256-byte aligned offsets) plus leading dimensions.
 *
 * How GPT-2 uses it (Conv1D weight is [C, OC]; lm_head is tied to wte (V, C)):
 *   forward    out(BT, OC)  = inp(BT, C) @ W(C, OC) + bias            NN
 *   backward   dinp(BT, C) += dout(BT, OC) @ W^T                      NT  (transB)
 *              dW(C, OC)   += inp^T @ dout         (K = BT)           TN  (transA)
 *              dbias(OC)   += sum over BT of dout                     matmulDbias
 *   lm_head    logits(BT, V) = x @ wte^T,  dx += dlogits @ wte,  dwte += dlogits^T @ x
 *   attention  B*NH batches of (T, T) @ (T, HS) with batch strides
 *
 * `out` must not share a GPUBuffer with `a`, `b` or `bias`: WebGPU forbids binding one buffer as
 * writable and read-only storage in the same dispatch, even at disjoint ranges.
 */
import { asView, type Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import dbiasWgsl from './matmul-dbias.wgsl';
import vec4Wgsl from './matmul-vec4.wgsl';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './matmul.wgsl';

/** The shaders' uniform structs (src/gpu/uniforms.ts; matmul-vec4.wgsl declares the same Params). */
export const PARAMS = uniformStruct('Params', {
  M: 'u32',
  N: 'u32',
  K: 'u32',
  lda: 'u32',
  ldb: 'u32',
  ldc: 'u32',
  stride_a: 'u32',
  stride_b: 'u32',
  stride_c: 'u32',
  alpha: 'f32',
  beta: 'f32',
  has_bias: 'u32',
});
export const DBIAS_PARAMS = uniformStruct('Params', { BT: 'u32', OC: 'u32' });

export type Floats = Float32Array | Float64Array;

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** Row strides in elements of the stored matrices; default tight (K or M, N or K, N). */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Number of independent products (workgroup z); default 1. */
  batch?: number;
  /** Elements between consecutive batches; default one stored matrix (rows * ld). */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Default 1. */
  alpha?: number;
  /** Default 0 (out is not read); 1 accumulates. */
  beta?: number;
}

export type ResolvedShape = Required<MatmulShape>;

/** Fills in the defaults and rejects leading dimensions too small for the stored matrices. */
export function resolveShape(s: MatmulShape): ResolvedShape {
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  const lda = s.lda ?? (transA ? s.M : s.K);
  const ldb = s.ldb ?? (transB ? s.K : s.N);
  const ldc = s.ldc ?? s.N;
  const r: ResolvedShape = {
    M: s.M,
    N: s.N,
    K: s.K,
    transA,
    transB,
    lda,
    ldb,
    ldc,
    batch: s.batch ?? 1,
    strideA: s.strideA ?? (transA ? s.K : s.M) * lda,
    strideB: s.strideB ?? (transB ? s.N : s.K) * ldb,
    strideC: s.strideC ?? s.M * ldc,
    alpha: s.alpha ?? 1,
    beta: s.beta ?? 0,
  };
  for (const key of ['M', 'N', 'K', 'lda', 'ldb', 'ldc', 'batch', 'strideA', 'strideB', 'strideC'] as const) {
    if (!Number.isInteger(r[key]) || r[key] < 0) throw new Error(`matmul: ${key} = ${r[key]} is not a count`);
  }
  if (lda < (transA ? r.M : r.K)) throw new Error(`matmul: lda ${lda} is less than a row of a`);
  if (ldb < (transB ? r.K : r.N)) throw new Error(`matmul: ldb ${ldb} is less than a row of b`);
  if (ldc < r.N) throw new Error(`matmul: ldc ${ldc} is less than N ${r.N}`);
  return r;
}

/** Elements from a batched matrix's start to one past its last element; 0 when nothing is touched. */
function extent(batch: number, stride: number, rows: number, ld: number, cols: number): number {
  if (batch === 0 || rows === 0 || cols === 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// ---- CPU references --------------------------------------------------------------------------------

/** CPU reference of the general product, plain loops with float64 accumulation, writing `out`. */
export function matmulCpu(
  { out }: { out: Floats },
  { a, b, bias = null }: { a: Floats; b: Floats; bias?: Floats | null },
  shape: MatmulShape,
): void {
  const { M, N, K, transA, transB, lda, ldb, ldc, batch, strideA, strideB, strideC, alpha, beta } =
    resolveShape(shape);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const av = a[z * strideA + (transA ? k * lda + m : m * lda + k)];
          const bv = b[z * strideB + (transB ? n * ldb + k : k * ldb + n)];
          acc += av * bv;
        }
        const i = z * strideC + m * ldc + n;
        let v = alpha * acc;
        if (beta !== 0) v += beta * out[i];
        if (bias) v += bias[n];
        out[i] = v;
      }
    }
  }
}

export interface MatmulDims {
  BT: number;
  C: number;
  OC: number;
}

/** CPU reference of matmulForward: returns out (BT, OC) = inp (BT, C) @ weight (C, OC) + bias (OC). */
export function matmulForwardCpu(
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  { BT, C, OC }: MatmulDims,
): Float32Array {
  const out = new Float32Array(BT * OC);
  matmulCpu({ out }, { a: inp, b: weight, bias }, { M: BT, N: OC, K: C });
  return out;
}

/** CPU reference of matmulBackward, llm.c's loops: accumulates into dinp, dweight and dbias. */
export function matmulBackwardCpu(
  { dinp, dweight, dbias }: { dinp: Floats; dweight: Floats; dbias: Floats | null },
  { dout, inp, weight }: { dout: Floats; inp: Floats; weight: Floats },
  { BT, C, OC }: MatmulDims,
): void {
  for (let bt = 0; bt < BT; bt++) {
    for (let o = 0; o < OC; o++) {
      const d = dout[bt * OC + o]; // dout (BT, OC)
      if (dbias) dbias[o] += d;
      for (let c = 0; c < C; c++) {
        dinp[bt * C + c] += weight[c * OC + o] * d; // weight (C, OC)
        dweight[c * OC + o] += inp[bt * C + c] * d; // inp (BT, C)
      }
    }
  }
}

// ---- GPU launchers ---------------------------------------------------------------------------------

export type MatmulKernel = 'naive' | 'tiled' | 'register' | 'vec4';

/**
 * Override constants of matmul_tiled / matmul_register (see matmul.wgsl). A thread owns TM rows and
 * TN columns (the register kernel always 4 columns); the block tile is (TM*WG_Y) x (TN*WG_X).
 */
export interface TileConfig {
  WG_X: number;
  WG_Y: number;
  TM: 4 | 8;
  TN: 4 | 8;
  BK: number;
  /** Tiled kernel: read the next K slice into registers while this one is computed (matmul.wgsl). */
  PREFETCH?: boolean;
  /**
   * Tiled kernel with PREFETCH: read the slices as vec4s (matmul_tiled_vec4) where the shape allows
   * (leading dimensions and batch strides multiples of 4, bindings holding their last vec4 whole).
   */
  VEC4?: boolean;
}

/** Elements of a K slice one thread of the tiled kernel stages in registers, at most (STAGE_MAX). */
const STAGE_MAX = 8;
/** 32x32 block tiles, 4x4 per thread, 64 threads: four times the workgroups of 64x64 for small products. */
export const TILE_32X32: TileConfig = { WG_X: 8, WG_Y: 8, TM: 4, TN: 4, BK: 16 };
/** 64x64 block tiles, 4x4 per thread. */
export const TILE_64X64: TileConfig = { WG_X: 16, WG_Y: 16, TM: 4, TN: 4, BK: 16 };
/** 128x64 block tiles, 8x4 per thread: twice the work per workgroup-memory read, half the workgroups. */
export const TILE_128X64: TileConfig = { WG_X: 16, WG_Y: 16, TM: 8, TN: 4, BK: 16 };
/**
 * 128x128 block tiles, 8x8 per thread: 64 FMAs per 4 vec4 reads of workgroup memory (4x4 does 16 per
 * 2), 16.5 KiB of workgroup memory; the tile for the large products of a PPO step at TRL's batch.
 */
export const TILE_128X128: TileConfig = { WG_X: 16, WG_Y: 16, TM: 8, TN: 8, BK: 16 };

/** Block tiles of a tile config: rows and columns of C one workgroup computes. */
export const blockOf = (t: TileConfig, kernel: MatmulKernel = 'tiled') => ({
  BM: t.TM * t.WG_Y,
  BN: (kernel === 'tiled' ? t.TN : 4) * t.WG_X,
});

/**
 * The largest tile that still leaves enough workgroups to fill a large GPU (~132 compute units, two
 * workgroups each): the big products of a training step (rows = batch x tokens) take 128x128, the
 * middling 128x64, small ones keep 64x64 so they spread over more of the machine.
 */
export function pickTile(M: number, N: number, batch = 1): TileConfig {
  const tiles = (t: TileConfig) => {
    const { BM, BN } = blockOf(t);
    return Math.ceil(M / BM) * Math.ceil(N / BN) * batch;
  };
  for (const t of [TILE_128X128, TILE_128X64]) if (tiles(t) >= 256) return t;
  return TILE_64X64;
}

/** Tile choices measured on this device (src/ops/matmul-tune.ts); absent: pickTile's rule. */
const tuned = new WeakMap<Gpu, (M: number, N: number, batch: number) => TileConfig>();

/** Makes `choose` pick the tile of every tiled-kernel product on `gpu` without an explicit tile; null: pickTile. */
export function setTileChoice(
  gpu: Gpu,
  choose: ((M: number, N: number, batch: number) => TileConfig) | null,
): void {
  if (choose) tuned.set(gpu, choose);
  else tuned.delete(gpu);
}

/** The tile the tiled kernel uses on `gpu` for an (M, N) output, `batch` times. */
export function tileFor(gpu: Gpu, M: number, N: number, batch = 1): TileConfig {
  return tuned.get(gpu)?.(M, N, batch) ?? pickTile(M, N, batch);
}

function checkTile(t: TileConfig, gpu: Gpu): void {
  const { WG_X, WG_Y, TM, TN, BK } = t;
  const threads = WG_X * WG_Y;
  const ok =
    (TM === 4 || TM === 8) &&
    (TN === 4 || TN === 8) &&
    threads <= gpu.adapter.limits.maxComputeInvocationsPerWorkgroup &&
    (TM * BK) % WG_X === 0 &&
    (TN * BK) % WG_Y === 0 &&
    TM * WG_Y * BK <= STAGE_MAX * threads &&
    TN * WG_X * BK <= STAGE_MAX * threads &&
    (!t.VEC4 ||
      (t.PREFETCH && (TM * WG_Y * BK) % (4 * threads) === 0 && (TN * WG_X * BK) % (4 * threads) === 0));
  if (!ok) throw new Error(`matmul: tile ${JSON.stringify(t)} does not split evenly`);
}

export interface MatmulOut {
  out: Bindable;
}
export interface MatmulIn {
  a: Bindable;
  b: Bindable;
  bias?: Bindable | null;
}

/**
 * `out = alpha * op(a) @ op(b) + beta * out + bias` (see the file header) with the tiled kernel. On a
 * CPU adapter (SwiftShader) the register kernel instead: there workgroup memory is ordinary memory
 * and each barrier a fiber switch, so staging through it only costs (measured there: the tiled kernel
 * runs 8-25x slower and compiles ~7x slower than the register kernel).
 */
export function matmul(gpu: Gpu, io: MatmulOut, inputs: MatmulIn, shape: MatmulShape): void {
  const fallback = gpu.adapter.isFallback;
  matmulWith(
    gpu,
    fallback ? (vec4Eligible(resolveShape(shape)) ? 'vec4' : 'register') : 'tiled',
    io,
    inputs,
    shape,
  );
}

/**
 * Whether matmul-vec4.wgsl can run a shape: one of NN, NT, TN, and every leading dimension and batch
 * stride a multiple of 4 (Views are 256-byte aligned, so vec4 indices are then exact).
 */
export function vec4Eligible(s: ResolvedShape): boolean {
  if (s.transA && s.transB) return false;
  return [s.lda, s.ldb, s.ldc, s.strideA, s.strideB, s.strideC].every((x) => x % 4 === 0);
}

/** The same product with the simple kernel, one invocation per output: the reference and fallback. */
export function matmulNaive(gpu: Gpu, io: MatmulOut, inputs: MatmulIn, shape: MatmulShape): void {
  matmulWith(gpu, 'naive', io, inputs, shape);
}

/** The same product with a chosen kernel and, for 'tiled' and 'register', a chosen tile. */
export function matmulWith(
  gpu: Gpu,
  kernel: MatmulKernel,
  { out }: MatmulOut,
  { a, b, bias = null }: MatmulIn,
  shape: MatmulShape,
  tile?: TileConfig,
): void {
  const s = resolveShape(shape);
  const { M, N, K, batch } = s;
  if (M === 0 || N === 0 || batch === 0) return;
  const extentA = K === 0 ? 0 : extent(batch, s.strideA, s.transA ? K : M, s.lda, s.transA ? M : K);
  const extentB = K === 0 ? 0 : extent(batch, s.strideB, s.transB ? N : K, s.ldb, s.transB ? K : N);
  const need: [string, Bindable, number][] = [
    ['out', out, extent(batch, s.strideC, M, s.ldc, N)],
    ['a', a, extentA],
    ['b', b, extentB],
  ];
  if (bias) need.push(['bias', bias, N]);
  for (const [name, buf, elements] of need) {
    const bytes = asView(buf).size;
    if (elements * 4 > bytes) throw new Error(`matmul: ${name} needs ${elements * 4} bytes, has ${bytes}`);
  }

  let constants: Record<string, number> = { TRANS_A: s.transA ? 1 : 0, TRANS_B: s.transB ? 1 : 0 };
  let workgroups: [number, number, number] = [Math.ceil(N / 8), Math.ceil(M / 8), batch];
  let pipeline: GPUComputePipeline;
  if (kernel === 'vec4') {
    if (!vec4Eligible(s))
      throw new Error('matmul: this shape needs leading dimensions and strides that are multiples of 4');
    const entry = s.transA ? 'matmul_vec4_tn' : s.transB ? 'matmul_vec4_nt' : 'matmul_vec4_nn';
    pipeline = gpu.pipelines.get(vec4Wgsl, entry);
    workgroups = [Math.ceil(N / 64), Math.ceil(M / 64), batch]; // 8x8 threads of 8x8 outputs
    constants = {};
  } else if (kernel !== 'naive') {
    const t = tile ?? tileFor(gpu, M, N, batch);
    checkTile(t, gpu);
    const { WG_X, WG_Y, TM, TN, BK } = t;
    Object.assign(constants, { WG_X, WG_Y, TM, TN, BK, PREFETCH: t.PREFETCH ? 1 : 0 });
    const { BM, BN } = blockOf(t, kernel);
    workgroups = [Math.ceil(N / BN), Math.ceil(M / BM), batch];
    // Whole vec4s: every read starts at a multiple of 4 elements and ends inside its binding.
    const wholeVec4 = (buf: Bindable, elements: number) => asView(buf).size >= 16 * Math.ceil(elements / 4);
    const vec4 =
      kernel === 'tiled' &&
      t.VEC4 === true &&
      K > 0 &&
      [s.lda, s.ldb, s.strideA, s.strideB].every((x) => x % 4 === 0) &&
      wholeVec4(a, extentA) &&
      wholeVec4(b, extentB);
    pipeline = gpu.pipelines.get(wgsl, vec4 ? 'matmul_tiled_vec4' : `matmul_${kernel}`, constants);
  } else {
    pipeline = gpu.pipelines.get(wgsl, 'matmul_naive', constants);
  }
  gpu.dispatch(pipeline, {
    uniforms: PARAMS.pack({
      M,
      N,
      K,
      lda: s.lda,
      ldb: s.ldb,
      ldc: s.ldc,
      stride_a: s.strideA,
      stride_b: s.strideB,
      stride_c: s.strideC,
      alpha: s.alpha,
      beta: s.beta,
      has_bias: Boolean(bias),
    }),
    // With no bias, `a` is bound in its place (both read-only); the kernel never reads it.
    buffers: [out, a, b, bias ?? a],
    workgroups,
    flop: 2 * M * N * K * batch,
  });
}

/** llm.c's matmul_forward: out (BT, OC) = inp (BT, C) @ weight (C, OC) + bias (OC). */
export function matmulForward(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp, weight, bias }: { inp: Bindable; weight: Bindable; bias: Bindable | null },
  { BT, C, OC }: MatmulDims,
): void {
  matmul(gpu, { out }, { a: inp, b: weight, bias }, { M: BT, N: OC, K: C });
}

/** matmulForward with the simple kernel. */
export function matmulForwardNaive(
  gpu: Gpu,
  { out }: { out: Bindable },
  { inp, weight, bias }: { inp: Bindable; weight: Bindable; bias: Bindable | null },
  { BT, C, OC }: MatmulDims,
): void {
  matmulNaive(gpu, { out }, { a: inp, b: weight, bias }, { M: BT, N: OC, K: C });
}

/**
 * llm.c's matmul_backward, accumulating into the gradients:
 *   dinp (BT, C) += dout (BT, OC) @ weight^T,  dweight (C, OC) += inp^T @ dout,  dbias (OC) += sum_bt dout.
 * dinp may be null where the input needs no gradient; dbias is null for layers without a bias.
 */
export function matmulBackward(
  gpu: Gpu,
  { dinp, dweight, dbias }: { dinp: Bindable | null; dweight: Bindable; dbias: Bindable | null },
  { dout, inp, weight }: { dout: Bindable; inp: Bindable; weight: Bindable },
  { BT, C, OC }: MatmulDims,
): void {
  if (dinp) matmul(gpu, { out: dinp }, { a: dout, b: weight }, { M: BT, N: C, K: OC, transB: true, beta: 1 });
  matmul(gpu, { out: dweight }, { a: inp, b: dout }, { M: C, N: OC, K: BT, transA: true, beta: 1 });
  if (dbias) matmulDbias(gpu, { dbias }, { dout }, { BT, OC });
}

/**
 * dbias (OC) += sum over rows of dout (BT, OC); deterministic (fixed summation order, no atomics).
 * With OC a multiple of 4, 4 columns per invocation through vec4 loads (the same sums).
 */
export function matmulDbias(
  gpu: Gpu,
  { dbias }: { dbias: Bindable },
  { dout }: { dout: Bindable },
  { BT, OC }: { BT: number; OC: number },
): void {
  const vec4 = OC % 4 === 0;
  gpu.dispatch(gpu.pipelines.get(dbiasWgsl, vec4 ? 'matmul_dbias_vec4' : 'matmul_dbias'), {
    uniforms: DBIAS_PARAMS.pack({ BT, OC }),
    buffers: [dbias, dout],
    workgroups: [Math.ceil(OC / (vec4 ? 128 : 32))],
  });
}

/**
 * Throughput of one kernel on an (M, K) @ (K, N) product, in GFLOP/s (2*M*N*K per product): one
 * untimed run compiles and warms up, then `reps` runs are timed from submission to completion.
 */
export async function matmulGflops(
  gpu: Gpu,
  kernel: MatmulKernel,
  { M, N, K }: { M: number; N: number; K: number },
  reps: number,
  tile?: TileConfig,
): Promise<number> {
  const a = gpu.createBuffer(M * K * 4, 'bench a');
  const b = gpu.createBuffer(K * N * 4, 'bench b');
  const out = gpu.createBuffer(M * N * 4, 'bench out');
  try {
    matmulWith(gpu, kernel, { out }, { a, b }, { M, N, K }, tile);
    await gpu.sync();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) matmulWith(gpu, kernel, { out }, { a, b }, { M, N, K }, tile);
    await gpu.sync();
    const seconds = (performance.now() - t0) / 1000;
    return (2 * M * N * K * reps) / seconds / 1e9;
  } finally {
    for (const buf of [a, b, out]) gpu.destroy(buf);
  }
}
