/**
 * logprobs: log-softmax over the vocabulary of each row of a chunk of logits, gathered at the target
 * ids, with the row's logsumexp and entropy; and its backward. GPT-2's logits (N rows, V = 50257) are
 * made a chunk of rows at a time, so every launcher works on one chunk:
 *
 *   logits  (R, ldV)   rows row0 .. row0+R-1 of the (N, V) logits; V <= ldV columns used per row
 *   targets (N) i32    token ids; negative (transformers' -100) means ignored
 *   logprob (N)        log softmax(z)[target] with z = logits / temperature; 0 where ignored
 *   lse     (N)        logsumexp(z), saved for backward
 *   entropy (N)        H = lse - sum_j softmax(z)_j z_j   (TRL's entropy_from_logits)
 *
 * Per-row arrays are indexed by the global row row0 + r, the logits chunk by r. Backward, for a loss L
 * with dlogprob = dL/dlogprob and dentropy = dL/dH per row, p = softmax(z):
 *   dL/dlogits_j = (dlogprob (onehot_j - p_j) - dentropy p_j (log p_j + H)) / temperature
 * An ignored row's logprob is the constant 0, so its dlogprob term is 0.
 */
import { asView, type Bindable, type View } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import wgslSubgroups from './logprobs-subgroups.wgsl';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './logprobs.wgsl';

/** The shaders' uniform structs (src/gpu/uniforms.ts; logprobs-subgroups.wgsl declares FwdParams too). */
export const FWD_PARAMS = uniformStruct('FwdParams', {
  R: 'u32',
  V: 'u32',
  ldV: 'u32',
  row0: 'u32',
  inv_temperature: 'f32',
});
export const BWD_PARAMS = uniformStruct('BwdParams', {
  R: 'u32',
  V: 'u32',
  ldV: 'u32',
  row0: 'u32',
  inv_temperature: 'f32',
  dlogprob_mode: 'u32',
  dlogprob_const: 'f32',
  has_dentropy: 'u32',
});
import { bestReduction, type Reduction } from './reduction.ts';

export interface LogitsDims {
  /** Rows in this chunk. */
  R: number;
  /** Vocabulary size: the columns used in each row. */
  V: number;
  /** Floats from one row of the logits chunk to the next, >= V (default V). */
  ldV?: number;
  /** Global index of the chunk's first row in the per-row arrays (default 0). GPU launchers only. */
  row0?: number;
  /** The logits are divided by this before the softmax (default 1), as the sampler and TRL's rollout do. */
  temperature?: number;
}

/** Invocations per workgroup (the `WG` override) of the elementwise kernels (backward, simple). */
const WG = 256;

/**
 * Invocations per row (one workgroup) of the forward kernels: a power of two in [64, 256] giving each
 * at least 8 vec4s, so a chunk of few rows over GPT-2's 50257 columns still has enough loads in flight.
 */
export function logprobsRowLanes(V: number): number {
  return Math.min(256, Math.max(64, 2 ** Math.ceil(Math.log2(Math.ceil(V / 4) / 8))));
}

// ---------------------------------------------------------------------------------------------------
// CPU references: plain loops in float64, on one chunk whose per-row arrays all have length R.

export interface LogprobsCpu {
  logprob: Float64Array | null; // (R), null without targets
  lse: Float64Array; // (R)
  entropy: Float64Array; // (R)
}

export function logprobsForwardCpu(
  logits: ArrayLike<number>,
  targets: ArrayLike<number> | null,
  dims: LogitsDims,
): LogprobsCpu {
  const { R, V, ldV, temperature } = resolve(dims);
  const logprob = targets ? new Float64Array(R) : null;
  const lse = new Float64Array(R);
  const entropy = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    const base = r * ldV;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[base + j] / temperature);
    let s = 0;
    let sz = 0; // sum exp(z - m) (z - m)
    for (let j = 0; j < V; j++) {
      const d = logits[base + j] / temperature - m;
      s += Math.exp(d);
      sz += Math.exp(d) * d;
    }
    lse[r] = m + Math.log(s);
    entropy[r] = Math.log(s) - sz / s;
    if (logprob && targets) {
      const t = checkTarget(targets[r], V);
      logprob[r] = t < 0 ? 0 : logits[base + t] / temperature - lse[r];
    }
  }
  return { logprob, lse, entropy };
}

