// gelu_erf: the exact GELU, torch's F.gelu default (approximate='none'), elementwise over N values:
//   out = 0.5 x (1 + erf(x / sqrt(2)))
// erf is the f32 rational approximation Eigen and XLA use: x clamped to [-4, 4] (erf(4) rounds to 1
// in f32), then x P(x^2) / Q(x^2) with P of degree 6 and Q of degree 4 in x^2. Its error against an
// exact erf is at most 6.5e-8 in float64 arithmetic (checked on [-6, 6]); f32 evaluation adds a few
// ulps. The clamp also keeps x^2 finite for any finite x.
// The grid may be 2-D when N/256 exceeds 65535 workgroups, so the flat index folds y into x.

struct Params {
  N: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;   // (N)
@group(0) @binding(2) var<storage, read> inp: array<f32>;         // (N)

const WG = 256u;
const INV_SQRT2 = 0.7071067811865476;

fn erf_f32(a: f32) -> f32 {
  let x = clamp(a, -4.0, 4.0);
  let x2 = x * x;
  var num = -2.72614225801306e-10;
  num = fma(x2, num, 2.77068142495902e-08);
  num = fma(x2, num, -2.10102402082508e-06);
  num = fma(x2, num, -5.69250639462346e-05);
  num = fma(x2, num, -7.34990630326855e-04);
  num = fma(x2, num, -2.95459980854025e-03);
  num = fma(x2, num, -1.60960333262415e-02);
  var den = -1.45660718464996e-05;
  den = fma(x2, den, -2.13374055278905e-04);
  den = fma(x2, den, -1.68282697438203e-03);
  den = fma(x2, den, -7.37332916720468e-03);
  den = fma(x2, den, -1.42647390514189e-02);
  return x * num / den;
}

@compute @workgroup_size(WG)
fn gelu_erf_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.N) {
    return;
  }
  let x = inp[i];
  out[i] = 0.5 * x * (1.0 + erf_f32(x * INV_SQRT2));
}
