// Log-softmax over the vocabulary, per row of a chunk of logits, and its backward.
//
//   logits  (R, ldV)  rows of a chunk, V <= ldV columns used; z = logits / temperature
//   lse     (N)       logsumexp(z) of each row                       written at row0 + r
//   entropy (N)       H = lse - sum_j softmax(z)_j * z_j              written at row0 + r
//   logprob (N)       z[target] - lse, 0 where the target is ignored   written at row0 + r
//   targets (N)       i32 token ids; outside [0, V) means ignored (transformers' -100)
//
// Forward: one workgroup per row. Each invocation keeps an online (max, sum, weighted sum) over its
// strided share of the row, four columns per step (one pass over the logits); then the WG partials go
// through workgroup memory with a single barrier and invocation 0 merges them in order (a tree would
// cost log2(WG) barriers; logprobs-subgroups.wgsl merges with subgroup operations instead). The sums
// are taken relative to the running max m, so that with s = sum exp(z - m), t = sum exp(z - m) (z - m):
//   lse = m + log(s),  H = log(s) - t / s    (no cancellation between two large numbers)
// Backward, elementwise with p = exp(z - lse), log p = z - lse, 1/temperature from dz/dlogits:
//   d logprob / d z_j = onehot_j - p_j
//   d H / d z_j       = -p_j (log p_j + H)
// Entry points come in pairs: scalar loads for any ldV, and vec4 loads when ldV % 4 == 0 (rows are
// then 16-byte aligned; the last vec4 of a row may reach into the padding, which is read but masked).
// Bindings are per entry point (WGSL allows two variables on one binding if no entry point uses both).

const LOWEST = -3.4028234e38; // the running max before any column: finite, so exp(LOWEST - m) = 0
const IGNORED = 0xffffffffu;

override WG: u32 = 64; // invocations per workgroup; the forward's invocations per row

struct FwdParams {
  R: u32,
  V: u32,
  ldV: u32,
  row0: u32,
  inv_temperature: f32,
}

@group(0) @binding(0) var<uniform> fp: FwdParams;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;      // (N)
@group(0) @binding(2) var<storage, read_write> entropy: array<f32>;  // (N)
@group(0) @binding(3) var<storage, read> logits: array<f32>;         // (R, ldV)
@group(0) @binding(3) var<storage, read> logits4: array<vec4<f32>>;  // (R, ldV / 4)
@group(0) @binding(4) var<storage, read_write> logprob: array<f32>;  // (N)
@group(0) @binding(5) var<storage, read> targets: array<i32>;        // (N)

// Online softmax statistics of a set of columns: m = max z, s = sum exp(z - m), t = sum exp(z - m)(z - m).
struct Stats {
  m: f32,
  s: f32,
  t: f32,
}

// The same statistics expressed relative to a larger max m_new.
fn rescale(a: Stats, m_new: f32) -> Stats {
  let d = a.m - m_new; // <= 0
  let c = exp(d);
  return Stats(m_new, a.s * c, c * (a.t + d * a.s));
}

// Adds four columns; lanes where `valid` is false contribute nothing.
fn add4(a: Stats, z: vec4<f32>, valid: vec4<bool>) -> Stats {
  let zv = select(vec4<f32>(LOWEST), z, valid);
  let r = rescale(a, max(a.m, max(max(zv.x, zv.y), max(zv.z, zv.w))));
  let d = zv - r.m;
  let e = select(vec4<f32>(0.0), exp(d), valid);
  return Stats(r.m, r.s + dot(e, vec4<f32>(1.0)), r.t + dot(e, d));
}

var<workgroup> wg_m: array<f32, WG>;
var<workgroup> wg_s: array<f32, WG>;
var<workgroup> wg_t: array<f32, WG>;

// Merges every invocation's Stats in invocation order: max first, then the rescaled sums (one exp per
// partial). The result is valid in invocation 0 only. Call from uniform control flow.
fn workgroup_merge(mine: Stats, lid: u32) -> Stats {
  wg_m[lid] = mine.m;
  wg_s[lid] = mine.s;
  wg_t[lid] = mine.t;
  workgroupBarrier();
  var st = Stats(LOWEST, 0.0, 0.0);
  if (lid == 0u) {
    for (var i = 0u; i < WG; i++) {
      st.m = max(st.m, wg_m[i]);
    }
    for (var i = 0u; i < WG; i++) {
      let r = rescale(Stats(wg_m[i], wg_s[i], wg_t[i]), st.m);
      st.s += r.s;
      st.t += r.t;
    }
  }
  return st;
}

