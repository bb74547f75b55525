// The same contract as matmul.wgsl (see its header), for the layouts GPT-2 uses, with vec4 loads:
//   matmul_vec4_nn   op(A) = A (M, K),    op(B) = B (K, N)      forward, lm-head dx
//   matmul_vec4_nt   op(A) = A (M, K),    op(B) = B^T, B (N, K)  dinp, logits = x @ wte^T
//   matmul_vec4_tn   op(A) = A^T, A (K, M), op(B) = B (K, N)    dweight, dwte
// Each invocation owns an 8x8 block of C held in sixteen named vec4 registers (no private arrays:
// those can end up in memory), so every vec4 load feeds 4 vec4 FMAs (a 4x4 block: 2). Rows and
// columns past the edge are clamped (or read again) for loads and masked for stores. The launcher checks the alignment these need: lda, ldb, ldc and the
// batch strides multiples of 4, the vec4-read extents inside the bindings (see matmul.ts).

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
@group(0) @binding(1) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// Element i of a vec4 array, for the scalar tails.
fn a1(i: u32) -> f32 {
  return a[i / 4u][i % 4u];
}
fn b1(i: u32) -> f32 {
  return b[i / 4u][i % 4u];
}

// Stores row m's 4 outputs at columns n..n+3 (masked at the right edge and below the last row).
fn store_row(base: u32, m: u32, n: u32, acc: vec4<f32>) {
  if (m >= p.M) {
    return;
  }
  var bv = vec4(0.0);
  if (p.has_bias != 0u) {
    bv = vec4(bias[min(n, p.N - 1u)], bias[min(n + 1u, p.N - 1u)], bias[min(n + 2u, p.N - 1u)], bias[min(n + 3u, p.N - 1u)]);
  }
  let i = base + m * p.ldc + n; // a multiple of 4: ldc, n and base are
  if (n + 4u <= p.N) {
    var v = p.alpha * acc + bv;
    if (p.beta != 0.0) {
      v += p.beta * c[i / 4u];
    }
    c[i / 4u] = v;
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    if (n + j < p.N) {
      var v = p.alpha * acc[j] + bv[j];
      if (p.beta != 0.0) {
        v += p.beta * c[i / 4u][j];
      }
      c[i / 4u][j] = v;
    }
  }
}

fn store_tile(z: u32, m: u32, n: u32, acc0: vec4<f32>, acc1: vec4<f32>, acc2: vec4<f32>, acc3: vec4<f32>) {
  let base = z * p.stride_c;
  store_row(base, m, n, acc0);
  store_row(base, m + 1u, n, acc1);
  store_row(base, m + 2u, n, acc2);
  store_row(base, m + 3u, n, acc3);
}

