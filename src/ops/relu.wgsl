// relu: out = max(x, 0), elementwise over N values (DistilBERT's classifier head).
// NaN stays NaN (select, not max, whose NaN handling WGSL leaves to the driver).
// The grid may be 2-D when N/256 exceeds 65535 workgroups, so the flat index folds y into x.

struct Params {
  N: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // (N)
@group(0) @binding(2) var<storage, read> inp: array<f32>;         // (N)

const WG = 256u;

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.N) {
    return;
  }
  let x = inp[i];
  out[i] = select(x, 0.0, x < 0.0);
}
