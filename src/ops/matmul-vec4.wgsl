// The same contract as matmul.wgsl (see its header), for the layouts GPT-2 uses, with vec4 loads:
//   matmul_vec4_nn   op(A) = A (M, K),    op(B) = B (K, N)      forward, lm-head dx
//   matmul_vec4_nt   op(A) = A (M, K),    op(B) = B^T, B (N, K)  dinp, logits = x @ wte^T
//   matmul_vec4_tn   op(A) = A^T, A (K, M), op(B) = B (K, N)    dweight, dwte
// Each invocation owns a 4x4 block of C held in four named vec4 registers (no private arrays: those
// can end up in memory), so every load feeds 4 FMAs. Rows and columns past the edge are clamped for
// loads and masked for stores. The launcher checks the alignment these need: lda, ldb, ldc and the
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

@compute @workgroup_size(8, 8)
fn matmul_vec4_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 4u;
  let n = gid.x * 4u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  // Row starts of A (clamped rows), in elements; B's column block n..n+3 is one vec4 per k.
  let r0 = z * p.stride_a + min(m, p.M - 1u) * p.lda;
  let r1 = z * p.stride_a + min(m + 1u, p.M - 1u) * p.lda;
  let r2 = z * p.stride_a + min(m + 2u, p.M - 1u) * p.lda;
  let r3 = z * p.stride_a + min(m + 3u, p.M - 1u) * p.lda;
  let bcol = z * p.stride_b + n;
  var acc0 = vec4(0.0);
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  let K4 = p.K & ~3u;
  for (var k = 0u; k < K4; k += 4u) {
    let b0 = b[(bcol + k * p.ldb) / 4u];
    let b1 = b[(bcol + (k + 1u) * p.ldb) / 4u];
    let b2 = b[(bcol + (k + 2u) * p.ldb) / 4u];
    let b3 = b[(bcol + (k + 3u) * p.ldb) / 4u];
    let a0 = a[(r0 + k) / 4u];
    let a1v = a[(r1 + k) / 4u];
    let a2 = a[(r2 + k) / 4u];
    let a3 = a[(r3 + k) / 4u];
    acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    acc1 += a1v.x * b0 + a1v.y * b1 + a1v.z * b2 + a1v.w * b3;
    acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
  }
  for (var k = K4; k < p.K; k++) {
    let bk = b[(bcol + k * p.ldb) / 4u];
    acc0 += a1(r0 + k) * bk;
    acc1 += a1(r1 + k) * bk;
    acc2 += a1(r2 + k) * bk;
    acc3 += a1(r3 + k) * bk;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
}

@compute @workgroup_size(8, 8)
fn matmul_vec4_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 4u;
  let n = gid.x * 4u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  let r0 = z * p.stride_a + min(m, p.M - 1u) * p.lda;
  let r1 = z * p.stride_a + min(m + 1u, p.M - 1u) * p.lda;
  let r2 = z * p.stride_a + min(m + 2u, p.M - 1u) * p.lda;
  let r3 = z * p.stride_a + min(m + 3u, p.M - 1u) * p.lda;
  // B is stored (N, K): column n of op(B) is row n of B, contiguous in k.
  let c0 = z * p.stride_b + min(n, p.N - 1u) * p.ldb;
  let c1 = z * p.stride_b + min(n + 1u, p.N - 1u) * p.ldb;
  let c2 = z * p.stride_b + min(n + 2u, p.N - 1u) * p.ldb;
  let c3 = z * p.stride_b + min(n + 3u, p.N - 1u) * p.ldb;
  var acc0 = vec4(0.0);
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  let K4 = p.K & ~3u;
  for (var k = 0u; k < K4; k += 4u) {
    let b0 = b[(c0 + k) / 4u];
    let b1 = b[(c1 + k) / 4u];
    let b2 = b[(c2 + k) / 4u];
    let b3 = b[(c3 + k) / 4u];
    let a0 = a[(r0 + k) / 4u];
    let a1v = a[(r1 + k) / 4u];
    let a2 = a[(r2 + k) / 4u];
    let a3 = a[(r3 + k) / 4u];
    acc0 += vec4(dot(a0, b0), dot(a0, b1), dot(a0, b2), dot(a0, b3));
    acc1 += vec4(dot(a1v, b0), dot(a1v, b1), dot(a1v, b2), dot(a1v, b3));
    acc2 += vec4(dot(a2, b0), dot(a2, b1), dot(a2, b2), dot(a2, b3));
    acc3 += vec4(dot(a3, b0), dot(a3, b1), dot(a3, b2), dot(a3, b3));
  }
  for (var k = K4; k < p.K; k++) {
    let bk = vec4(b1(c0 + k), b1(c1 + k), b1(c2 + k), b1(c3 + k));
    acc0 += a1(r0 + k) * bk;
    acc1 += a1(r1 + k) * bk;
    acc2 += a1(r2 + k) * bk;
    acc3 += a1(r3 + k) * bk;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
}

@compute @workgroup_size(8, 8)
fn matmul_vec4_tn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.y * 4u;
  let n = gid.x * 4u;
  if (m >= p.M || n >= p.N) {
    return;
  }
  let z = gid.z;
  // A is stored (K, M): rows m..m+3 of op(A) at depth k are one vec4; B's columns n..n+3 likewise.
  let acol = z * p.stride_a + m;
  let bcol = z * p.stride_b + n;
  var acc0 = vec4(0.0);
  var acc1 = vec4(0.0);
  var acc2 = vec4(0.0);
  var acc3 = vec4(0.0);
  for (var k = 0u; k < p.K; k++) {
    let av = a[(acol + k * p.lda) / 4u];
    let bv = b[(bcol + k * p.ldb) / 4u];
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
  }
  store_tile(z, m, n, acc0, acc1, acc2, acc3);
}