export interface LogprobsBackwardInputs<T> {
  /** (R) token ids; needed with dlogprob. */
  targets: T | null;
  /** (R) from the forward. */
  lse: T;
  /** (R) from the forward; needed with dentropy. */
  entropy: T | null;
  /** (R) dL/dlogprob per row, or one number for every row, or null for no logprob term. */
  dlogprob: T | number | null;
  /** (R) dL/dentropy per row, or null for no entropy term. */
  dentropy: T | null;
}

/** dlogits (R, ldV), padding columns 0. */
export function logprobsBackwardCpu(
  logits: ArrayLike<number>,
  { targets, lse, entropy, dlogprob, dentropy }: LogprobsBackwardInputs<ArrayLike<number>>,
  dims: LogitsDims,
): Float64Array {
  const { R, V, ldV, temperature } = resolve(dims);
  checkTerms(targets, entropy, dlogprob, dentropy);
  const dlogits = new Float64Array(R * ldV);
  for (let r = 0; r < R; r++) {
    const t = targets ? checkTarget(targets[r], V) : -1;
    const dlp = t < 0 || dlogprob === null ? 0 : typeof dlogprob === 'number' ? dlogprob : dlogprob[r];
    const H = entropy && dentropy ? entropy[r] : 0;
    const dH = entropy && dentropy ? dentropy[r] : 0;
    for (let j = 0; j < V; j++) {
      const logp = logits[r * ldV + j] / temperature - lse[r];
      const p = Math.exp(logp);
      const onehot = j === t ? 1 : 0;
      dlogits[r * ldV + j] = (dlp * (onehot - p) - dH * p * (logp + H)) / temperature;
    }
  }
  return dlogits;
}

// ---------------------------------------------------------------------------------------------------
// GPU launchers. The vec4 kernels are used when ldV % 4 == 0; the scalar ones take any ldV.

/**
 * lse and entropy of each row, and with targets the target's logprob (logprob and targets go together).
 * Grid: one workgroup per row. `reduction` picks how the row's partials merge; the subgroup kernels
 * are vec4 only, so a scalar layout always takes the workgroup ones.
 */
export function logprobsForward(
  gpu: Gpu,
  { logprob, lse, entropy }: { logprob: Bindable | null; lse: Bindable; entropy: Bindable },
  { logits, targets }: { logits: Bindable; targets: Bindable | null },
  dims: LogitsDims,
  reduction: Reduction = bestReduction(gpu),
): void {
  const d = resolve(dims);
  if (d.R === 0) return;
  if ((logprob === null) !== (targets === null))
    throw new Error('logprobsForward: logprob and targets go together');
  const rows = [lse, entropy, ...(logprob && targets ? [logprob, targets] : [])];
  rows.forEach((b) => checkRows(b, d));
  const vec4 = vec4Layout(logits, d.ldV);
  const entry = (logprob ? 'logprobs_forward' : 'logsoftmax_forward') + (vec4 ? '_vec4' : '');
  const code = vec4 && reduction === 'subgroups' ? wgslSubgroups : wgsl;
  gpu.dispatch(gpu.pipelines.get(code, entry, { WG: logprobsRowLanes(d.V) }), {
    uniforms: fwdUniforms(d),
    buffers: [lse, entropy, chunk(logits, d), ...rows.slice(2)],
    workgroups: [d.R],
  });
}

/** The simple kernel, one invocation per row: the reference for logprobsForward. */
export function logprobsForwardSimple(
  gpu: Gpu,
  { logprob, lse, entropy }: { logprob: Bindable; lse: Bindable; entropy: Bindable },
  { logits, targets }: { logits: Bindable; targets: Bindable },
  dims: LogitsDims,
): void {
  const d = resolve(dims);
  if (d.R === 0) return;
  [logprob, lse, entropy, targets].forEach((b) => checkRows(b, d));
  gpu.dispatch(gpu.pipelines.get(wgsl, 'logprobs_forward_simple', { WG }), {
    uniforms: fwdUniforms(d),
    buffers: [lse, entropy, chunk(logits, d), logprob, targets],
    workgroups: [Math.ceil(d.R / 64)],
  });
}

export interface LogprobsBackwardArgs extends LogprobsBackwardInputs<Bindable> {
  /** (R, ldV) the chunk the forward read. */
  logits: Bindable;
}

/**
 * dlogits (R, ldV) from dlogprob and/or dentropy: overwritten on columns < V, padding untouched.
 * dlogits may be the logits chunk itself (same buffer and offset): the gradient then replaces the
 * logits in place, which is how the engine avoids a second (R, V) buffer.
 * Grid: (ceil(V / (4 WG)), R), four columns per invocation.
 */
