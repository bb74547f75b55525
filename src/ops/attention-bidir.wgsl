// attention_bidir: bidirectional (non-causal) multi-head self-attention with a key padding mask,
// forward only (BERT/DistilBERT encoders).
//   qkv (B, T, 3C): q | k | v, each C wide and split into NH heads of HS = C / NH channels
//   mask (B, T) u32: 0 = padded key (read only when has_mask)
//   out (B, T, C) = heads concatenated, out[b,t,h] = sum_j att[b,h,t,j] v[b,j,h]
//   att[b,h,t,:] = softmax_j(q_t . k_j * scale) over the keys j with mask[b,j] != 0
// A batch row with no unmasked key attends uniformly to all T keys, as HF's eager attention does
// (its finfo.min fill leaves all scores equal); the kernels get that by dropping the mask and
// zeroing q for such a row.
//
//   attention_bidir_naive  one invocation per (query, head, batch), three passes over the keys
//                          (max, sum, weighted v), any HS; the reference and the fallback
//   attention_bidir_tiled  one invocation per query, WG_Q queries per workgroup; keys and values
//                          staged through workgroup memory TK at a time as vec4, one online-softmax
//                          rescale per tile; needs HS % 4 == 0 and HS <= 4 * MAX_HS4

struct Params {
  B: u32,
  T: u32,
  C: u32,
  NH: u32,
  has_mask: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;            // (B, T, 3C), naive kernel
@group(0) @binding(1) var<storage, read> qkv4: array<vec4<f32>>;     // (B, T, 3C/4), tiled kernel
@group(0) @binding(2) var<storage, read> mask: array<u32>;           // (B, T)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;      // (B, T, C)
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>; // (B, T, C/4)

const WG_Q = 64u;     // queries per workgroup (both kernels)
const TK = 16u;       // keys per tile (tiled kernel)
const MAX_HS4 = 16u;  // vec4s per head the tiled kernel's registers hold (HS <= 64)
const NEG_MAX = -0x1.fffffep+127f; // the most negative f32: the running max before any score

// HS / 4 for the tiled kernel, fixed per pipeline so its loops unroll over registers.
override HS4: u32 = 16u;

// Whether batch row b has at least one unmasked key.
fn row_has_key(b: u32) -> bool {
  if (p.has_mask == 0u) {
    return true;
  }
  for (var j = 0u; j < p.T; j++) {
    if (mask[b * p.T + j] != 0u) {
      return true;
    }
  }
  return false;
}

fn key_allowed(b: u32, j: u32, use_mask: bool) -> bool {
  return !use_mask || mask[b * p.T + j] != 0u;
}

// q_t . k_j of one head, times the scale; q is multiplied by q_on (0 for a row without keys).
fn score(b: u32, t: u32, j: u32, h: u32, HS: u32, q_on: f32) -> f32 {
  let q0 = (b * p.T + t) * 3u * p.C + h * HS;
  let k0 = (b * p.T + j) * 3u * p.C + p.C + h * HS;
  var s = 0.0;
  for (var i = 0u; i < HS; i++) {
    s += qkv[q0 + i] * qkv[k0 + i];
  }
  return s * p.scale * q_on;
}

@compute @workgroup_size(WG_Q)
fn attention_bidir_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let h = gid.y;
  let b = gid.z;
  if (t >= p.T) {
    return;
  }
  let HS = p.C / p.NH;
  let use_mask = row_has_key(b);
  let q_on = select(0.0, 1.0, use_mask);
  let masked = use_mask && p.has_mask != 0u;
  var m = NEG_MAX;
  for (var j = 0u; j < p.T; j++) {
    if (key_allowed(b, j, masked)) {
      m = max(m, score(b, t, j, h, HS, q_on));
    }
  }
  var l = 0.0;
  for (var j = 0u; j < p.T; j++) {
    if (key_allowed(b, j, masked)) {
      l += exp(score(b, t, j, h, HS, q_on) - m);
    }
  }
  let o0 = (b * p.T + t) * p.C + h * HS;
  for (var i = 0u; i < HS; i++) {
    out[o0 + i] = 0.0;
  }
  for (var j = 0u; j < p.T; j++) {
    if (key_allowed(b, j, masked)) {
      let w = exp(score(b, t, j, h, HS, q_on) - m) / l;
      let v0 = (b * p.T + j) * 3u * p.C + 2u * p.C + h * HS;
      for (var i = 0u; i < HS; i++) {
        out[o0 + i] += w * qkv[v0 + i];
      }
    }
  }
}