// 8 x 8 outputs per invocation: per 4 steps of k, 8 vec4 reads of A and 8 of B (two column vec4s
// per k) feed 64 vec4 FMAs (4 x 4: 8 reads, 16). Rows past the edge are clamped to the last; the
// second column vec4 is read only when it starts inside the matrix (else the first again); neither
// is stored.
@compute @workgroup_size(8, 8)
fn matmul_vec4_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 8u;
  let n = gid.x * 8u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  // Row starts of A (clamped rows), in elements; B's column blocks n..n+3 and n+4..n+7 are a vec4 each per k.
  let r0 = z * p.stride_a + min(m + 0u, p.M - 1u) * p.lda;
  let r1 = z * p.stride_a + min(m + 1u, p.M - 1u) * p.lda;
  let r2 = z * p.stride_a + min(m + 2u, p.M - 1u) * p.lda;
  let r3 = z * p.stride_a + min(m + 3u, p.M - 1u) * p.lda;
  let r4 = z * p.stride_a + min(m + 4u, p.M - 1u) * p.lda;
  let r5 = z * p.stride_a + min(m + 5u, p.M - 1u) * p.lda;
  let r6 = z * p.stride_a + min(m + 6u, p.M - 1u) * p.lda;
  let r7 = z * p.stride_a + min(m + 7u, p.M - 1u) * p.lda;
  let bcol = z * p.stride_b + n;
  let bcol2 = select(bcol, bcol + 4u, n + 4u < p.N);
  // acc0..7: rows m..m+7 at columns n..n+3; acc8..15: the same rows at columns n+4..n+7.
  var acc0 = vec4(0.0);
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  var acc4 = vec4(0.0);
  var acc5 = vec4(0.0);
  var acc6 = vec4(0.0);
  var acc7 = vec4(0.0);
  var acc8 = vec4(0.0);
  var acc9 = vec4(0.0);
  var acc10 = vec4(0.0);
  var acc11 = vec4(0.0);
  var acc12 = vec4(0.0);
  var acc13 = vec4(0.0);
  var acc14 = vec4(0.0);
  var acc15 = vec4(0.0);
  let K4 = p.K & ~3u;
  for (var k = 0u; k < K4; k += 4u) {
    let b0 = b[(bcol + (k + 0u) * p.ldb) / 4u];
    let c0 = b[(bcol2 + (k + 0u) * p.ldb) / 4u];
    let b1 = b[(bcol + (k + 1u) * p.ldb) / 4u];
    let c1 = b[(bcol2 + (k + 1u) * p.ldb) / 4u];
    let b2 = b[(bcol + (k + 2u) * p.ldb) / 4u];
    let c2 = b[(bcol2 + (k + 2u) * p.ldb) / 4u];
    let b3 = b[(bcol + (k + 3u) * p.ldb) / 4u];
    let c3 = b[(bcol2 + (k + 3u) * p.ldb) / 4u];
    let a0 = a[(r0 + k) / 4u];
    let a1 = a[(r1 + k) / 4u];
    let a2 = a[(r2 + k) / 4u];
    let a3 = a[(r3 + k) / 4u];
    let a4 = a[(r4 + k) / 4u];
    let a5 = a[(r5 + k) / 4u];
    let a6 = a[(r6 + k) / 4u];
    let a7 = a[(r7 + k) / 4u];
    acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    acc8 += a0.x * c0 + a0.y * c1 + a0.z * c2 + a0.w * c3;
    acc1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
    acc9 += a1.x * c0 + a1.y * c1 + a1.z * c2 + a1.w * c3;
    acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    acc10 += a2.x * c0 + a2.y * c1 + a2.z * c2 + a2.w * c3;
    acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
    acc11 += a3.x * c0 + a3.y * c1 + a3.z * c2 + a3.w * c3;
    acc4 += a4.x * b0 + a4.y * b1 + a4.z * b2 + a4.w * b3;
    acc12 += a4.x * c0 + a4.y * c1 + a4.z * c2 + a4.w * c3;
    acc5 += a5.x * b0 + a5.y * b1 + a5.z * b2 + a5.w * b3;
    acc13 += a5.x * c0 + a5.y * c1 + a5.z * c2 + a5.w * c3;
    acc6 += a6.x * b0 + a6.y * b1 + a6.z * b2 + a6.w * b3;
    acc14 += a6.x * c0 + a6.y * c1 + a6.z * c2 + a6.w * c3;
    acc7 += a7.x * b0 + a7.y * b1 + a7.z * b2 + a7.w * b3;
    acc15 += a7.x * c0 + a7.y * c1 + a7.z * c2 + a7.w * c3;
  }
  for (var k = K4; k < p.K; k++) {
    let bk = b[(bcol + k * p.ldb) / 4u];
    let ck = b[(bcol2 + k * p.ldb) / 4u];
    acc0 += a1(r0 + k) * bk;
    acc8 += a1(r0 + k) * ck;
    acc1 += a1(r1 + k) * bk;
    acc9 += a1(r1 + k) * ck;
    acc2 += a1(r2 + k) * bk;
    acc10 += a1(r2 + k) * ck;
    acc3 += a1(r3 + k) * bk;
    acc11 += a1(r3 + k) * ck;
    acc4 += a1(r4 + k) * bk;
    acc12 += a1(r4 + k) * ck;
    acc5 += a1(r5 + k) * bk;
    acc13 += a1(r5 + k) * ck;
    acc6 += a1(r6 + k) * bk;
    acc14 += a1(r6 + k) * ck;
    acc7 += a1(r7 + k) * bk;
    acc15 += a1(r7 + k) * ck;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
  store_tile(z, m + 4u, n, acc4, acc5, acc6, acc7);
  store_tile(z, m, n + 4u, acc8, acc9, acc10, acc11);
  store_tile(z, m + 4u, n + 4u, acc12, acc13, acc14, acc15);
}

