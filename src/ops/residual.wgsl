// residual: out[N] = inp1[N] + inp2[N]; backward dinp1 += dout, dinp2 += dout.
// Elementwise over N = B*T*C. The grid may be 2-D when N/256 exceeds the 65535 workgroups a
// dimension allows, so the flat index folds y into x.

struct Params {
  N: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// residual_forward
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // (N)
@group(0) @binding(2) var<storage, read> inp1: array<f32>;        // (N)
@group(0) @binding(3) var<storage, read> inp2: array<f32>;        // (N)

// residual_backward
@group(0) @binding(1) var<storage, read_write> dinp1: array<f32>; // (N)
@group(0) @binding(2) var<storage, read_write> dinp2: array<f32>; // (N)
@group(0) @binding(3) var<storage, read> dout: array<f32>;        // (N)

const WG = 256u;

@compute @workgroup_size(WG)
fn residual_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.N) {
    return;
  }
  out[i] = inp1[i] + inp2[i];
}

@compute @workgroup_size(WG)
fn residual_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.N) {
    return;
  }
  let d = dout[i];
  dinp1[i] += d;
  dinp2[i] += d;
}
