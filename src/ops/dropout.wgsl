// dropout: out[i] = keep(i) ? inp[i] / (1 - p) : 0;  backward dinp[i] += keep(i) ? dout[i] / (1 - p) : 0.
// keep(i) = u(i) >= p with u(i) = (pcg3d(i, stream, seed).x >> 8) / 2^24, the counter-based hash of
// sample.wgsl (Jarzynski and Olano, JCGT 9(3), 2020): the mask depends only on (seed, stream, i), so
// backward recomputes it instead of storing it. dropout.ts has the CPU twin.
// Elementwise over N; the grid may be 2-D (flatGrid), so the flat index folds y into x.

struct Params {
  N: u32,
  seed: u32,
  stream: u32,
  p: f32,
}

@group(0) @binding(0) var<uniform> P: Params;

// dropout_forward
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (N)
@group(0) @binding(2) var<storage, read> inp: array<f32>;       // (N)

// dropout_backward
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>; // (N)
@group(0) @binding(2) var<storage, read> dout: array<f32>;       // (N)

const WG = 256u;

fn pcg3d(seed: vec3<u32>) -> vec3<u32> {
  var v = seed * 1664525u + 1013904223u;
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v ^= v >> vec3<u32>(16u);
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  return v;
}

// 1 / (1 - p) where element i is kept, else 0.
fn keep_scale(i: u32) -> f32 {
  let u = f32(pcg3d(vec3<u32>(i, P.stream, P.seed)).x >> 8u) * (1.0 / 16777216.0);
  return select(0.0, 1.0 / (1.0 - P.p), u >= P.p);
}

@compute @workgroup_size(WG)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= P.N) {
    return;
  }
  out[i] = inp[i] * keep_scale(i);
}

@compute @workgroup_size(WG)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= P.N) {
    return;
  }
  dinp[i] += dout[i] * keep_scale(i);
}