// Row statistics with scalar loads: invocation lid takes columns 4k..4k+3 for k = lid, lid + WG, ...
fn row_stats(r: u32, lid: u32) -> Stats {
  let base = r * fp.ldV;
  let V = fp.V;
  var st = Stats(LOWEST, 0.0, 0.0);
  for (var j = 4u * lid; j < V; j += 4u * WG) {
    let valid = vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(V);
    // Clamped indices keep the loads in the row; the clamped lanes are masked by `valid`.
    let z = vec4<f32>(
      logits[base + j],
      logits[base + min(j + 1u, V - 1u)],
      logits[base + min(j + 2u, V - 1u)],
      logits[base + min(j + 3u, V - 1u)],
    ) * fp.inv_temperature;
    st = add4(st, z, valid);
  }
  return workgroup_merge(st, lid);
}

// Row statistics with vec4 loads (ldV % 4 == 0).
fn row_stats_vec4(r: u32, lid: u32) -> Stats {
  let base4 = r * (fp.ldV / 4u);
  let V = fp.V;
  var st = Stats(LOWEST, 0.0, 0.0);
  for (var k = lid; 4u * k < V; k += WG) {
    let j = 4u * k;
    let valid = vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(V);
    st = add4(st, logits4[base4 + k] * fp.inv_temperature, valid);
  }
  return workgroup_merge(st, lid);
}

// Writes lse and entropy of row r; returns lse.
fn store_stats(r: u32, st: Stats) -> f32 {
  let log_s = log(st.s);
  let row_lse = st.m + log_s;
  lse[fp.row0 + r] = row_lse;
  entropy[fp.row0 + r] = log_s - st.t / st.s;
  return row_lse;
}

fn target_of(n: u32) -> u32 {
  let t = targets[n];
  return select(IGNORED, u32(t), t >= 0 && u32(t) < fp.V);
}

fn store_logprob(r: u32, row_lse: f32) {
  let n = fp.row0 + r;
  let t = target_of(n);
  if (t == IGNORED) {
    logprob[n] = 0.0;
  } else {
    logprob[n] = logits[r * fp.ldV + t] * fp.inv_temperature - row_lse;
  }
}

fn store_logprob_vec4(r: u32, row_lse: f32) {
  let n = fp.row0 + r;
  let t = target_of(n);
  if (t == IGNORED) {
    logprob[n] = 0.0;
  } else {
    logprob[n] = logits4[r * (fp.ldV / 4u) + t / 4u][t % 4u] * fp.inv_temperature - row_lse;
  }
}

// lse and entropy only (entropy_from_logits). Grid: (R).
@compute @workgroup_size(WG)
fn logsoftmax_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let st = row_stats(wid.x, lid);
  if (lid == 0u) {
    store_stats(wid.x, st);
  }
}

@compute @workgroup_size(WG)
fn logsoftmax_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let st = row_stats_vec4(wid.x, lid);
  if (lid == 0u) {
    store_stats(wid.x, st);
  }
}

// lse, entropy and the target's logprob. Grid: (R).
@compute @workgroup_size(WG)
fn logprobs_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let st = row_stats(wid.x, lid);
  if (lid == 0u) {
    store_logprob(wid.x, store_stats(wid.x, st));
  }
}

@compute @workgroup_size(WG)
fn logprobs_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let st = row_stats_vec4(wid.x, lid);
  if (lid == 0u) {
    store_logprob_vec4(wid.x, store_stats(wid.x, st));
  }
}

// The simple kernel, the reference for the two above: one invocation per row, two plain passes.
// Grid: (ceil(R / 64)).
@compute @workgroup_size(64)
fn logprobs_forward_simple(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= fp.R) {
    return;
  }
  let base = r * fp.ldV;
  var m = LOWEST;
  for (var j = 0u; j < fp.V; j++) {
    m = max(m, logits[base + j] * fp.inv_temperature);
  }
  var s = 0.0;
  var t = 0.0;
  for (var j = 0u; j < fp.V; j++) {
    let d = logits[base + j] * fp.inv_temperature - m;
    let e = exp(d);
    s += e;
    t += e * d;
  }
  store_logprob(r, store_stats(r, Stats(m, s, t)));
}

// ---------------------------------------------------------------------------------------------------
// Backward. dlogits (R, ldV) is overwritten on columns < V; padding columns are left untouched.
// The in-place entry points read the logits from dlogits itself (one binding: WebGPU forbids a
// writable binding that overlaps another binding of the same dispatch).

struct BwdParams {
  R: u32,
  V: u32,
  ldV: u32,
  row0: u32,
  inv_temperature: f32,
  dlogprob_mode: u32, // 0: no logprob term, 1: dlogprob[row0 + r], 2: dlogprob_const for every row
  dlogprob_const: f32,
  has_dentropy: u32,
}

