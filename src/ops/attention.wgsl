// Causal multi-head self-attention on GPT-2's c_attn output, with an optional key padding mask.
//   qkv (B, T, 3C): q = qkv[b,t, h*HS + i], k = qkv[b,t, C + h*HS + i], v = qkv[b,t, 2C + h*HS + i]
//   key j is allowed for query t when j <= t and (no mask or mask[b, j] != 0)
//   att[b,h,t,j] = softmax over allowed j of (q_t . k_j) * scale, scale = 1/sqrt(HS); 0 elsewhere.
//   A row with no allowed key (a padded query under left padding) gets att = 1/T over every key when
//   masked_fill == 1 (HF "eager": its additive finfo.min mask makes all T scores equal) or 0 when 0
//   (torch SDPA, HF's default).
//   out[b,t, h*HS + i] = sum_j att[b,h,t,j] v[b,j,h,i]   (heads concatenated)
// Backward (llm.c attention_backward), through the allowed scores only (a fully masked row's weights
// are constants):
//   datt[t,j] = dout_t . v_j
//   dpreatt[t,j] = att[t,j] (datt[t,j] - sum_j' att[t,j'] datt[t,j'])   for allowed j, else 0
//   dq_t += scale sum_j dpreatt[t,j] k_j;  dk_j += scale sum_t dpreatt[t,j] q_t;  dv_j += sum_t att[t,j] dout_t
// Every sum runs in a fixed order: no atomics. Two kernel sets:
//   *_vec4 (HS % 4 == 0): one invocation per query row (forward, backward_query) or per (key row,
//     4 channels) (backward_key), with no barriers and vec4 loads over the head's channels. The
//     invocations of a workgroup take consecutive rows of one head, so they read the same key and value
//     rows at the same time.
//   the others (any HS): one workgroup per (b, h, row), keys and channels strided over invocations,
//     with workgroup-memory reductions.

struct Params {
  T: u32,
  C: u32,
  NH: u32,
  HS: u32,
  has_mask: u32,
  masked_fill: u32, // 1: rows with no allowed key get 1/T everywhere; 0: they get 0
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;          // (B, T, 3C)
@group(0) @binding(2) var<storage, read> mask: array<u32>;         // (B, T), 0 = padded key; read when has_mask
@group(0) @binding(3) var<storage, read_write> att: array<f32>;    // (B, NH, T, T), written by the forward
@group(0) @binding(3) var<storage, read> att_in: array<f32>;       // (B, NH, T, T), as saved by the forward
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // (B, T, C), the forward's output
@group(0) @binding(4) var<storage, read> dout: array<f32>;         // (B, T, C)
@group(0) @binding(5) var<storage, read_write> dpreatt: array<f32>; // (B, NH, T, T), scratch
@group(0) @binding(5) var<storage, read> dpreatt_in: array<f32>;   // (B, NH, T, T), as left by the query pass
@group(0) @binding(6) var<storage, read_write> dqkv: array<f32>;   // (B, T, 3C)
@group(0) @binding(1) var<storage, read> qkv4: array<vec4<f32>>;         // (B, T, 3C/4)
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;   // (B, T, C/4)
@group(0) @binding(4) var<storage, read> dout4: array<vec4<f32>>;        // (B, T, C/4)
@group(0) @binding(6) var<storage, read_write> dqkv4: array<vec4<f32>>;  // (B, T, 3C/4)

const WG = 64u;
const MAX_HS = 256u;

var<workgroup> red: array<f32, WG>;
var<workgroup> row_vec: array<f32, MAX_HS>; // q_t (forward) or dout_t (backward) of this workgroup's row

fn allowed(b: u32, t: u32, j: u32) -> bool {
  return j <= t && (p.has_mask == 0u || mask[b * p.T + j] != 0u);
}

// Fixed-tree reductions over the workgroup. Call from uniform control flow.
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

// Offset of head h's slice of part `which` (0 q, 1 k, 2 v) at token (b, t) in qkv.
fn qkv_at(b: u32, t: u32, which: u32, h: u32) -> u32 {
  return (b * p.T + t) * 3u * p.C + which * p.C + h * p.HS;
}

// Scores, softmax and att @ v for one query row. grid: (T, NH, B)
@compute @workgroup_size(WG)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let lid = lid3.x;
  let T = p.T;
  let row = ((b * p.NH + h) * T + t) * T;
  let q = qkv_at(b, t, 0u, h);
  for (var i = lid; i < p.HS; i += WG) {
    row_vec[i] = qkv[q + i];
  }
  workgroupBarrier();

