// dbias[OC] += sum over rows of dout[BT, OC]: the bias gradient of matmul's forward.
// One workgroup owns 32 consecutive columns; its 8 row lanes each sum every 8th row in order, then
// lane 0 adds the 8 partials in a fixed order. No atomics, so the result is the same on every run.

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
