// logprobs.wgsl's vec4 forward kernels (ldV % 4 == 0) with the per-row merge done by subgroup
// operations, for devices with the 'subgroups' feature. Same shapes, bindings and maths:
//
//   logits  (R, ldV)  rows of a chunk, V <= ldV columns used; z = logits / temperature
//   lse     (N)       logsumexp(z) of each row                       written at row0 + r
//   entropy (N)       H = lse - sum_j softmax(z)_j * z_j              written at row0 + r
//   logprob (N)       z[target] - lse, 0 where the target is ignored   written at row0 + r
//   targets (N)       i32 token ids; outside [0, V) means ignored (transformers' -100)
//
// One workgroup per row; each invocation keeps online statistics (m = max z, s = sum exp(z - m),
// t = sum exp(z - m)(z - m)) over its strided share of the row. The WG partials go to workgroup memory
// (one barrier); lane k of each subgroup takes partials k, k + n, k + 2n, ... (n = the subgroup's
// invocation count): the row max by subgroupMax of the lanes' maxes, then the partials' sums rescaled
// to it, added by subgroupAdd. This assumes
// nothing about which invocations share a subgroup (WGSL does not say), only that the lanes' subgroup
// ids are 0..n-1 (https://github.com/gpuweb/gpuweb/pull/5520).

enable subgroups;

const LOWEST = -3.4028234e38; // the running max before any column: finite, so exp(LOWEST - m) = 0

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
@group(0) @binding(3) var<storage, read> logits4: array<vec4<f32>>;  // (R, ldV / 4)
@group(0) @binding(4) var<storage, read_write> logprob: array<f32>;  // (N)
@group(0) @binding(5) var<storage, read> targets: array<i32>;        // (N)

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

// Row statistics, valid in every invocation. Call from uniform control flow.
fn row_stats_vec4(r: u32, lid: u32, sid: u32) -> Stats {
  let base4 = r * (fp.ldV / 4u);
  let V = fp.V;
  var st = Stats(LOWEST, 0.0, 0.0);
  for (var k = lid; 4u * k < V; k += WG) {
    let j = 4u * k;
    let valid = vec4<u32>(j, j + 1u, j + 2u, j + 3u) < vec4<u32>(V);
    st = add4(st, logits4[base4 + k] * fp.inv_temperature, valid);
  }
  wg_m[lid] = st.m;
  wg_s[lid] = st.s;
  wg_t[lid] = st.t;
  workgroupBarrier();
  // The row max first, so that each partial costs one exp.
  let n = subgroupAdd(1u);
  var m = LOWEST;
  for (var i = sid; i < WG; i += n) {
    m = max(m, wg_m[i]);
  }
  m = subgroupMax(m);
  var part = Stats(m, 0.0, 0.0);
  for (var i = sid; i < WG; i += n) {
    let r = rescale(Stats(wg_m[i], wg_s[i], wg_t[i]), m);
    part.s += r.s;
    part.t += r.t;
  }
  return Stats(m, subgroupAdd(part.s), subgroupAdd(part.t));
}

// Writes lse and entropy of row r; returns lse.
fn store_stats(r: u32, st: Stats) -> f32 {
  let log_s = log(st.s);
  let row_lse = st.m + log_s;
  lse[fp.row0 + r] = row_lse;
  entropy[fp.row0 + r] = log_s - st.t / st.s;
  return row_lse;
}

fn store_logprob_vec4(r: u32, row_lse: f32) {
  let n = fp.row0 + r;
  let t = targets[n];
  if (t >= 0 && u32(t) < fp.V) {
    let tu = u32(t);
    logprob[n] = logits4[r * (fp.ldV / 4u) + tu / 4u][tu % 4u] * fp.inv_temperature - row_lse;
  } else {
    logprob[n] = 0.0;
  }
}

// lse and entropy only (entropy_from_logits). Grid: (R).
@compute @workgroup_size(WG)
fn logsoftmax_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                           @builtin(subgroup_invocation_id) sid: u32) {
  let st = row_stats_vec4(wid.x, lid, sid);
  if (lid == 0u) {
    store_stats(wid.x, st);
  }
}

// lse, entropy and the target's logprob. Grid: (R).
@compute @workgroup_size(WG)
fn logprobs_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
                         @builtin(subgroup_invocation_id) sid: u32) {
  let st = row_stats_vec4(wid.x, lid, sid);
  if (lid == 0u) {
    store_logprob_vec4(wid.x, store_stats(wid.x, st));
  }
}
