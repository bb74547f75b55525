// Global gradient-norm clipping over one flat gradient buffer, torch.nn.utils.clip_grad_norm_:
//   total_norm = sqrt(sum_i g_i^2)
//   clip_coef  = min(max_norm / (total_norm + 1e-6), 1)
//   g_i       *= clip_coef
// in three deterministic passes, the coefficient never leaving the GPU:
//   grad_norm_partials  workgroup w sums g^2 over elements w*256 + lid, stepping by count*256, then
//                       reduces its 256 sums as a fixed tree: partials[w]
//   grad_norm_final     one workgroup sums the `count` partials the same way: out = [norm, clip_coef]
//   grad_norm_clip      g *= out[1]
// Plus a non-finite detector for the trainer's guard: flag = 1 if any element is NaN or +-Inf.
// Each entry point binds its own buffers at bindings 1 and 2 (every one it declares, it uses).

struct Params {
  N: u32,
  count: u32,     // workgroups of grad_norm_partials, and so the number of partials
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG = 256u;
var<workgroup> sums: array<f32, WG>;

// Sums `sums` in a fixed tree; the total ends in sums[0]. Called by all WG invocations.
fn reduce_sums(lid: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      sums[lid] += sums[lid + s];
    }
    workgroupBarrier();
  }
}

@group(0) @binding(1) var<storage, read_write> partials_out: array<f32>; // (count)
@group(0) @binding(2) var<storage, read> grads_in: array<f32>;           // (N)

@compute @workgroup_size(WG)
fn grad_norm_partials(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  var acc = 0.0;
  for (var i = wid.x * WG + lid; i < p.N; i += p.count * WG) {
    let g = grads_in[i];
    acc = fma(g, g, acc);
  }
  sums[lid] = acc;
  workgroupBarrier();
  reduce_sums(lid);
  if (lid == 0u) {
    partials_out[wid.x] = sums[0];
  }
}

@group(0) @binding(1) var<storage, read_write> norm_out: array<f32>; // (2) [total_norm, clip_coef]
@group(0) @binding(2) var<storage, read> partials_in: array<f32>;    // (count)

@compute @workgroup_size(WG)
fn grad_norm_final(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.count; i += WG) {
    acc += partials_in[i];
  }
  sums[lid] = acc;
  workgroupBarrier();
  reduce_sums(lid);
  if (lid == 0u) {
    let norm = sqrt(sums[0]);
    norm_out[0] = norm;
    norm_out[1] = min(p.max_norm / (norm + 1e-6), 1.0);
  }
}

@group(0) @binding(1) var<storage, read_write> grads_inout: array<f32>; // (N)
@group(0) @binding(2) var<storage, read> coef_in: array<f32>;          // (2) [total_norm, clip_coef]

// Element i = (workgroup_id.y * num_workgroups.x + workgroup_id.x) * 256 + local index (2-D grid).
@compute @workgroup_size(WG)
fn grad_norm_clip(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i < p.N) {
    grads_inout[i] *= coef_in[1];
  }
}

@group(0) @binding(1) var<storage, read_write> flag: atomic<u32>; // 1 once a non-finite is seen
@group(0) @binding(2) var<storage, read> values: array<f32>;      // (N)

// Non-finite means an all-ones exponent; tested on the bits, since x != x may be optimized away.
@compute @workgroup_size(WG)
fn find_nonfinite(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i < p.N && (bitcast<u32>(values[i]) & 0x7f800000u) == 0x7f800000u) {
    atomicStore(&flag, 1u);
  }
}
