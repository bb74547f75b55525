// One AdamW step over a flat parameter block, torch.optim.AdamW's arithmetic (weight_decay = 0 is
// torch.optim.Adam):
//   p  = p * (1 - lr * wd)                       decoupled decay, before the Adam update
//   m  = lerp(m, g, 1 - beta1)                   = beta1 * m + (1 - beta1) * g
//   v  = v * beta2 + (1 - beta2) * g * g
//   p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t); the launcher computes those
// from the step count t in float64 so they match PyTorch's Python-float bias corrections.
// Element i = (workgroup_id.y * num_workgroups.x + workgroup_id.x) * 256 + local index: a 2-D grid
// covers N past 65535 * 256 (GPT-2 small has 124M parameters).

struct Params {
  N: u32,
  decay: f32,           // 1 - lr * weight_decay
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,       // lr / (1 - beta1^t)
  bc2_sqrt: f32,        // sqrt(1 - beta2^t)
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>; // (N)
@group(0) @binding(2) var<storage, read_write> m: array<f32>;      // (N) first moment, exp_avg
@group(0) @binding(3) var<storage, read_write> v: array<f32>;      // (N) second moment, exp_avg_sq
@group(0) @binding(4) var<storage, read> grads: array<f32>;        // (N)

@compute @workgroup_size(256)
fn adamw_update(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.N) {
    return;
  }
  let g = grads[i];
  // torch's lerp_ (weight < 0.5) and addcmul_ end in a fused multiply-add; addcdiv_ is
  // p + (value * m) / denom.
  let mi = fma(p.one_minus_beta1, g - m[i], m[i]);
  let vi = fma(p.one_minus_beta2 * g, g, v[i] * p.beta2);
  let denom = sqrt(vi) / p.bc2_sqrt + p.eps;
  params[i] = params[i] * p.decay + (-p.step_size * mi) / denom;
  m[i] = mi;
  v[i] = vi;
}
