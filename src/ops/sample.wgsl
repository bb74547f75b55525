// Next-token choice per row of a chunk of logits: argmax, or a draw from the filtered softmax.
//
//   logits (R, ldV)  rows of a chunk, V <= ldV columns used
//   ids    (N) i32   the chosen token of row r, written at row0 + r
//   done   (N) u32   *_done entry points: a done row gets pad_id and is not sampled; a row that
//                    draws eos_id becomes done (transformers' unfinished_sequences)
//   given  (N) f32   sample_given: the uniform in [0, 1) of each row, instead of the RNG
//
// Sampling follows transformers' generate: z = logits / temperature, then top-k (keep the tokens whose
// logit is >= the k-th largest), then top-p on the softmax of what top-k kept (keep a token when the
// mass of the kept tokens strictly more probable than it is < top_p), then a draw from the softmax of
// what is left. Every filter keeps a set {j : key_j >= thr} where key is the order-preserving u32 of
// the raw logit (temperature > 0 does not change the order), so no sort is needed: the threshold is
// found by a radix search over the 32 key bits, 2 bits per pass, each pass one read of the row and
// one workgroup reduction of 3 candidate sums. With f(u) = sum of w_j over kept columns with
// key_j > u (w = 1 for top-k, w = exp(z_j - z_max) for top-p), f falls as u grows, and
//   thr = 1 + (the largest u with f(u) >= goal),  goal = top_k, or top_p * (mass kept by top-k).
// Tokens tied at the threshold are all kept or all removed (transformers' top-p splits such ties by
// its sort order). The draw: each invocation owns a contiguous segment of the row; a workgroup scan of
// the segments' kept masses finds the segment where the prefix crosses u * total, and its invocation
// walks it: the token is the first kept column in index order whose inclusive prefix is > u * total.
//
// RNG: u = (pcg3d(row0 + r, step, seed).x >> 8) / 2^24, a counter-based hash (Jarzynski and Olano,
// "Hash Functions for GPU Rendering", JCGT 9(3), 2020), so a draw depends only on (seed, step, row):
// reproducible, independent of R and of which rows are done, nothing uploaded. sample.ts has its twin.

const NONE = 0xffffffffu;

override WG: u32 = 256; // invocations per workgroup; a power of two

struct Params {
  R: u32,
  V: u32,
  ldV: u32,
  row0: u32,
  inv_temperature: f32,
  top_k: u32, // 0 or >= V: off
  top_p: f32, // >= 1: off
  seed: u32,
  step: u32,
  eos_id: i32, // *_done: the id that finishes a row; < 0: none
  pad_id: i32, // *_done: the id a done row gets
  greedy: u32, // sample_simple only: argmax instead of a draw
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;  // (N)
@group(0) @binding(2) var<storage, read> logits: array<f32>;     // (R, ldV)
@group(0) @binding(3) var<storage, read_write> done: array<u32>; // (N), *_done entry points
@group(0) @binding(3) var<storage, read> given: array<f32>;      // (N), sample_given

fn pcg3d(seed: vec3<u32>) -> vec3<u32> {
  var v = seed * 1664525u + 1013904223u;
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v ^= v >> vec3<u32>(16u);
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  return v;
}

// A uniform in [0, 1) on a grid of 2^-24 (exact in f32) for global row n.
fn uniform01(n: u32) -> f32 {
  return f32(pcg3d(vec3<u32>(n, P.step, P.seed)).x >> 8u) * (1.0 / 16777216.0);
}

// Order-preserving map of a float to u32: x < y  <=>  key(x) < key(y) (-0 sorts just below +0).
fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return b ^ select(0x80000000u, 0xffffffffu, (b & 0x80000000u) != 0u);
}

// exp(z_j - z_max) of column value x: in (0, 1], exactly 1 at the max.
fn weight_of(x: f32, xmax: f32) -> f32 {
  return exp((x - xmax) * P.inv_temperature);
}

// --- argmax: the largest logit, the lowest index among ties (torch.argmax) ------------------------

struct Best {
  x: f32,
  i: u32, // NONE: no column seen
}

fn better(a: Best, b: Best) -> Best {
  if (b.i != NONE && (a.i == NONE || b.x > a.x || (b.x == a.x && b.i < a.i))) {
    return b;
  }
  return a;
}

var<workgroup> wg_x: array<f32, WG>;
var<workgroup> wg_i: array<u32, WG>;