// 8 x 8 outputs per invocation: per 4 steps of k, 8 vec4 reads of A and 8 of B feed 64 dot products
// (4 x 4: 8 reads, 16). Rows and columns past the edge are clamped to the last, never stored.
@compute @workgroup_size(8, 8)
fn matmul_vec4_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 8u;
  let n = gid.x * 8u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  let r0 = z * p.stride_a + min(m + 0u, p.M - 1u) * p.lda;
  let r1 = z * p.stride_a + min(m + 1u, p.M - 1u) * p.lda;
  let r2 = z * p.stride_a + min(m + 2u, p.M - 1u) * p.lda;
  let r3 = z * p.stride_a + min(m + 3u, p.M - 1u) * p.lda;
  let r4 = z * p.stride_a + min(m + 4u, p.M - 1u) * p.lda;
  let r5 = z * p.stride_a + min(m + 5u, p.M - 1u) * p.lda;
  let r6 = z * p.stride_a + min(m + 6u, p.M - 1u) * p.lda;
  let r7 = z * p.stride_a + min(m + 7u, p.M - 1u) * p.lda;
  // B is stored (N, K): column n of op(B) is row n of B, contiguous in k.
  let c0 = z * p.stride_b + min(n + 0u, p.N - 1u) * p.ldb;
  let c1 = z * p.stride_b + min(n + 1u, p.N - 1u) * p.ldb;
  let c2 = z * p.stride_b + min(n + 2u, p.N - 1u) * p.ldb;
  let c3 = z * p.stride_b + min(n + 3u, p.N - 1u) * p.ldb;
  let c4 = z * p.stride_b + min(n + 4u, p.N - 1u) * p.ldb;
  let c5 = z * p.stride_b + min(n + 5u, p.N - 1u) * p.ldb;
  let c6 = z * p.stride_b + min(n + 6u, p.N - 1u) * p.ldb;
  let c7 = z * p.stride_b + min(n + 7u, p.N - 1u) * p.ldb;
  // acc0..7: rows m..m+7 at columns n..n+3; acc8..15: the same rows at columns n+4..n+7.
  var acc0 = vec4(0.0);
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  var acc4 = vec4(0.0);
  var acc5 = vec4(0.0);
  var acc6 = vec4(0.0);
  var acc7 = vec4(0.0);
  var acc8 = vec4(0.0);
  var acc9 = vec4(0.0);
  var acc10 = vec4(0.0);
  var acc11 = vec4(0.0);
  var acc12 = vec4(0.0);
  var acc13 = vec4(0.0);
  var acc14 = vec4(0.0);
  var acc15 = vec4(0.0);
  let K4 = p.K & ~3u;
  for (var k = 0u; k < K4; k += 4u) {
    let b0 = b[(c0 + k) / 4u];
    let b1 = b[(c1 + k) / 4u];
    let b2 = b[(c2 + k) / 4u];
    let b3 = b[(c3 + k) / 4u];
    let b4 = b[(c4 + k) / 4u];
    let b5 = b[(c5 + k) / 4u];
    let b6 = b[(c6 + k) / 4u];
    let b7 = b[(c7 + k) / 4u];
    let a0 = a[(r0 + k) / 4u];
    let a1 = a[(r1 + k) / 4u];
    let a2 = a[(r2 + k) / 4u];
    let a3 = a[(r3 + k) / 4u];
    let a4 = a[(r4 + k) / 4u];
    let a5 = a[(r5 + k) / 4u];
    let a6 = a[(r6 + k) / 4u];
    let a7 = a[(r7 + k) / 4u];
    acc0 += vec4(dot(a0, b0), dot(a0, b1), dot(a0, b2), dot(a0, b3));
    acc8 += vec4(dot(a0, b4), dot(a0, b5), dot(a0, b6), dot(a0, b7));
    acc1 += vec4(dot(a1, b0), dot(a1, b1), dot(a1, b2), dot(a1, b3));
    acc9 += vec4(dot(a1, b4), dot(a1, b5), dot(a1, b6), dot(a1, b7));
    acc2 += vec4(dot(a2, b0), dot(a2, b1), dot(a2, b2), dot(a2, b3));
    acc10 += vec4(dot(a2, b4), dot(a2, b5), dot(a2, b6), dot(a2, b7));
    acc3 += vec4(dot(a3, b0), dot(a3, b1), dot(a3, b2), dot(a3, b3));
    acc11 += vec4(dot(a3, b4), dot(a3, b5), dot(a3, b6), dot(a3, b7));
    acc4 += vec4(dot(a4, b0), dot(a4, b1), dot(a4, b2), dot(a4, b3));
    acc12 += vec4(dot(a4, b4), dot(a4, b5), dot(a4, b6), dot(a4, b7));
    acc5 += vec4(dot(a5, b0), dot(a5, b1), dot(a5, b2), dot(a5, b3));
    acc13 += vec4(dot(a5, b4), dot(a5, b5), dot(a5, b6), dot(a5, b7));
    acc6 += vec4(dot(a6, b0), dot(a6, b1), dot(a6, b2), dot(a6, b3));
    acc14 += vec4(dot(a6, b4), dot(a6, b5), dot(a6, b6), dot(a6, b7));
    acc7 += vec4(dot(a7, b0), dot(a7, b1), dot(a7, b2), dot(a7, b3));
    acc15 += vec4(dot(a7, b4), dot(a7, b5), dot(a7, b6), dot(a7, b7));
  }
  for (var k = K4; k < p.K; k++) {
    let bk = vec4(b1(c0 + k), b1(c1 + k), b1(c2 + k), b1(c3 + k));
    let bl = vec4(b1(c4 + k), b1(c5 + k), b1(c6 + k), b1(c7 + k));
    acc0 += a1(r0 + k) * bk;
    acc8 += a1(r0 + k) * bl;
    acc1 += a1(r1 + k) * bk;
    acc9 += a1(r1 + k) * bl;
    acc2 += a1(r2 + k) * bk;
    acc10 += a1(r2 + k) * bl;
    acc3 += a1(r3 + k) * bk;
    acc11 += a1(r3 + k) * bl;
    acc4 += a1(r4 + k) * bk;
    acc12 += a1(r4 + k) * bl;
    acc5 += a1(r5 + k) * bk;
    acc13 += a1(r5 + k) * bl;
    acc6 += a1(r6 + k) * bk;
    acc14 += a1(r6 + k) * bl;
    acc7 += a1(r7 + k) * bk;
    acc15 += a1(r7 + k) * bl;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
  store_tile(z, m + 4u, n, acc4, acc5, acc6, acc7);
  store_tile(z, m, n + 4u, acc8, acc9, acc10, acc11);
  store_tile(z, m + 4u, n + 4u, acc12, acc13, acc14, acc15);
}

