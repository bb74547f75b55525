// General matrix product, batched, row-major, with leading dimensions:
//   C[z] = alpha * op(A[z]) @ op(B[z]) + beta * C[z] + bias       for z in 0..batch (workgroup_id.z)
// op(A) is (M, K): A is stored (M, K) with row stride lda, or (K, M) when TRANS_A.
// op(B) is (K, N): B is stored (K, N) with row stride ldb, or (N, K) when TRANS_B.
// C is (M, N) with row stride ldc; bias (N) is broadcast over rows. beta == 0 never reads C, so a
// poisoned (NaN) output is overwritten cleanly. Batch z starts at z * stride_{a,b,c} elements.
//
// Three kernels share this contract:
//   matmul_naive    one invocation per output; the reference and the fallback
//   matmul_tiled    (TM*WG_Y) x (TN*WG_X) block tile staged through workgroup memory in BK-deep slices,
//                   each thread owning a TM x TN register micro-tile read as vec4s from workgroup memory
//   matmul_register the same TM x 4 micro-tile per thread read straight from global memory

struct Params {
  M: u32,
  N: u32,
  K: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
  stride_a: u32,
  stride_b: u32,
  stride_c: u32,
  alpha: f32,
  beta: f32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;   // (batch, M, ldc)
@group(0) @binding(2) var<storage, read> a: array<f32>;         // (batch, M, lda) or (batch, K, lda)
@group(0) @binding(3) var<storage, read> b: array<f32>;         // (batch, K, ldb) or (batch, N, ldb)
@group(0) @binding(4) var<storage, read> bias: array<f32>;      // (N), read only when has_bias

override TRANS_A: bool = false;
override TRANS_B: bool = false;

// op(A)[m, k] and op(B)[k, n] of the batch starting at `base`; the caller keeps indices in range.
fn a_at(base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A) {
    return a[base + k * p.lda + m];
  }
  return a[base + m * p.lda + k];
}

fn b_at(base: u32, k: u32, n: u32) -> f32 {
  if (TRANS_B) {
    return b[base + n * p.ldb + k];
  }
  return b[base + k * p.ldb + n];
}

// Writes one output: alpha * acc, plus beta * C where beta != 0, plus bias[n] where there is one.
fn store_c(base: u32, m: u32, n: u32, acc: f32) {
  let i = base + m * p.ldc + n;
  var v = p.alpha * acc;
  if (p.beta != 0.0) {
    v += p.beta * c[i];
  }
  if (p.has_bias != 0u) {
    v += bias[n];
  }
  c[i] = v;
}

@compute @workgroup_size(8, 8)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let base_a = gid.z * p.stride_a;
  let base_b = gid.z * p.stride_b;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc += a_at(base_a, m, k) * b_at(base_b, k, n);
  }
  store_c(gid.z * p.stride_c, m, n, acc);
}

// ---- tiled kernels -------------------------------------------------------------------------------
// Thread (tx, ty) owns rows ty*TM .. ty*TM+TM-1 and columns tx*4 .. tx*4+3 of the block tile.
// Constraints (checked by the launcher): TM and TN are 4 or 8, and TM*BK divides by WG_X and TN*BK by
// WG_Y, so the A and B slices split evenly over the WG_X*WG_Y threads.

override WG_X: u32 = 16u; // threads along N; the block tile is TN*WG_X columns wide
override WG_Y: u32 = 16u; // threads along M; the block tile is TM*WG_Y rows tall
override TM: u32 = 4u; // rows per thread: 4 or 8
override TN: u32 = 4u; // columns per thread (tiled kernel): 4 or 8; 8x8 at 16x16 threads is 128x128
override BK: u32 = 16u; // depth of the K slice staged in workgroup memory per step
const TM_MAX = 8u;
const TN_MAX = 8u;

// Slices are stored k-major, [BK][BM] and [BK][BN], so a thread's rows (or columns) at one k are read
// as vec4s. A thread owns TM/4 groups of 4 rows, WG_Y vec4s apart (group i, thread y: vec4 i*WG_Y+y),
// and TN/4 groups of 4 columns, WG_X vec4s apart, so at each k consecutive threads read consecutive
// vec4s. Each k-row is padded by one vec4: the transposed-layout stores, which walk k across
// consecutive threads, then land in different banks. Per k a thread reads TM/4 + TN/4 vec4s and does
// TM*TN FMAs (64 for 8 x 8 against 16 for 4 x 4).
const PAD = 1u;
var<workgroup> tile_a: array<vec4<f32>, BK * (TM * WG_Y / 4u + PAD)>;
var<workgroup> tile_b: array<vec4<f32>, BK * (TN * WG_X / 4u + PAD)>;

