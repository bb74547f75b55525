// layernorm.wgsl's row kernels (vec4, C % 4 == 0) for ROW_LANES = WG_ROW, one workgroup per row, with
// the row sums finished by subgroupAdd, for devices with the 'subgroups' feature. Same shapes,
// bindings and maths:
//   mean[r] = sum_c inp[r,c] / C,  rstd[r] = 1 / sqrt(sum_c (inp[r,c] - mean[r])^2 / C + eps)
//   out[r,c] = (inp[r,c] - mean[r]) * rstd[r] * weight[c] + bias[c]
//   dinp[r,c] += (g[c] - mean_c(g) - norm[r,c] * mean_c(g * norm[r])) * rstd[r],  g = weight * dout
// A row sum: each invocation's partial goes to workgroup memory (one barrier); lane k of each subgroup
// adds partials k, k + n, k + 2n, ... (n = the subgroup's invocation count), then subgroupAdd. This
// assumes nothing about which invocations share a subgroup (WGSL does not say), only that the lanes'
// subgroup ids are 0..n-1 (https://github.com/gpuweb/gpuweb/pull/5520).

enable subgroups;

struct Params {
  rows: u32, // B*T
  C: u32,
  eps: f32,
  rows_per_chunk: u32, // unused here
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inp4: array<vec4<f32>>;        // (B*T, C/4)
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;     // (C/4)
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;       // (C/4)
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;  // (B*T, C/4)
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;        // (B*T), written by forward
@group(0) @binding(6) var<storage, read_write> rstd: array<f32>;        // (B*T), written by forward
@group(0) @binding(3) var<storage, read> dout4: array<vec4<f32>>;       // (B*T, C/4)
@group(0) @binding(4) var<storage, read_write> dinp4: array<vec4<f32>>; // (B*T, C/4)

const WG_ROW = 64u;

// Two slots, so that a second reduction never overwrites partials another invocation is still reading.
var<workgroup> red: array<array<vec2<f32>, WG_ROW>, 2>;

// Sum of v over the workgroup. Call from uniform control flow, at most once per slot.
fn row_sum(v: vec2<f32>, lid: u32, sid: u32, slot: u32) -> vec2<f32> {
  red[slot][lid] = v;
  workgroupBarrier();
  let n = subgroupAdd(1u);
  var s = vec2<f32>(0.0);
  for (var i = sid; i < WG_ROW; i += n) {
    s += red[slot][i];
  }
  return subgroupAdd(s);
}

// grid: B*T workgroups, as (x, y) when more than fit in x.
@compute @workgroup_size(WG_ROW)
fn layernorm_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32,
                          @builtin(subgroup_invocation_id) sid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) {
    return; // the grid's idle tail (uniform in the workgroup)
  }
  let C4 = p.C / 4u;
  let x = r * C4;
  var s = vec4<f32>(0.0);
  for (var c = lid; c < C4; c += WG_ROW) {
    s += inp4[x + c];
  }
  let m = row_sum(vec2<f32>(dot(s, vec4<f32>(1.0)), 0.0), lid, sid, 0u).x / f32(p.C);
  var v = vec4<f32>(0.0);
  for (var c = lid; c < C4; c += WG_ROW) {
    let d = inp4[x + c] - m;
    v += d * d;
  }
  let rs = 1.0 / sqrt(row_sum(vec2<f32>(dot(v, vec4<f32>(1.0)), 0.0), lid, sid, 1u).x / f32(p.C) + p.eps);
  for (var c = lid; c < C4; c += WG_ROW) {
    out4[x + c] = (inp4[x + c] - m) * rs * weight4[c] + bias4[c];
  }
  if (lid == 0u) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// grid: B*T workgroups, as (x, y) when more than fit in x.
@compute @workgroup_size(WG_ROW)
fn layernorm_backward_dinp_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32,
                                @builtin(subgroup_invocation_id) sid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= p.rows) {
    return; // the grid's idle tail (uniform in the workgroup)
  }
  let C4 = p.C / 4u;
  let x = r * C4;
  let m = mean[r];
  let rs = rstd[r];
  var acc = vec2<f32>(0.0); // (sum g, sum g * norm)
  for (var c = lid; c < C4; c += WG_ROW) {
    let g = weight4[c] * dout4[x + c];
    acc += vec2<f32>(dot(g, vec4<f32>(1.0)), dot(g, (inp4[x + c] - m) * rs));
  }
  let means = row_sum(acc, lid, sid, 0u) / f32(p.C); // (mean_c g, mean_c g * norm)
  for (var c = lid; c < C4; c += WG_ROW) {
    let g = weight4[c] * dout4[x + c];
    let n = (inp4[x + c] - m) * rs;
    dinp4[x + c] += (g - means.x - n * means.y) * rs;
  }
}
