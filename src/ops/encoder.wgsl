// encoder: out[b,t,:] = wte[ids[b,t], :] + wpe[pos[b,t], :]   (token + position embedding)
// Backward, deterministic and without atomics: the launcher groups the (b,t) indices by table row on
// the CPU (encoderBuckets in encoder.ts); one workgroup column per occurring row sums its items in a
// fixed order, one invocation per channel, then adds the sum into the grad row once.

struct Params {
  B: u32,
  T: u32,
  C: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// encoder_forward
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (B, T, C)
@group(0) @binding(2) var<storage, read> ids: array<u32>;        // (B, T) token ids
@group(0) @binding(3) var<storage, read> pos: array<u32>;        // (B, T) position ids
@group(0) @binding(4) var<storage, read> wte: array<f32>;        // (V, C)
@group(0) @binding(5) var<storage, read> wpe: array<f32>;        // (maxT, C)

const WG = 64u;

// grid: (ceil(C / WG), T, B)
@compute @workgroup_size(WG)
fn encoder_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let bt = gid.z * p.T + gid.y;
  if (c >= p.C) {
    return;
  }
  out[bt * p.C + c] = wte[ids[bt] * p.C + c] + wpe[pos[bt] * p.C + c];
}

struct BucketParams {
  C: u32,
  rows: u32, // number of buckets n
}

@group(0) @binding(0) var<uniform> q: BucketParams;

// encoder_backward_buckets: dtable (wte or wpe) += sums of dout rows, bucketed by table row
@group(0) @binding(1) var<storage, read_write> dtable: array<f32>;  // (V, C) or (maxT, C)
@group(0) @binding(2) var<storage, read> dout: array<f32>;          // (B, T, C)
// [row (n) | start (n + 1) | item (B*T)]: bucket k holds table row row[k] and the flat (b,t)
// indices item[start[k] .. start[k+1]), increasing.
@group(0) @binding(3) var<storage, read> buckets: array<u32>;

// grid: (n, ceil(C / WG))
@compute @workgroup_size(WG)
fn encoder_backward_buckets(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let k = wid.x;
  let c = wid.y * WG + lid.x;
  if (c >= q.C) {
    return;
  }
  let n = q.rows;
  let row = buckets[k];
  let first = buckets[n + k];
  let last = buckets[n + k + 1u];
  var sum = 0.0;
  for (var i = first; i < last; i++) {
    let bt = buckets[2u * n + 1u + i];
    sum += dout[bt * q.C + c];
  }
  dtable[row * q.C + c] += sum;
}