  // Threads stride over keys. Raw scores of allowed keys go into att; each invocation only rereads
  // its own keys until the storageBarrier.
  var local_max = -3.402823e38;
  var local_count = 0.0;
  for (var j = lid; j <= t; j += WG) {
    if (allowed(b, t, j)) {
      let k = qkv_at(b, j, 1u, h);
      var s = 0.0;
      for (var i = 0u; i < p.HS; i++) {
        s += row_vec[i] * qkv[k + i];
      }
      s *= p.scale;
      att[row + j] = s;
      local_max = max(local_max, s);
      local_count += 1.0;
    }
  }
  let row_max = block_max(local_max, lid);
  let count = block_sum(local_count, lid);
  var local_sum = 0.0;
  for (var j = lid; j <= t; j += WG) {
    if (allowed(b, t, j)) {
      let e = exp(att[row + j] - row_max);
      att[row + j] = e;
      local_sum += e;
    }
  }
  let inv_sum = 1.0 / block_sum(local_sum, lid); // inf when count == 0, then never selected
  let fill = select(0.0, 1.0 / f32(T), count == 0.0 && p.masked_fill == 1u);
  for (var j = lid; j < T; j += WG) {
    att[row + j] = select(fill, att[row + j] * inv_sum, allowed(b, t, j));
  }
  storageBarrier(); // att @ v below reads every invocation's att

  // Threads stride over the head's channels. Keys past t have weight 0 unless the row was filled.
  let key_end = select(t + 1u, T, fill != 0.0);
  for (var i = lid; i < p.HS; i += WG) {
    var acc = 0.0;
    for (var j = 0u; j < key_end; j++) {
      acc += att[row + j] * qkv[qkv_at(b, j, 2u, h) + i];
    }
    out[(b * T + t) * p.C + h * p.HS + i] = acc;
  }
}

// Backward for one query row: dpreatt (the score gradients) and dq. grid: (T, NH, B)
@compute @workgroup_size(WG)
fn attention_backward_query(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let lid = lid3.x;
  let T = p.T;
  let row = ((b * p.NH + h) * T + t) * T;
  let o = (b * T + t) * p.C + h * p.HS;
  for (var i = lid; i < p.HS; i += WG) {
    row_vec[i] = dout[o + i];
  }
  workgroupBarrier();

  // datt for allowed keys, parked in dpreatt; each invocation only rereads its own keys.
  var local_dot = 0.0;
  for (var j = lid; j <= t; j += WG) {
    if (allowed(b, t, j)) {
      let v = qkv_at(b, j, 2u, h);
      var d = 0.0;
      for (var i = 0u; i < p.HS; i++) {
        d += row_vec[i] * qkv[v + i];
      }
      dpreatt[row + j] = d;
      local_dot += att_in[row + j] * d;
    }
  }
  let att_dot_datt = block_sum(local_dot, lid);
  for (var j = lid; j < T; j += WG) {
    var g = 0.0;
    if (allowed(b, t, j)) {
      g = att_in[row + j] * (dpreatt[row + j] - att_dot_datt);
    }
    dpreatt[row + j] = g;
  }
  storageBarrier(); // dq below reads every invocation's dpreatt

  let dq = qkv_at(b, t, 0u, h);
  for (var i = lid; i < p.HS; i += WG) {
    var acc = 0.0;
    for (var j = 0u; j <= t; j++) {
      let g = dpreatt[row + j];
      if (g != 0.0) {
        acc += g * qkv[qkv_at(b, j, 1u, h) + i];
      }
    }
    dqkv[dq + i] += acc * p.scale;
  }
}

// Backward for one key row j: dk and dv, summing over query rows t in increasing order.
// grid: (T, NH, B)
@compute @workgroup_size(WG)
fn attention_backward_key(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let j = wid.x;
  let h = wid.y;
  let b = wid.z;
  let T = p.T;
  let head = (b * p.NH + h) * T * T;
  let dk = qkv_at(b, j, 1u, h);
  let dv = qkv_at(b, j, 2u, h);
  for (var i = lid3.x; i < p.HS; i += WG) {
    var acc_k = 0.0;
    var acc_v = 0.0;
    // dk: rows t >= j where key j is allowed. dv: the same rows, plus any row t < j with the 1/T fill.
    for (var t = 0u; t < T; t++) {
      let a = att_in[head + t * T + j];
      if (a != 0.0) {
        acc_v += a * dout[(b * T + t) * p.C + h * p.HS + i];
      }
      if (allowed(b, t, j)) {
        acc_k += dpreatt_in[head + t * T + j] * qkv[qkv_at(b, t, 0u, h) + i];
      }
    }
    dqkv[dk + i] += acc_k * p.scale;
    dqkv[dv + i] += acc_v;
  }
}

// ---------------------------------------------------------------------------------------------------
// The vec4 kernels (HS % 4 == 0). Offsets below are in vec4s.

const WG_ROWS = 64u;
const LOWEST = -3.402823e38;

// a . b over one head's HS channels: two rows of qkv4 (head_dot), a row of dout4 and one of qkv4
// (head_dot_dout).
fn head_dot(a: u32, b: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < p.HS / 4u; i++) {
    s += dot(qkv4[a + i], qkv4[b + i]);
  }
  return s;
}