// 8 x 8 outputs per invocation (two row and two column vec4s): per k two vec4 reads of A and two of
// B feed 64 FMAs, where a 4 x 4 block's two reads feed 16 (the weight gradients' K is the batch's
// rows, a long loop with no other reuse). The second vec4 of rows (columns) is read only when it
// starts inside the matrix; otherwise the first is read again and its results are never stored.
@compute @workgroup_size(8, 8)
fn matmul_vec4_tn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 8u;
  let n = gid.x * 8u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  // A is stored (K, M): rows m..m+3 of op(A) at depth k are one vec4; B's columns n..n+3 likewise.
  let acol = z * p.stride_a + m;
  let bcol = z * p.stride_b + n;
  let acol2 = select(acol, acol + 4u, m + 4u < p.M);
  let bcol2 = select(bcol, bcol + 4u, n + 4u < p.N);
  var acc0 = vec4(0.0); // rows m..m+3, columns n..n+3
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  var acc4 = vec4(0.0); // rows m..m+3, columns n+4..n+7
  var acc5 = vec4(0.0);
  var acc6 = vec4(0.0);
  var acc7 = vec4(0.0);
  var acc8 = vec4(0.0); // rows m+4..m+7, columns n..n+3
  var acc9 = vec4(0.0);
  var acc10 = vec4(0.0);
  var acc11 = vec4(0.0);
  var acc12 = vec4(0.0); // rows m+4..m+7, columns n+4..n+7
  var acc13 = vec4(0.0);
  var acc14 = vec4(0.0);
  var acc15 = vec4(0.0);
  for (var k = 0u; k < p.K; k++) {
    let av = a[(acol + k * p.lda) / 4u];
    let aw = a[(acol2 + k * p.lda) / 4u];
    let bv = b[(bcol + k * p.ldb) / 4u];
    let bw = b[(bcol2 + k * p.ldb) / 4u];
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
    acc4 += av.x * bw;
    acc5 += av.y * bw;
    acc6 += av.z * bw;
    acc7 += av.w * bw;
    acc8 += aw.x * bv;
    acc9 += aw.y * bv;
    acc10 += aw.z * bv;
    acc11 += aw.w * bv;
    acc12 += aw.x * bw;
    acc13 += aw.y * bw;
    acc14 += aw.z * bw;
    acc15 += aw.w * bw;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
  if (n + 4u < p.N) {
    store_tile(z, m, n + 4u, acc4, acc5, acc6, acc7);
  }
  if (m + 4u < p.M) {
    store_tile(z, m + 4u, n, acc8, acc9, acc10, acc11);
    if (n + 4u < p.N) {
      store_tile(z, m + 4u, n + 4u, acc12, acc13, acc14, acc15);
    }
  }
}
