// out[BT, OC] = inp[BT, C] @ weight[C, OC] + bias[OC]   (GPT-2 Conv1D layout: weight is [in, out])
// The simple kernel: one invocation per output element. The reference and the fallback for the
// tiled kernels.

struct Params {
  BT: u32,
  C: u32,
  OC: u32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // (BT, OC)
@group(0) @binding(2) var<storage, read> inp: array<f32>;         // (BT, C)
@group(0) @binding(3) var<storage, read> weight: array<f32>;      // (C, OC)
@group(0) @binding(4) var<storage, read> bias: array<f32>;        // (OC), read only when has_bias

@compute @workgroup_size(8, 8)
fn matmul_forward_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  let bt = gid.y;
  if (o >= p.OC || bt >= p.BT) {
    return;
  }
  var acc = 0.0;
  if (p.has_bias != 0u) {
    acc = bias[o];
  }
  for (var c = 0u; c < p.C; c++) {
    acc += inp[bt * p.C + c] * weight[c * p.OC + o];
  }
  out[bt * p.OC + o] = acc;
}