// Strided over the row (coalesced), then a tree merge; the result is valid in every invocation.
fn row_argmax(base: u32, lid: u32) -> Best {
  var best = Best(0.0, NONE);
  for (var j = lid; j < P.V; j += WG) {
    best = better(best, Best(logits[base + j], j));
  }
  wg_x[lid] = best.x;
  wg_i[lid] = best.i;
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lid < stride) {
      let m = better(Best(wg_x[lid], wg_i[lid]), Best(wg_x[lid + stride], wg_i[lid + stride]));
      wg_x[lid] = m.x;
      wg_i[lid] = m.i;
    }
  }
  workgroupBarrier();
  let out = Best(wg_x[0], wg_i[0]);
  workgroupBarrier();
  return out;
}

// --- threshold search ------------------------------------------------------------------------------

var<workgroup> wg4: array<vec4<f32>, WG>;

fn sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
  wg4[lid] = v;
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    workgroupBarrier();
    if (lid < stride) {
      wg4[lid] += wg4[lid + stride];
    }
  }
  workgroupBarrier();
  let out = wg4[0];
  workgroupBarrier();
  return out;
}

// The keep threshold of a filter over the columns with key >= lo (the previous filter's threshold):
// count mode (top-k) targets top_k with w = 1; mass mode (top-p) targets top_p * (their mass) with
// w = exp(z - z_max). Each pass settles 2 bits: lanes x, y, z hold f at ans | d << shift for d = 1..3,
// lane w the total f(-1). The invariant f(ans) >= goal holds from ans = 0 (f(0) is the total) on.
fn threshold(base: u32, xmax: f32, lo: u32, mass: bool, lid: u32) -> u32 {
  var ans = 0u;
  for (var shift = 30u; shift < 32u; shift -= 2u) {
    let c = vec3<u32>(ans) | (vec3<u32>(1u, 2u, 3u) << vec3<u32>(shift));
    var acc = vec4<f32>(0.0);
    for (var j = lid; j < P.V; j += WG) {
      let x = logits[base + j];
      let k = key_of(x);
      if (k >= lo) {
        var w = 1.0;
        if (mass) {
          w = weight_of(x, xmax);
        }
        acc += w * vec4<f32>(vec3<f32>(vec3<u32>(k) > c), 1.0);
      }
    }
    let f = sum4(acc, lid);
    let goal = select(f32(P.top_k), P.top_p * f.w, mass);
    let ok = f.xyz >= vec3<f32>(goal); // a prefix of (x, y, z) since f falls
    ans |= (u32(ok.x) + u32(ok.y) + u32(ok.z)) << shift;
  }
  // f(kmax) = 0, so only a goal of 0 (top_p = 0) goes past the max; keep the max then.
  return min(ans, key_of(xmax) - 1u) + 1u;
}

// --- the draw --------------------------------------------------------------------------------------

var<workgroup> wg_scan: array<f32, WG>;
var<workgroup> wg_pick: atomic<u32>;

// The token of the draw u among columns with key >= thr; returned in one invocation, NONE in the rest.
fn draw(base: u32, xmax: f32, thr: u32, u: f32, lid: u32) -> u32 {
  let seg = (P.V + WG - 1u) / WG;
  let j0 = min(lid * seg, P.V);
  let j1 = min(j0 + seg, P.V);
  var mine = 0.0;
  for (var j = j0; j < j1; j++) {
    let x = logits[base + j];
    if (key_of(x) >= thr) {
      mine += weight_of(x, xmax);
    }
  }
  // Inclusive Hillis-Steele scan of the segment masses.
  if (lid == 0u) {
    atomicStore(&wg_pick, 0u);
  }
  wg_scan[lid] = mine;
  for (var off = 1u; off < WG; off <<= 1u) {
    workgroupBarrier();
    var add = 0.0;
    if (lid >= off) {
      add = wg_scan[lid - off];
    }
    workgroupBarrier();
    wg_scan[lid] += add;
  }
  workgroupBarrier();
  var before = 0.0;
  if (lid > 0u) {
    before = wg_scan[lid - 1u];
  }
  let goal = u * wg_scan[WG - 1u];
  // The last non-empty segment that starts at or below the goal (the first non-empty one starts at 0).
  if (mine > 0.0 && before <= goal) {
    atomicMax(&wg_pick, lid);
  }
  workgroupBarrier();
  var id = NONE;
  if (lid == atomicLoad(&wg_pick)) {
    var c = before;
    var last = j0;
    for (var j = j0; j < j1; j++) {
      let x = logits[base + j];
      let e = weight_of(x, xmax);
      if (key_of(x) >= thr && e > 0.0) {
        c += e;
        last = j;
        if (c > goal) {
          id = j;
          break;
        }
      }
    }
    // Rounding can leave the walk short of the goal: the segment's last kept token then.
    if (id == NONE) {
      id = last;
    }
  }
  return id;
}