// PREFETCH: while one K slice is multiplied out of workgroup memory, the next one's global reads are
// already in flight into registers (stage_a/stage_b), stored to workgroup memory after the compute:
// global latency hides behind the FMAs instead of stalling every thread at the barrier. Off, each
// slice is read and stored before its compute. Same sums in the same order either way.
override PREFETCH: bool = false;
const STAGE_MAX = 8u; // elements of a slice one thread stages, at most (the launcher checks)
override BM: u32 = TM * WG_Y;
override BN: u32 = TN * WG_X;

// Where the r-th element thread `tid` stages of op(A)'s BM x BK slice goes: (row, k) in the slice.
// Consecutive threads walk the stored layout's contiguous axis, so global reads coalesce.
fn a_slot(r: u32, tid: u32) -> vec2<u32> {
  let e = r * WG_X * WG_Y + tid;
  if (TRANS_A) {
    return vec2(e % BM, e / BM);
  }
  return vec2(e / BK, e % BK);
}

// The same for op(B)'s BK x BN slice: (column, k).
fn b_slot(r: u32, tid: u32) -> vec2<u32> {
  let e = r * WG_X * WG_Y + tid;
  if (TRANS_B) {
    return vec2(e / BK, e % BK);
  }
  return vec2(e % BN, e / BN);
}

// Element r of the thread's share of the slices at (m0, k0) and (k0, n0); 0 outside the matrix.
fn load_a(base: u32, m0: u32, k0: u32, r: u32, tid: u32) -> f32 {
  let s = a_slot(r, tid);
  if (m0 + s.x < p.M && k0 + s.y < p.K) {
    return a_at(base, m0 + s.x, k0 + s.y);
  }
  return 0.0;
}

fn load_b(base: u32, n0: u32, k0: u32, r: u32, tid: u32) -> f32 {
  let s = b_slot(r, tid);
  if (n0 + s.x < p.N && k0 + s.y < p.K) {
    return b_at(base, k0 + s.y, n0 + s.x);
  }
  return 0.0;
}

fn put_a(r: u32, tid: u32, v: f32) {
  let s = a_slot(r, tid);
  tile_a[s.y * (BM / 4u + PAD) + s.x / 4u][s.x % 4u] = v;
}

fn put_b(r: u32, tid: u32, v: f32) {
  let s = b_slot(r, tid);
  tile_b[s.y * (BN / 4u + PAD) + s.x / 4u][s.x % 4u] = v;
}

// A thread's share of both slices at k0, in registers; then into workgroup memory.
alias Stage = array<f32, STAGE_MAX>;

fn fetch(base_a: u32, base_b: u32, m0: u32, n0: u32, k0: u32, tid: u32, sa: ptr<function, Stage>, sb: ptr<function, Stage>) {
  for (var r = 0u; r < BM * BK / (WG_X * WG_Y); r++) {
    (*sa)[r] = load_a(base_a, m0, k0, r, tid);
  }
  for (var r = 0u; r < BN * BK / (WG_X * WG_Y); r++) {
    (*sb)[r] = load_b(base_b, n0, k0, r, tid);
  }
}

fn put(tid: u32, sa: ptr<function, Stage>, sb: ptr<function, Stage>) {
  for (var r = 0u; r < BM * BK / (WG_X * WG_Y); r++) {
    put_a(r, tid, (*sa)[r]);
  }
  for (var r = 0u; r < BN * BK / (WG_X * WG_Y); r++) {
    put_b(r, tid, (*sb)[r]);
  }
}

// A thread's TM x TN micro-tile: acc[(4*i + r) * GN + j] is row 4*(i*WG_Y + y) + r of the block,
// columns 4*(j*WG_X + x) .. + 3 (GM = TM/4 row groups, GN = TN/4 column groups).
alias Acc = array<vec4<f32>, TM_MAX * TN_MAX / 4u>;

// Multiplies out the staged slices: per k, TM/4 + TN/4 vec4 reads of workgroup memory, TM*TN FMAs.
fn mma_slice(x: u32, y: u32, acc: ptr<function, Acc>) {
  let GM = TM / 4u;
  let GN = TN / 4u;
  let SA = BM / 4u + PAD; // vec4s per k-row of tile_a
  let SB = BN / 4u + PAD; // vec4s per k-row of tile_b
  for (var kk = 0u; kk < BK; kk++) {
    var bv: array<vec4<f32>, TN_MAX / 4u>;
    for (var j = 0u; j < GN; j++) {
      bv[j] = tile_b[kk * SB + j * WG_X + x];
    }
    for (var i = 0u; i < GM; i++) {
      let av = tile_a[kk * SA + i * WG_Y + y];
      for (var j = 0u; j < GN; j++) {
        let q = 4u * i * GN + j;
        (*acc)[q] = fma(vec4(av.x), bv[j], (*acc)[q]);
        (*acc)[q + GN] = fma(vec4(av.y), bv[j], (*acc)[q + GN]);
        (*acc)[q + 2u * GN] = fma(vec4(av.z), bv[j], (*acc)[q + 2u * GN]);
        (*acc)[q + 3u * GN] = fma(vec4(av.w), bv[j], (*acc)[q + 3u * GN]);
      }
    }
  }
}