var<workgroup> k_tile: array<vec4<f32>, TK * MAX_HS4>;  // (TK, HS4)
var<workgroup> v_tile: array<vec4<f32>, TK * MAX_HS4>;  // (TK, HS4)
var<workgroup> m_tile: array<u32, TK>;                  // 1 = key allowed

@compute @workgroup_size(WG_Q)
fn attention_bidir_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let t = wid.x * WG_Q + lid.x;
  let h = wid.y;
  let b = wid.z;
  let C4 = p.C / 4u;
  let use_mask = row_has_key(b); // the same for the whole workgroup
  let masked = use_mask && p.has_mask != 0u;
  let q_scale = p.scale * select(0.0, 1.0, use_mask);

  var q: array<vec4<f32>, MAX_HS4>;
  var acc: array<vec4<f32>, MAX_HS4>;
  let q0 = (b * p.T + min(t, p.T - 1u)) * 3u * C4 + h * HS4;
  for (var i = 0u; i < HS4; i++) {
    q[i] = qkv4[q0 + i] * q_scale;
    acc[i] = vec4<f32>(0.0);
  }
  var m = NEG_MAX; // running max of the scores seen
  var l = 0.0;           // running sum of exp(score - m)

  for (var j0 = 0u; j0 < p.T; j0 += TK) {
    workgroupBarrier(); // the previous tile is no longer read
    for (var e = lid.x; e < TK * HS4; e += WG_Q) {
      let j = j0 + e / HS4;
      let c = e % HS4;
      var kv = vec4<f32>(0.0);
      var vv = vec4<f32>(0.0);
      if (j < p.T) {
        let row = (b * p.T + j) * 3u * C4 + h * HS4 + c;
        kv = qkv4[row + C4];
        vv = qkv4[row + 2u * C4];
      }
      k_tile[e] = kv;
      v_tile[e] = vv;
    }
    if (lid.x < TK) {
      let j = j0 + lid.x;
      m_tile[lid.x] = select(0u, 1u, j < p.T && key_allowed(b, min(j, p.T - 1u), masked));
    }
    workgroupBarrier();

    var s: array<f32, TK>;
    var tile_max = NEG_MAX;
    var seen = false;
    for (var jj = 0u; jj < TK; jj++) {
      var d = vec4<f32>(0.0);
      for (var i = 0u; i < HS4; i++) {
        d += q[i] * k_tile[jj * HS4 + i];
      }
      s[jj] = d.x + d.y + d.z + d.w;
      if (m_tile[jj] != 0u) {
        tile_max = max(tile_max, s[jj]);
        seen = true;
      }
    }
    if (seen) {
      let m_new = max(m, tile_max);
      let corr = exp(m - m_new); // 0 on the first tile with keys (l and acc are 0 then)
      l *= corr;
      for (var i = 0u; i < HS4; i++) {
        acc[i] *= corr;
      }
      for (var jj = 0u; jj < TK; jj++) {
        if (m_tile[jj] != 0u) {
          let w = exp(s[jj] - m_new);
          l += w;
          for (var i = 0u; i < HS4; i++) {
            acc[i] += w * v_tile[jj * HS4 + i];
          }
        }
      }
      m = m_new;
    }
  }

  if (t < p.T) {
    let o0 = (b * p.T + t) * C4 + h * HS4;
    for (var i = 0u; i < HS4; i++) {
      out4[o0 + i] = acc[i] / l;
    }
  }
}