fn sample_row(r: u32, u: f32, lid: u32) -> u32 {
  let base = r * P.ldV;
  let xmax = row_argmax(base, lid).x;
  var thr = 0u;
  if (P.top_k > 0u && P.top_k < P.V) {
    thr = threshold(base, xmax, 0u, false, lid);
  }
  if (P.top_p < 1.0) {
    thr = threshold(base, xmax, thr, true, lid);
  }
  return draw(base, xmax, thr, u, lid);
}

// --- done rows -------------------------------------------------------------------------------------

var<workgroup> wg_done: u32;

// Whether global row n is done (then its id is set to pad_id); uniform over the workgroup.
fn skip_done(n: u32, lid: u32) -> bool {
  if (lid == 0u) {
    wg_done = done[n];
  }
  let d = workgroupUniformLoad(&wg_done) != 0u;
  if (d && lid == 0u) {
    ids[n] = P.pad_id;
  }
  return d;
}

fn store_done(n: u32, id: u32) {
  ids[n] = i32(id);
  if (i32(id) == P.eos_id) {
    done[n] = 1u;
  }
}

// --- entry points. Grid: (R), one workgroup per row --------------------------------------------------

@compute @workgroup_size(WG)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let best = row_argmax(wid.x * P.ldV, lid);
  if (lid == 0u) {
    ids[P.row0 + wid.x] = i32(best.i);
  }
}

@compute @workgroup_size(WG)
fn argmax_done(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = P.row0 + wid.x;
  if (skip_done(n, lid)) {
    return;
  }
  let best = row_argmax(wid.x * P.ldV, lid);
  if (lid == 0u) {
    store_done(n, best.i);
  }
}

@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = P.row0 + wid.x;
  let id = sample_row(wid.x, uniform01(n), lid);
  if (id != NONE) {
    ids[n] = i32(id);
  }
}

@compute @workgroup_size(WG)
fn sample_done(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = P.row0 + wid.x;
  if (skip_done(n, lid)) {
    return;
  }
  let id = sample_row(wid.x, uniform01(n), lid);
  if (id != NONE) {
    store_done(n, id);
  }
}

@compute @workgroup_size(WG)
fn sample_given(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = P.row0 + wid.x;
  let id = sample_row(wid.x, given[n], lid);
  if (id != NONE) {
    ids[n] = i32(id);
  }
}

// --- the simple kernel, the reference for `sample` and `argmax`: one invocation per row, serial loops,
// a plain bisection over the 32 key bits. Grid: (ceil(R / 64)).

// Sum of w over columns with key > u and key >= lo (w as in `threshold`).
fn serial_sum(base: u32, xmax: f32, lo: u32, u: u32, mass: bool) -> f32 {
  var s = 0.0;
  for (var j = 0u; j < P.V; j++) {
    let x = logits[base + j];
    let k = key_of(x);
    if (k >= lo && k > u) {
      s += select(1.0, weight_of(x, xmax), mass);
    }
  }
  return s;
}

fn serial_threshold(base: u32, xmax: f32, lo: u32, mass: bool) -> u32 {
  let goal = select(f32(P.top_k), P.top_p * serial_sum(base, xmax, lo, 0u, true), mass);
  var ans = 0u;
  for (var bit = 31u; bit < 32u; bit--) {
    let c = ans | (1u << bit);
    if (serial_sum(base, xmax, lo, c, mass) >= goal) {
      ans = c;
    }
  }
  return min(ans, key_of(xmax) - 1u) + 1u;
}

@compute @workgroup_size(64)
fn sample_simple(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= P.R) {
    return;
  }
  let base = r * P.ldV;
  var best = 0u;
  for (var j = 1u; j < P.V; j++) {
    if (logits[base + j] > logits[base + best]) {
      best = j;
    }
  }
  let n = P.row0 + r;
  if (P.greedy != 0u) {
    ids[n] = i32(best);
    return;
  }
  let xmax = logits[base + best];
  var thr = 0u;
  if (P.top_k > 0u && P.top_k < P.V) {
    thr = serial_threshold(base, xmax, 0u, false);
  }
  if (P.top_p < 1.0) {
    thr = serial_threshold(base, xmax, thr, true);
  }
  let goal = uniform01(n) * serial_sum(base, xmax, thr, 0u, true);
  var c = 0.0;
  var id = NONE;
  for (var j = 0u; j < P.V; j++) {
    let x = logits[base + j];
    let e = weight_of(x, xmax);
    if (key_of(x) >= thr && e > 0.0) {
      c += e;
      id = j;
      if (c > goal) {
        break;
      }
    }
  }
  ids[n] = i32(id);
}
