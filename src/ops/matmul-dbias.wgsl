// dbias[OC] += sum over rows of dout[BT, OC]: the bias gradient of matmul's forward.
// One workgroup owns 32 consecutive columns (matmul_dbias) or 32 column vec4s (matmul_dbias_vec4, for
// OC a multiple of 4: a quarter of the load instructions, each 16 bytes); its 8 row lanes each sum
// every 8th row in order, then lane 0 adds the 8 partials in a fixed order. No atomics, so the result
// is the same on every run, and the same from either kernel.

struct Params {
  BT: u32,
  OC: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>; // (OC)
@group(0) @binding(2) var<storage, read> dout: array<f32>;        // (BT, OC)

const COLS = 32u;
const LANES = 8u;
var<workgroup> partial: array<f32, COLS * LANES>;

@compute @workgroup_size(COLS, LANES)
fn matmul_dbias(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let o = wid.x * COLS + lid.x;
  var acc = 0.0;
  if (o < p.OC) {
    for (var r = lid.y; r < p.BT; r += LANES) {
      acc += dout[r * p.OC + o];
    }
  }
  partial[lid.y * COLS + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && o < p.OC) {
    var sum = 0.0;
    for (var l = 0u; l < LANES; l++) {
      sum += partial[l * COLS + lid.x];
    }
    dbias[o] += sum;
  }
}

@group(0) @binding(1) var<storage, read_write> dbias4: array<vec4<f32>>; // (OC / 4)
@group(0) @binding(2) var<storage, read> dout4: array<vec4<f32>>;        // (BT, OC / 4)
var<workgroup> partial4: array<vec4<f32>, COLS * LANES>;

@compute @workgroup_size(COLS, LANES)
fn matmul_dbias_vec4(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let OC4 = p.OC / 4u;
  let o = wid.x * COLS + lid.x;
  var acc = vec4(0.0);
  if (o < OC4) {
    for (var r = lid.y; r < p.BT; r += LANES) {
      acc += dout4[r * OC4 + o];
    }
  }
  partial4[lid.y * COLS + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && o < OC4) {
    var sum = vec4(0.0);
    for (var l = 0u; l < LANES; l++) {
      sum += partial4[l * COLS + lid.x];
    }
    dbias4[o] += sum;
  }
}
