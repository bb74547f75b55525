// layernorm over the last dim, rows r = b*T + t of inp (B*T, C):
//   mean[r] = sum_c inp[r,c] / C,  rstd[r] = 1 / sqrt(sum_c (inp[r,c] - mean[r])^2 / C + eps)
//   out[r,c] = (inp[r,c] - mean[r]) * rstd[r] * weight[c] + bias[c]
// Backward (norm = (inp - mean) * rstd, g = weight * dout):
//   dinp[r,c] += (g[c] - mean_c(g) - norm[r,c] * mean_c(g * norm[r])) * rstd[r]
//   dweight[c] += sum_r dout[r,c] * norm[r,c],  dbias[c] += sum_r dout[r,c]
// Every reduction runs in a fixed order (no atomics), so results are bitwise reproducible.
// Each buffer keeps one binding number in every entry point that uses it; distinct variables share a
// number only between entry points that never use both.

struct Params {
  rows: u32,          // B*T
  C: u32,
  eps: f32,
  rows_per_chunk: u32, // layernorm_backward_params_partial only
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;              // (B*T, C)
@group(0) @binding(2) var<storage, read> weight: array<f32>;           // (C)
@group(0) @binding(3) var<storage, read> bias: array<f32>;             // (C)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;        // (B*T, C)
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;       // (B*T), written by forward
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;       // (B*T), written by forward
@group(0) @binding(3) var<storage, read> dout: array<f32>;             // (B*T, C)
@group(0) @binding(4) var<storage, read_write> dinp: array<f32>;       // (B*T, C)
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;    // (C)
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;      // (C)
@group(0) @binding(2) var<storage, read_write> part_dweight: array<f32>; // (chunks, C)
@group(0) @binding(4) var<storage, read_write> part_dbias: array<f32>;   // (chunks, C)

// layernorm_backward_params_reduce: sum_out (C) += sum over k of parts (K, C), k increasing.
struct ReduceParams {
  K: u32,
  C: u32,
}
@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read_write> sum_out: array<f32>;    // (C)
@group(0) @binding(2) var<storage, read> parts: array<f32>;            // (K, C)

const WG = 128u; // row kernels: one workgroup per row
const WG_C = 64u; // channel kernels: one invocation per channel

var<workgroup> red: array<f32, WG>;

// Sum of v over the workgroup, as a fixed tree. Call from uniform control flow.
fn block_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // everyone has read red[0] before the next block_sum overwrites it
  return total;
}

// One workgroup per row. grid: (T, B)
@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.y * nwg.x + wid.x;
  let C = p.C;
  let x = r * C;
  var s = 0.0;
  for (var c = lid.x; c < C; c += WG) {
    s += inp[x + c];
  }
  let m = block_sum(s, lid.x) / f32(C);
  var v = 0.0;
  for (var c = lid.x; c < C; c += WG) {
    let d = inp[x + c] - m;
    v += d * d;
  }
  let rs = 1.0 / sqrt(block_sum(v, lid.x) / f32(C) + p.eps);
  for (var c = lid.x; c < C; c += WG) {
    out[x + c] = (inp[x + c] - m) * rs * weight[c] + bias[c];
  }
  if (lid.x == 0u) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// The simple kernel: one invocation per row. grid: (ceil(B*T / WG_C))
@compute @workgroup_size(WG_C)
fn layernorm_forward_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) {
    return;
  }
  let C = p.C;
  let x = r * C;
  var s = 0.0;
  for (var c = 0u; c < C; c++) {
    s += inp[x + c];
  }
  let m = s / f32(C);
  var v = 0.0;
  for (var c = 0u; c < C; c++) {
    let d = inp[x + c] - m;
    v += d * d;
  }
  let rs = 1.0 / sqrt(v / f32(C) + p.eps);
  for (var c = 0u; c < C; c++) {
    out[x + c] = (inp[x + c] - m) * rs * weight[c] + bias[c];
  }
  mean[r] = m;
  rstd[r] = rs;
}

// dinp, one workgroup per row. grid: (T, B)
@compute @workgroup_size(WG)
fn layernorm_backward_dinp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.y * nwg.x + wid.x;
  let C = p.C;
  let x = r * C;
  let m = mean[r];
  let rs = rstd[r];
  var sg = 0.0;
  var sgn = 0.0;
  for (var c = lid.x; c < C; c += WG) {
    let g = weight[c] * dout[x + c];
    sg += g;
    sgn += g * (inp[x + c] - m) * rs;
  }
  let g_mean = block_sum(sg, lid.x) / f32(C);
  let gn_mean = block_sum(sgn, lid.x) / f32(C);
  for (var c = lid.x; c < C; c += WG) {
    let g = weight[c] * dout[x + c];
    let n = (inp[x + c] - m) * rs;
    dinp[x + c] += (g - g_mean - n * gn_mean) * rs;
  }
}

// The simple kernel: dinp, one invocation per row. grid: (ceil(B*T / WG_C))
@compute @workgroup_size(WG_C)
fn layernorm_backward_dinp_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.rows) {
    return;
  }
  let C = p.C;
  let x = r * C;
  let m = mean[r];
  let rs = rstd[r];
  var sg = 0.0;
  var sgn = 0.0;
  for (var c = 0u; c < C; c++) {
    let g = weight[c] * dout[x + c];
    sg += g;
    sgn += g * (inp[x + c] - m) * rs;
  }
  let g_mean = sg / f32(C);
  let gn_mean = sgn / f32(C);
  for (var c = 0u; c < C; c++) {
    let g = weight[c] * dout[x + c];
    let n = (inp[x + c] - m) * rs;
    dinp[x + c] += (g - g_mean - n * gn_mean) * rs;
  }
}

// The simple kernel: dweight, dbias, one invocation per channel over all rows. grid: (ceil(C / WG_C))
@compute @workgroup_size(WG_C)
fn layernorm_backward_params_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let C = p.C;
  if (c >= C) {
    return;
  }
  var dw = 0.0;
  var db = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let d = dout[r * C + c];
    db += d;
    dw += d * (inp[r * C + c] - mean[r]) * rstd[r];
  }
  dweight[c] += dw;
  dbias[c] += db;
}

// Pass 1 of 2: partial sums of dweight, dbias over chunks of rows_per_chunk rows.
// grid: (ceil(C / WG_C), chunks)
@compute @workgroup_size(WG_C)
fn layernorm_backward_params_partial(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let k = gid.y;
  let C = p.C;
  if (c >= C) {
    return;
  }
  let first = k * p.rows_per_chunk;
  let last = min(first + p.rows_per_chunk, p.rows);
  var dw = 0.0;
  var db = 0.0;
  for (var r = first; r < last; r++) {
    let d = dout[r * C + c];
    db += d;
    dw += d * (inp[r * C + c] - mean[r]) * rstd[r];
  }
  part_dweight[k * C + c] = dw;
  part_dbias[k * C + c] = db;
}

// Pass 2 of 2, once for dweight and once for dbias. grid: (ceil(C / WG_C))
@compute @workgroup_size(WG_C)
fn layernorm_backward_params_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= rp.C) {
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < rp.K; k++) {
    s += parts[k * rp.C + c];
  }
  sum_out[c] += s;
}
