// layernorm over the last dim, rows r = b*T + t of inp (B*T, C):
//   mean[r] = sum_c inp[r,c] / C,  rstd[r] = 1 / sqrt(sum_c (inp[r,c] - mean[r])^2 / C + eps)
//   out[r,c] = (inp[r,c] - mean[r]) * rstd[r] * weight[c] + bias[c]
// Backward (norm = (inp - mean) * rstd, g = weight * dout):
//   dinp[r,c] += (g[c] - mean_c(g) - norm[r,c] * mean_c(g * norm[r])) * rstd[r]
//   dweight[c] += sum_r dout[r,c] * norm[r,c],  dbias[c] += sum_r dout[r,c]
// Every reduction runs in a fixed order (no atomics), so results are bitwise reproducible.
// The row kernels read vec4s (C % 4 == 0). A workgroup of WG_ROW invocations takes WG_ROW / ROW_LANES
// rows, ROW_LANES consecutive invocations per row (the launcher sizes ROW_LANES to C: a few vec4s per
// invocation, so small rows do not leave most of a workgroup idle). Each invocation sums its strided
// share of its row; the partials go through workgroup memory with one barrier per reduction, and
// every invocation of a row adds up the row's partials in order (layernorm-subgroups.wgsl, for one
// row per workgroup, does that last step with subgroupAdd). The naive kernels take any C.
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
@group(0) @binding(1) var<storage, read> inp4: array<vec4<f32>>;        // (B*T, C/4)
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;     // (C/4)
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;       // (C/4)
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;  // (B*T, C/4)
@group(0) @binding(3) var<storage, read> dout4: array<vec4<f32>>;       // (B*T, C/4)
@group(0) @binding(4) var<storage, read_write> dinp4: array<vec4<f32>>; // (B*T, C/4)
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

const WG_ROW = 64u; // row kernels: invocations per workgroup
const WG_C = 64u; // channel kernels and naive row kernels: one invocation per channel or row
override ROW_LANES: u32 = 64u; // row kernels: invocations per row, a power of two <= WG_ROW

// Two slots, so that a second reduction never overwrites partials another invocation is still reading.
var<workgroup> red: array<array<vec2<f32>, WG_ROW>, 2>;

// Sum of v over the ROW_LANES invocations of lid's row, in invocation order, the same in each of them.
// Call from uniform control flow, at most once per slot.
fn row_sum(v: vec2<f32>, lid: u32, slot: u32) -> vec2<f32> {
  red[slot][lid] = v;
  workgroupBarrier();
  let first = lid - lid % ROW_LANES;
  var s = vec2<f32>(0.0);
  for (var i = 0u; i < ROW_LANES; i++) {
    s += red[slot][first + i];
  }
  return s;
}

// The row of invocation lid in workgroup (wid.x, wid.y); p.rows or more for the idle tail.
fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * (WG_ROW / ROW_LANES) + lid / ROW_LANES;
}

// grid: ceil(B*T / (WG_ROW / ROW_LANES)) workgroups, as (x, y) when more than fit in x.
@compute @workgroup_size(WG_ROW)
fn layernorm_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  let C4 = select(0u, p.C / 4u, r < p.rows); // past the last row: no loads, no stores
  let x = r * C4;
  let k = lid % ROW_LANES;
  var s = vec4<f32>(0.0);
  for (var c = k; c < C4; c += ROW_LANES) {
    s += inp4[x + c];
  }
  let m = row_sum(vec2<f32>(dot(s, vec4<f32>(1.0)), 0.0), lid, 0u).x / f32(p.C);
  var v = vec4<f32>(0.0);
  for (var c = k; c < C4; c += ROW_LANES) {
    let d = inp4[x + c] - m;
    v += d * d;
  }
  let rs = 1.0 / sqrt(row_sum(vec2<f32>(dot(v, vec4<f32>(1.0)), 0.0), lid, 1u).x / f32(p.C) + p.eps);
  for (var c = k; c < C4; c += ROW_LANES) {
    out4[x + c] = (inp4[x + c] - m) * rs * weight4[c] + bias4[c];
  }
  if (k == 0u && r < p.rows) {
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

// dinp. grid: as layernorm_forward_vec4's.
@compute @workgroup_size(WG_ROW)
fn layernorm_backward_dinp_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
  let r = row_of(wid, nwg, lid);
  let C4 = select(0u, p.C / 4u, r < p.rows); // past the last row: no loads, no stores
  let x = r * C4;
  let k = lid % ROW_LANES;
  let m = mean[min(r, p.rows - 1u)];
  let rs = rstd[min(r, p.rows - 1u)];
  var acc = vec2<f32>(0.0); // (sum g, sum g * norm)
  for (var c = k; c < C4; c += ROW_LANES) {
    let g = weight4[c] * dout4[x + c];
    acc += vec2<f32>(dot(g, vec4<f32>(1.0)), dot(g, (inp4[x + c] - m) * rs));
  }
  let means = row_sum(acc, lid, 0u) / f32(p.C); // (mean_c g, mean_c g * norm)
  for (var c = k; c < C4; c += ROW_LANES) {
    let g = weight4[c] * dout4[x + c];
    let n = (inp4[x + c] - m) * rs;
    dinp4[x + c] += (g - means.x - n * means.y) * rs;
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