export function logprobsBackward(
  gpu: Gpu,
  { dlogits }: { dlogits: Bindable },
  { logits, targets, lse, entropy, dlogprob, dentropy }: LogprobsBackwardArgs,
  dims: LogitsDims,
): void {
  const d = resolve(dims);
  checkTerms(targets, entropy, dlogprob, dentropy);
  if (d.R === 0) return;
  const dlpBuffer = typeof dlogprob === 'number' ? null : dlogprob;
  [lse, targets, entropy, dlpBuffer, dentropy].forEach((b) => b && checkRows(b, d));
  const out = chunk(dlogits, d);
  const inp = chunk(logits, d);
  const inPlace = out.buffer === inp.buffer && out.offset === inp.offset;
  if (!inPlace && out.buffer === inp.buffer && overlaps(out, inp)) {
    throw new Error('logprobsBackward: dlogits overlaps logits without being the same chunk');
  }
  const vec4 = vec4Layout(dlogits, d.ldV) && vec4Layout(logits, d.ldV);
  const entry = 'logprobs_backward' + (inPlace ? '_inplace' : '') + (vec4 ? '_vec4' : '');
  const mode = dlogprob === null ? 0 : typeof dlogprob === 'number' ? 2 : 1;
  gpu.dispatch(gpu.pipelines.get(wgsl, entry, { WG }), {
    uniforms: BWD_PARAMS.pack({
      R: d.R,
      V: d.V,
      ldV: d.ldV,
      row0: d.row0,
      inv_temperature: 1 / d.temperature,
      dlogprob_mode: mode,
      dlogprob_const: typeof dlogprob === 'number' ? dlogprob : 0,
      has_dentropy: dentropy !== null,
    }),
    // Absent inputs are never read; lse (read-only, always present) is bound in their place.
    buffers: [
      out,
      targets ?? lse,
      lse,
      entropy ?? lse,
      dlpBuffer ?? lse,
      dentropy ?? lse,
      ...(inPlace ? [] : [inp]),
    ],
    workgroups: [Math.ceil(Math.ceil(d.V / 4) / WG), d.R],
  });
}

// ---------------------------------------------------------------------------------------------------

type Resolved = Required<LogitsDims>;

function resolve({ R, V, ldV = V, row0 = 0, temperature = 1 }: LogitsDims): Resolved {
  for (const [k, v] of Object.entries({ R, V, ldV, row0 })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`logits dims: ${k} = ${v} is not a count`);
  }
  if (V < 1 || ldV < V) throw new Error(`logits dims: need 1 <= V <= ldV, got V = ${V}, ldV = ${ldV}`);
  if (!(temperature > 0)) throw new Error(`logits dims: temperature ${temperature} must be > 0`);
  return { R, V, ldV, row0, temperature };
}

function fwdUniforms({ R, V, ldV, row0, temperature }: Resolved): Uint8Array {
  return FWD_PARAMS.pack({ R, V, ldV, row0, inv_temperature: 1 / temperature });
}

function checkTarget(t: number, V: number): number {
  if (t >= V) throw new Error(`target ${t} is outside the vocabulary of ${V}`);
  return t < 0 ? -1 : t;
}

function checkTerms(targets: unknown, entropy: unknown, dlogprob: unknown, dentropy: unknown): void {
  if (dlogprob === null && dentropy === null)
    throw new Error('logprobs backward: no dlogprob and no dentropy');
  if (dlogprob !== null && targets === null) throw new Error('logprobs backward: dlogprob needs targets');
  if (dentropy !== null && entropy === null) throw new Error('logprobs backward: dentropy needs entropy');
}

/** The logits chunk as a view of exactly R * ldV floats. */
export function chunk(b: Bindable, { R, ldV }: { R: number; ldV: number }): View {
  const v = asView(b);
  const size = R * ldV * 4;
  if (v.size < size)
    throw new Error(`logits chunk of ${v.size} bytes is smaller than R * ldV = ${R} * ${ldV}`);
  return { buffer: v.buffer, offset: v.offset, size };
}

/** Throws unless a per-row array covers rows row0 .. row0 + R - 1. */
export function checkRows(b: Bindable, { R, row0 }: { R: number; row0: number }): void {
  if (asView(b).size < (row0 + R) * 4)
    throw new Error(`per-row array of ${asView(b).size} bytes: rows to ${row0 + R}`);
}

function vec4Layout(b: Bindable, ldV: number): boolean {
  return ldV % 4 === 0 && asView(b).offset % 16 === 0;
}

function overlaps(a: View, b: View): boolean {
  return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}