@group(0) @binding(0) var<uniform> bp: BwdParams;
@group(0) @binding(1) var<storage, read_write> dlogits: array<f32>;        // (R, ldV)
@group(0) @binding(1) var<storage, read_write> dlogits4: array<vec4<f32>>; // (R, ldV / 4)
@group(0) @binding(2) var<storage, read> b_targets: array<i32>;            // (N), read in mode 1, 2
@group(0) @binding(3) var<storage, read> b_lse: array<f32>;                // (N)
@group(0) @binding(4) var<storage, read> b_entropy: array<f32>;            // (N), read if has_dentropy
@group(0) @binding(5) var<storage, read> dlogprob: array<f32>;             // (N), read in mode 1
@group(0) @binding(6) var<storage, read> dentropy: array<f32>;             // (N), read if has_dentropy
@group(0) @binding(7) var<storage, read> b_logits: array<f32>;             // (R, ldV), out of place
@group(0) @binding(7) var<storage, read> b_logits4: array<vec4<f32>>;      // (R, ldV / 4), out of place

// What every column of a row needs: gradient = dlp (onehot - p) - dH p (log p + H), times 1/temperature.
struct RowGrad {
  lse: f32,
  H: f32,
  dlp: f32,
  dH: f32,
  tgt: u32,
}

fn row_grad(r: u32) -> RowGrad {
  let n = bp.row0 + r;
  var g = RowGrad(b_lse[n], 0.0, 0.0, 0.0, IGNORED);
  if (bp.dlogprob_mode != 0u) {
    let t = b_targets[n];
    if (t >= 0 && u32(t) < bp.V) {
      g.tgt = u32(t);
      g.dlp = select(bp.dlogprob_const, dlogprob[n], bp.dlogprob_mode == 1u);
    }
  }
  if (bp.has_dentropy != 0u) {
    g.H = b_entropy[n];
    g.dH = dentropy[n];
  }
  return g;
}

// Gradient of columns j..j+3 given their logits x.
fn grad4(x: vec4<f32>, j: u32, g: RowGrad) -> vec4<f32> {
  let logp = x * bp.inv_temperature - g.lse;
  let p = exp(logp);
  let onehot = select(vec4<f32>(0.0), vec4<f32>(g.dlp), vec4<u32>(j, j + 1u, j + 2u, j + 3u) == vec4<u32>(g.tgt));
  return (onehot - g.dlp * p - g.dH * p * (logp + g.H)) * bp.inv_temperature;
}

// Scalar loads/stores. Grid: (ceil(V / (4 WG)), R); invocation i of row r takes columns 4i..4i+3.
@compute @workgroup_size(WG)
fn logprobs_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = 4u * gid.x;
  if (j >= bp.V) {
    return;
  }
  let r = gid.y;
  let base = r * bp.ldV;
  let last = bp.V - 1u;
  let x = vec4<f32>(b_logits[base + j], b_logits[base + min(j + 1u, last)],
                    b_logits[base + min(j + 2u, last)], b_logits[base + min(j + 3u, last)]);
  let d = grad4(x, j, row_grad(r));
  for (var k = 0u; k < 4u && j + k < bp.V; k++) {
    dlogits[base + j + k] = d[k];
  }
}

@compute @workgroup_size(WG)
fn logprobs_backward_inplace(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = 4u * gid.x;
  if (j >= bp.V) {
    return;
  }
  let r = gid.y;
  let base = r * bp.ldV;
  let last = bp.V - 1u;
  let x = vec4<f32>(dlogits[base + j], dlogits[base + min(j + 1u, last)],
                    dlogits[base + min(j + 2u, last)], dlogits[base + min(j + 3u, last)]);
  let d = grad4(x, j, row_grad(r));
  for (var k = 0u; k < 4u && j + k < bp.V; k++) {
    dlogits[base + j + k] = d[k];
  }
}

// vec4 loads/stores (ldV % 4 == 0); the row's last vec4 stores only its columns < V.
fn store_grad4(i: u32, j: u32, d: vec4<f32>) {
  if (j + 4u <= bp.V) {
    dlogits4[i] = d;
  } else {
    for (var k = 0u; j + k < bp.V; k++) {
      dlogits4[i][k] = d[k];
    }
  }
}

@compute @workgroup_size(WG)
fn logprobs_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = 4u * gid.x;
  if (j >= bp.V) {
    return;
  }
  let i = gid.y * (bp.ldV / 4u) + gid.x;
  store_grad4(i, j, grad4(b_logits4[i], j, row_grad(gid.y)));
}

@compute @workgroup_size(WG)
fn logprobs_backward_inplace_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = 4u * gid.x;
  if (j >= bp.V) {
    return;
  }
  let i = gid.y * (bp.ldV / 4u) + gid.x;
  store_grad4(i, j, grad4(dlogits4[i], j, row_grad(gid.y)));
}