fn head_dot_dout(a: u32, b: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < p.HS / 4u; i++) {
    s += dot(dout4[a + i], qkv4[b + i]);
  }
  return s;
}

// Scores, softmax and att @ v for query row t = gid.x. grid: (ceil(T / WG_ROWS), NH, B)
@compute @workgroup_size(WG_ROWS)
fn attention_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let h = gid.y;
  let b = gid.z;
  let T = p.T;
  if (t >= T) {
    return;
  }
  let row = ((b * p.NH + h) * T + t) * T;
  let q = qkv_at(b, t, 0u, h) / 4u;
  // Raw scores of allowed keys go into att, then their exps; an invocation only rereads its own row.
  var row_max = LOWEST;
  var count = 0u;
  for (var j = 0u; j <= t; j++) {
    if (allowed(b, t, j)) {
      let s = head_dot(q, qkv_at(b, j, 1u, h) / 4u) * p.scale;
      att[row + j] = s;
      row_max = max(row_max, s);
      count++;
    }
  }
  var sum = 0.0;
  for (var j = 0u; j <= t; j++) {
    if (allowed(b, t, j)) {
      let e = exp(att[row + j] - row_max);
      att[row + j] = e;
      sum += e;
    }
  }
  let inv_sum = 1.0 / sum; // inf when count == 0, then never selected
  let fill = select(0.0, 1.0 / f32(T), count == 0u && p.masked_fill == 1u);
  for (var j = 0u; j < T; j++) {
    att[row + j] = select(fill, att[row + j] * inv_sum, allowed(b, t, j));
  }
  // Keys past t have weight 0 unless the row was filled.
  let key_end = select(t + 1u, T, fill != 0.0);
  let o = ((b * T + t) * p.C + h * p.HS) / 4u;
  for (var c = 0u; c < p.HS / 4u; c++) {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < key_end; j++) {
      acc += att[row + j] * qkv4[qkv_at(b, j, 2u, h) / 4u + c];
    }
    out4[o + c] = acc;
  }
}

// Backward for query row t = gid.x: dpreatt (the score gradients) and dq.
// grid: (ceil(T / WG_ROWS), NH, B)
@compute @workgroup_size(WG_ROWS)
fn attention_backward_query_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  let h = gid.y;
  let b = gid.z;
  let T = p.T;
  if (t >= T) {
    return;
  }
  let row = ((b * p.NH + h) * T + t) * T;
  let o = ((b * T + t) * p.C + h * p.HS) / 4u;
  // datt for allowed keys, parked in dpreatt.
  var att_dot_datt = 0.0;
  for (var j = 0u; j <= t; j++) {
    if (allowed(b, t, j)) {
      let d = head_dot_dout(o, qkv_at(b, j, 2u, h) / 4u);
      dpreatt[row + j] = d;
      att_dot_datt += att_in[row + j] * d;
    }
  }
  for (var j = 0u; j < T; j++) {
    var g = 0.0;
    if (allowed(b, t, j)) {
      g = att_in[row + j] * (dpreatt[row + j] - att_dot_datt);
    }
    dpreatt[row + j] = g;
  }
  let dq = qkv_at(b, t, 0u, h) / 4u;
  for (var c = 0u; c < p.HS / 4u; c++) {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j <= t; j++) {
      acc += dpreatt[row + j] * qkv4[qkv_at(b, j, 1u, h) / 4u + c];
    }
    dqkv4[dq + c] += acc * p.scale;
  }
}

// Backward for key row j and channels 4c..4c+3, gid.x = j * HS/4 + c: dk and dv, summing over query
// rows t in increasing order. grid: (ceil(T * HS/4 / WG_ROWS), NH, B)
@compute @workgroup_size(WG_ROWS)
fn attention_backward_key_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let HS4 = p.HS / 4u;
  let j = gid.x / HS4;
  let c = gid.x % HS4;
  let h = gid.y;
  let b = gid.z;
  let T = p.T;
  if (j >= T) {
    return;
  }
  let head = (b * p.NH + h) * T * T;
  // dk: the rows t >= j, if key j is not padded (allowed(b, t, j) for every such t).
  var acc_k = vec4<f32>(0.0);
  if (allowed(b, j, j)) {
    for (var t = j; t < T; t++) {
      acc_k += dpreatt_in[head + t * T + j] * qkv4[qkv_at(b, t, 0u, h) / 4u + c];
    }
  }
  // dv: the same rows, plus any row t < j with the 1/T fill.
  var acc_v = vec4<f32>(0.0);
  for (var t = 0u; t < T; t++) {
    let a = att_in[head + t * T + j];
    if (a != 0.0) {
      acc_v += a * dout4[((b * T + t) * p.C + h * p.HS) / 4u + c];
    }
  }
  dqkv4[qkv_at(b, j, 1u, h) / 4u + c] += acc_k * p.scale;
  dqkv4[qkv_at(b, j, 2u, h) / 4u + c] += acc_v;
}
