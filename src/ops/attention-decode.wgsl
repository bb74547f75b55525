// Attention of one new query per row over a KV cache, for token-by-token generation.
//   kv   (2, B, NH, maxT, HS)  kv[0] = keys, kv[1] = values, per head contiguous along the cache
//   kv_cache_write: for rows t < T of qkv (B, T, 3C), cache index t0 + t gets that row's k and v:
//     kv[0, b, h, t0 + t, i] = qkv[b, t, C + h*HS + i],  kv[1, b, h, t0 + t, i] = qkv[b, t, 2C + h*HS + i]
//   attention_decode: qkv (B, 3C) holds the new token's q (its k, v already written to the cache);
//     key j < Tk is visible when mask[b, j] != 0 (prompt padding is 0; the new token's own key is 1)
//     out[b, h*HS + i] = sum_j softmax_j(q . k_j * scale) v_j[i]          out (B, C)
// attention_decode needs HS % 4 == 0 (vec4 loads; every GPT-2 checkpoint has HS = 64): one workgroup
// per (h, b), threads stride over keys for the scores (kept in workgroup memory), then WG / (HS/4)
// groups of HS/4 invocations split the keys for att @ v and sum their partials in a fixed order.
// attention_decode_simple is the reference: one invocation per (b, h), serial loops, any HS.

struct Params {
  B: u32,
  C: u32,
  NH: u32,
  HS: u32,
  maxT: u32, // cache length: the stride of kv along t and of mask
  T: u32, // kv_cache_write: rows per batch row in qkv
  t0: u32, // kv_cache_write: cache index of qkv's row 0
  Tk: u32, // attention_decode*: keys 0 .. Tk-1 are read
  scale: f32, // 1 / sqrt(HS)
}

@group(0) @binding(0) var<uniform> p: Params;

// kv_cache_write, attention_decode_simple
@group(0) @binding(1) var<storage, read> qkv: array<f32>;          // (B, T, 3C)
@group(0) @binding(2) var<storage, read_write> kv_out: array<f32>; // (2, B, NH, maxT, HS)
// attention_decode_simple
@group(0) @binding(2) var<storage, read> mask: array<u32>;         // (B, maxT), 0 = padded key
@group(0) @binding(3) var<storage, read> kv: array<f32>;           // (2, B, NH, maxT, HS)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // (B, C)
// attention_decode
@group(0) @binding(1) var<storage, read> qkv4: array<vec4<f32>>;   // (B, 3C / 4)
@group(0) @binding(3) var<storage, read> kv4: array<vec4<f32>>;    // (2, B, NH, maxT, HS / 4)
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>; // (B, C / 4)

const WG = 64u;
const MAX_T = 1024u; // longest cache: GPT-2's n_positions
const MAX_HS4 = 64u; // HS <= 256
const NEG_BIG = -3.402823e38;

var<workgroup> q_row: array<vec4<f32>, MAX_HS4>;
var<workgroup> scores: array<f32, MAX_T>;
var<workgroup> red: array<f32, WG>;
var<workgroup> part: array<vec4<f32>, WG>;

// grid: (ceil(C / WG), T, B)
@compute @workgroup_size(WG)
fn kv_cache_write(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let t = gid.y;
  let b = gid.z;
  if (c >= p.C) {
    return;
  }
  let h = c / p.HS;
  let i = c % p.HS;
  let src = (b * p.T + t) * 3u * p.C + p.C + c;
  let dst = ((b * p.NH + h) * p.maxT + p.t0 + t) * p.HS + i;
  kv_out[dst] = qkv[src];
  kv_out[dst + p.B * p.C * p.maxT] = qkv[src + p.C];
}

// Fixed-tree reductions over the workgroup. Call from uniform control flow.
fn block_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

fn block_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// grid: (NH, B)
@compute @workgroup_size(WG)
fn attention_decode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let h = wid.x;
  let b = wid.y;
  let lid = lid3.x;
  let HS4 = p.HS / 4u;
  let C4 = p.C / 4u;
  let kbase = (b * p.NH + h) * p.maxT * HS4; // in vec4s
  let vbase = kbase + p.B * p.maxT * C4;
  for (var i = lid; i < HS4; i += WG) {
    q_row[i] = qkv4[b * 3u * C4 + h * HS4 + i];
  }
  workgroupBarrier();

  // Scores of visible keys; masked keys keep NEG_BIG and get weight 0 below.
  var local_max = NEG_BIG;
  for (var j = lid; j < p.Tk; j += WG) {
    var s = NEG_BIG;
    if (mask[b * p.maxT + j] != 0u) {
      var acc = vec4<f32>(0.0);
      let k = kbase + j * HS4;
      for (var i = 0u; i < HS4; i++) {
        acc += q_row[i] * kv4[k + i];
      }
      s = (acc.x + acc.y + acc.z + acc.w) * p.scale;
      local_max = max(local_max, s);
    }
    scores[j] = s;
  }
  let row_max = block_max(local_max, lid);
  var local_sum = 0.0;
  for (var j = lid; j < p.Tk; j += WG) {
    let e = select(0.0, exp(scores[j] - row_max), mask[b * p.maxT + j] != 0u);
    scores[j] = e;
    local_sum += e;
  }
  let inv_sum = 1.0 / block_sum(local_sum, lid); // its barriers also publish every scores[j]

  // att @ v: invocation (grp, col) sums keys grp, grp + groups, ... of vec4 column col.
  let groups = WG / HS4;
  let col = lid % HS4;
  let grp = lid / HS4;
  var acc = vec4<f32>(0.0);
  if (grp < groups) {
    for (var j = grp; j < p.Tk; j += groups) {
      acc += scores[j] * kv4[vbase + j * HS4 + col];
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (lid < HS4) {
    var total = vec4<f32>(0.0);
    for (var g = 0u; g < groups; g++) {
      total += part[g * HS4 + lid];
    }
    out4[b * C4 + h * HS4 + lid] = total * inv_sum;
  }
}

fn decode_score(b: u32, h: u32, j: u32) -> f32 {
  let q = b * 3u * p.C + h * p.HS;
  let k = ((b * p.NH + h) * p.maxT + j) * p.HS;
  var s = 0.0;
  for (var i = 0u; i < p.HS; i++) {
    s += qkv[q + i] * kv[k + i];
  }
  return s * p.scale;
}

// grid: (ceil(B * NH / WG)); one invocation per (b, h), `out` accumulates in place.
@compute @workgroup_size(WG)
fn attention_decode_simple(@builtin(global_invocation_id) gid: vec3<u32>) {
  let bh = gid.x;
  if (bh >= p.B * p.NH) {
    return;
  }
  let b = bh / p.NH;
  let h = bh % p.NH;
  var m = NEG_BIG;
  for (var j = 0u; j < p.Tk; j++) {
    if (mask[b * p.maxT + j] != 0u) {
      m = max(m, decode_score(b, h, j));
    }
  }
  let o = b * p.C + h * p.HS;
  for (var i = 0u; i < p.HS; i++) {
    out[o + i] = 0.0;
  }
  var sum = 0.0;
  let vbase = p.B * p.C * p.maxT;
  for (var j = 0u; j < p.Tk; j++) {
    if (mask[b * p.maxT + j] != 0u) {
      let e = exp(decode_score(b, h, j) - m);
      sum += e;
      let v = vbase + ((b * p.NH + h) * p.maxT + j) * p.HS;
      for (var i = 0u; i < p.HS; i++) {
        out[o + i] += e * kv[v + i];
      }
    }
  }
  for (var i = 0u; i < p.HS; i++) {
    out[o + i] /= sum;
  }
}