// Writes the micro-tile, skipping what lies outside C.
fn store_block(base_c: u32, m0: u32, n0: u32, x: u32, y: u32, acc: ptr<function, Acc>) {
  let GM = TM / 4u;
  let GN = TN / 4u;
  for (var i = 0u; i < GM; i++) {
    for (var r = 0u; r < 4u; r++) {
      let m = m0 + 4u * (i * WG_Y + y) + r;
      if (m >= p.M) {
        continue;
      }
      for (var j = 0u; j < GN; j++) {
        let n = n0 + 4u * (j * WG_X + x);
        let v = (*acc)[(4u * i + r) * GN + j];
        for (var t = 0u; t < 4u; t++) {
          if (n + t < p.N) {
            store_c(base_c, m, n + t, v[t]);
          }
        }
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let base_a = wid.z * p.stride_a;
  let base_b = wid.z * p.stride_b;

  var stage_a: Stage;
  var stage_b: Stage;
  if (PREFETCH) {
    fetch(base_a, base_b, m0, n0, 0u, tid, &stage_a, &stage_b);
  }
  var acc: Acc;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage op(A)[m0.., k0..] and op(B)[k0.., n0..] in workgroup memory (zeros outside the matrix).
    if (!PREFETCH) {
      fetch(base_a, base_b, m0, n0, k0, tid, &stage_a, &stage_b);
    }
    put(tid, &stage_a, &stage_b);
    workgroupBarrier();
    if (PREFETCH && k0 + BK < p.K) {
      fetch(base_a, base_b, m0, n0, k0 + BK, tid, &stage_a, &stage_b);
    }
    mma_slice(lid.x, lid.y, &acc);
    workgroupBarrier();
  }

  store_block(wid.z * p.stride_c, m0, n0, lid.x, lid.y, &acc);
}

// ---- the tiled kernel with vec4 global reads -----------------------------------------------------
// matmul_tiled with PREFETCH, reading its slices from global memory as vec4s along each stored
// layout's contiguous axis (a quarter of the load instructions and bounds checks): A (M, K) and B^T
// (N, K) along k, A^T (K, M) along m, B (K, N) along n. Needs lda, ldb and the batch strides to be
// multiples of 4 and each binding to hold its last vec4 whole (the launcher checks; else
// matmul_tiled). Lanes past an edge are zeroed, as matmul_tiled's elements are: the same sums.
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;

// Vec4 r of the thread's share of op(A)'s BM x BK slice at (m0, k0), and where its 4 lanes go:
// (row, k) of lane 0, the lanes walking k (A stored (M, K)) or rows (A^T).
fn a4_slot(r: u32, tid: u32) -> vec2<u32> {
  let e = r * WG_X * WG_Y + tid;
  if (TRANS_A) {
    return vec2(4u * (e % (BM / 4u)), e / (BM / 4u));
  }
  return vec2(e / (BK / 4u), 4u * (e % (BK / 4u)));
}

// The same for op(B)'s BK x BN slice: (column, k) of lane 0, the lanes walking columns (B stored
// (K, N)) or k (B^T).
fn b4_slot(r: u32, tid: u32) -> vec2<u32> {
  let e = r * WG_X * WG_Y + tid;
  if (TRANS_B) {
    return vec2(e / (BK / 4u), 4u * (e % (BK / 4u)));
  }
  return vec2(4u * (e % (BN / 4u)), e / (BN / 4u));
}

// Lanes of a vec4 whose element index along its axis starts at `i0`, below `limit`: the rest are 0.
fn keep(v: vec4<f32>, i0: u32, limit: u32) -> vec4<f32> {
  return select(vec4(0.0), v, vec4(i0) + vec4(0u, 1u, 2u, 3u) < vec4(limit));
}

fn load_a4(base: u32, m0: u32, k0: u32, r: u32, tid: u32) -> vec4<f32> {
  let s = a4_slot(r, tid);
  let m = m0 + s.x;
  let k = k0 + s.y;
  if (TRANS_A) {
    if (k >= p.K) {
      return vec4(0.0);
    }
    return keep(a4[(base + k * p.lda + m) / 4u], m, p.M);
  }
  if (m >= p.M) {
    return vec4(0.0);
  }
  return keep(a4[(base + m * p.lda + k) / 4u], k, p.K);
}

fn load_b4(base: u32, n0: u32, k0: u32, r: u32, tid: u32) -> vec4<f32> {
  let s = b4_slot(r, tid);
  let n = n0 + s.x;
  let k = k0 + s.y;
  if (TRANS_B) {
    if (n >= p.N) {
      return vec4(0.0);
    }
    return keep(b4[(base + n * p.ldb + k) / 4u], k, p.K);
  }
  if (k >= p.K) {
    return vec4(0.0);
  }
  return keep(b4[(base + k * p.ldb + n) / 4u], n, p.N);
}

// Into workgroup memory: one vec4 store when the lanes walk the tile's row axis, else 4 along k.
fn put_a4(r: u32, tid: u32, v: vec4<f32>) {
  let s = a4_slot(r, tid);
  let SA = BM / 4u + PAD;
  if (TRANS_A) {
    tile_a[s.y * SA + s.x / 4u] = v;
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    tile_a[(s.y + j) * SA + s.x / 4u][s.x % 4u] = v[j];
  }
}

fn put_b4(r: u32, tid: u32, v: vec4<f32>) {
  let s = b4_slot(r, tid);
  let SB = BN / 4u + PAD;
  if (TRANS_B) {
    for (var j = 0u; j < 4u; j++) {
      tile_b[(s.y + j) * SB + s.x / 4u][s.x % 4u] = v[j];
    }
    return;
  }
  tile_b[s.y * SB + s.x / 4u] = v;
}

alias Stage4 = array<vec4<f32>, STAGE_MAX / 4u>;

fn fetch4(base_a: u32, base_b: u32, m0: u32, n0: u32, k0: u32, tid: u32, sa: ptr<function, Stage4>, sb: ptr<function, Stage4>) {
  for (var r = 0u; r < BM * BK / (4u * WG_X * WG_Y); r++) {
    (*sa)[r] = load_a4(base_a, m0, k0, r, tid);
  }
  for (var r = 0u; r < BN * BK / (4u * WG_X * WG_Y); r++) {
    (*sb)[r] = load_b4(base_b, n0, k0, r, tid);
  }
}

fn put4(tid: u32, sa: ptr<function, Stage4>, sb: ptr<function, Stage4>) {
  for (var r = 0u; r < BM * BK / (4u * WG_X * WG_Y); r++) {
    put_a4(r, tid, (*sa)[r]);
  }
  for (var r = 0u; r < BN * BK / (4u * WG_X * WG_Y); r++) {
    put_b4(r, tid, (*sb)[r]);
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled_vec4(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let base_a = wid.z * p.stride_a;
  let base_b = wid.z * p.stride_b;

  var stage_a: Stage4;
  var stage_b: Stage4;
  fetch4(base_a, base_b, m0, n0, 0u, tid, &stage_a, &stage_b);
  var acc: Acc;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    put4(tid, &stage_a, &stage_b);
    workgroupBarrier();
    if (k0 + BK < p.K) {
      fetch4(base_a, base_b, m0, n0, k0 + BK, tid, &stage_a, &stage_b);
    }
    mma_slice(lid.x, lid.y, &acc);
    workgroupBarrier();
  }
  store_block(wid.z * p.stride_c, m0, n0, lid.x, lid.y, &acc);
}

// Stores a thread's TM x 4 micro-tile whose top-left output is (m, n), skipping what lies outside C.
fn store_tile(base: u32, m: u32, n: u32, acc: array<vec4<f32>, TM_MAX>) {
  for (var i = 0u; i < TM; i++) {
    if (m + i >= p.M) {
      return;
    }
    for (var j = 0u; j < 4u; j++) {
      if (n + j < p.N) {
        store_c(base, m + i, n + j, acc[i][j]);
      }
    }
  }
}

// No workgroup memory: each thread reads its TM rows of op(A) and 4 columns of op(B) per k straight
// from global memory (the caches do the sharing). Rows and columns past the edge are clamped to the
// last valid one, so every read is in range; their results are never stored.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_register(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * TM;
  let n = gid.x * 4u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let base_a = gid.z * p.stride_a;
  let base_b = gid.z * p.stride_b;
  var rows: array<u32, TM_MAX>;
  for (var i = 0u; i < TM; i++) {
    rows[i] = min(m + i, p.M - 1u);
  }
  let cols = min(vec4(n) + vec4(0u, 1u, 2u, 3u), vec4(p.N - 1u));

  var acc: array<vec4<f32>, TM_MAX>;
  for (var k = 0u; k < p.K; k++) {
    let bv = vec4(b_at(base_b, k, cols.x), b_at(base_b, k, cols.y), b_at(base_b, k, cols.z), b_at(base_b, k, cols.w));
    for (var i = 0u; i < TM; i++) {
      acc[i] = fma(vec4(a_at(base_a, rows[i], k)), bv, acc[i]);
    }
  }
  store_tile(gid.z * p.stride_c, m, n, acc);
}
