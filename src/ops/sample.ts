/**
 * sample: the next token of each row of a chunk of logits, chosen on the GPU so that only the ids
 * come back to the CPU. Greedy is argmax (the lowest index among ties, as torch.argmax); sampling is
 * transformers' generate with do_sample: temperature, then top-k, then top-p, then a multinomial draw.
 *
 *   logits   (R, ldV)  rows row0 .. row0+R-1 of the (N, V) next-token logits; V <= ldV columns used
 *   ids      (N) i32   the chosen token of each row, written at row0 + r
 *   done     (N) u32   optional: a done row (done != 0) gets padId and is not sampled; a row that
 *                      chooses eosId is marked done (transformers' unfinished_sequences), so a batch
 *                      can generate many steps without the CPU looking at the ids
 *   uniforms (N) f32   optional: the draw of each row in [0, 1), instead of the RNG (for tests; not
 *                      together with done)
 *
 * What is kept, in transformers' terms (TopKLogitsWarper, TopPLogitsWarper, min_tokens_to_keep = 1):
 *   top-k  (topK > 0)  the tokens whose logit is >= the k-th largest logit (ties at the k-th all kept)
 *   top-p  (topP < 1)  with p = softmax(logits / temperature) over what top-k kept, a token stays when
 *                      the mass of the kept tokens with a larger logit is < topP; the most probable
 *                      token always stays. transformers removes, in ascending order, the tokens whose
 *                      cumulative probability is <= 1 - topP: the same set except that tokens tied at
 *                      the boundary are kept or removed together here, where its sort splits them.
 * The draw: with u in [0, 1), the first kept token in index order whose inclusive prefix sum of
 * exp(z - z_max) exceeds u times the kept total (on the GPU in f32: a token whose weight underflows,
 * below ~1e-38 of the most likely one, is never drawn).
 *
 * The RNG is counter based: u = (pcg3d(row0 + r, step, seed).x >> 8) / 2^24 (Jarzynski and Olano,
 * "Hash Functions for GPU Rendering", JCGT 2020). A row's draw depends only on (seed, step, global
 * row): runs repeat per seed, and the chunking of rows or done rows do not change other rows' draws.
 * `sampleUniform` is its CPU twin, so `sampleCpu` given those uniforms picks what the GPU picks (up to
 * f32 rounding at a boundary between two tokens' intervals).
 */
import type { Bindable } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { checkRows, chunk } from './logprobs.ts';
import { uniformStruct } from '../gpu/uniforms.ts';
import wgsl from './sample.wgsl';

/** The shader's uniform struct (src/gpu/uniforms.ts). */
export const PARAMS = uniformStruct('Params', {
  R: 'u32',
  V: 'u32',
  ldV: 'u32',
  row0: 'u32',
  inv_temperature: 'f32',
  top_k: 'u32',
  top_p: 'f32',
  seed: 'u32',
  step: 'u32',
  eos_id: 'i32',
  pad_id: 'i32',
  greedy: 'u32',
});

export interface SampleOptions {
  /** Rows in this chunk. */
  R: number;
  /** Vocabulary size: the columns used in each row. */
  V: number;
  /** Floats from one row of the logits chunk to the next, >= V (default V). */
  ldV?: number;
  /** Global index of the chunk's first row in ids, done and uniforms, and in the RNG (default 0). */
  row0?: number;
  /** argmax instead of a draw; temperature, topK and topP are then ignored (default false). */
  greedy?: boolean;
  /** Logits are divided by this before the softmax, > 0 (default 1). */
  temperature?: number;
  /** Keep the topK most likely tokens; 0 = off (default 0, as TRL's generation kwargs). */
  topK?: number;
  /** Nucleus mass in [0, 1]; 1 = off (default 1). */
  topP?: number;
  /** RNG key, u32 (default 0). */
  seed?: number;
  /** RNG counter, u32: the generation step (default 0). */
  step?: number;
  /** With `done`: the id that finishes a row; -1 = none (default -1). */
  eosId?: number;
  /** With `done`: the id a done row gets (default 0). */
  padId?: number;
}

type Resolved = Required<SampleOptions>;

function resolve(o: SampleOptions): Resolved {
  const r: Resolved = {
    R: o.R,
    V: o.V,
    ldV: o.ldV ?? o.V,
    row0: o.row0 ?? 0,
    greedy: o.greedy ?? false,
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    seed: o.seed ?? 0,
    step: o.step ?? 0,
    eosId: o.eosId ?? -1,
    padId: o.padId ?? 0,
  };
  for (const k of ['R', 'V', 'ldV', 'row0', 'topK', 'seed', 'step'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 0 || r[k] > 0xffffffff)
      throw new Error(`sample: ${k} = ${r[k]} is not a u32`);
  }
  if (r.V < 1 || r.ldV < r.V) throw new Error(`sample: need 1 <= V <= ldV, got V = ${r.V}, ldV = ${r.ldV}`);
  if (!(r.temperature > 0)) throw new Error(`sample: temperature ${r.temperature} must be > 0`);
  if (!(r.topP >= 0 && r.topP <= 1)) throw new Error(`sample: topP ${r.topP} is outside [0, 1]`);
  for (const k of ['eosId', 'padId'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < -1 || r[k] >= 2 ** 31) throw new Error(`sample: ${k} = ${r[k]}`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// The RNG's CPU twin.

/** pcg3d of Jarzynski and Olano (2020) on u32 lanes, as sample.wgsl computes it. */
export function pcg3d(a: number, b: number, c: number): [number, number, number] {
  let x = (Math.imul(a, 1664525) + 1013904223) >>> 0;
  let y = (Math.imul(b, 1664525) + 1013904223) >>> 0;
  let z = (Math.imul(c, 1664525) + 1013904223) >>> 0;
  x = (x + Math.imul(y, z)) >>> 0;
  y = (y + Math.imul(z, x)) >>> 0;
  z = (z + Math.imul(x, y)) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  y = (y ^ (y >>> 16)) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  x = (x + Math.imul(y, z)) >>> 0;
  y = (y + Math.imul(z, x)) >>> 0;
  z = (z + Math.imul(x, y)) >>> 0;
  return [x, y, z];
}

/** The uniform in [0, 1) the GPU draws global row `row` with at (seed, step). */
export function sampleUniform(seed: number, step: number, row: number): number {
  return (pcg3d(row, step, seed)[0] >>> 8) / 16777216;
}

// ---------------------------------------------------------------------------------------------------
// CPU references: float64, sorting, one row at a time; rows of `logits` are ldV apart.

/** First index of the largest value of row[0 .. V). */
function argmaxRow(row: ArrayLike<number>, V: number): number {
  let best = 0;
  for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
  return best;
}

/**
 * exp(z_j - z_max) of the tokens of one row (V logits) kept by top-k and top-p, 0 for the removed ones,
 * z = logits / temperature: the sampling distribution before normalisation. Built the transformers
 * way, by sorting.
 */
export function keptWeightsRow(
  row: ArrayLike<number>,
  opts: Pick<SampleOptions, 'V' | 'temperature' | 'topK' | 'topP'>,
): Float64Array {
  const { V, temperature, topK, topP } = resolve({ ...opts, R: 1 });
  const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => row[b] - row[a]); // descending
  const xmax = row[order[0]];
  const w = new Float64Array(V);
  let kept = V;
  if (topK > 0 && topK < V) {
    const kth = row[order[topK - 1]];
    while (row[order[kept - 1]] < kth) kept--;
  }
  let total = 0;
  for (let i = 0; i < kept; i++) total += Math.exp((row[order[i]] - xmax) / temperature);
  if (topP < 1) {
    // Whole groups of equal logits: a group stays while the mass above it is < topP.
    let above = 0;
    let i = 0;
    while (i < kept && (i === 0 || above / total < topP)) {
      const x = row[order[i]];
      while (i < kept && row[order[i]] === x) above += Math.exp((row[order[i++]] - xmax) / temperature);
    }
    kept = i;
  }
  for (let i = 0; i < kept; i++) w[order[i]] = Math.exp((row[order[i]] - xmax) / temperature);
  return w;
}

/**
 * The id each row chooses: argmax when greedy, else the draw of `uniforms[r]` (default: the RNG's
 * sampleUniform(seed, step, row0 + r)) from keptWeightsRow.
 */
export function sampleCpu(
  logits: ArrayLike<number>,
  opts: SampleOptions,
  uniforms: ArrayLike<number> | null = null,
): Int32Array {
  const o = resolve(opts);
  const ids = new Int32Array(o.R);
  for (let r = 0; r < o.R; r++) {
    const row = Float64Array.from({ length: o.V }, (_, j) => logits[r * o.ldV + j]);
    if (o.greedy) {
      ids[r] = argmaxRow(row, o.V);
      continue;
    }
    const w = keptWeightsRow(row, o);
    const u = uniforms ? uniforms[r] : sampleUniform(o.seed, o.step, o.row0 + r);
    const target = u * w.reduce((a, b) => a + b, 0);
    let c = 0;
    let id = -1;
    for (let j = 0; j < o.V && !(c > target); j++) {
      if (w[j] > 0) {
        c += w[j];
        id = j;
      }
    }
    ids[r] = id;
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------------
// GPU launchers.

/**
 * Invocations per workgroup: 256 for GPT-2's vocabulary; for a small one (tests), about V / 8 so that
 * few idle and the ~200 workgroup barriers of a filtered draw stay cheap (at least 4).
 */
export function workgroupSize(V: number): number {
  return Math.min(256, Math.max(4, 2 ** Math.ceil(Math.log2(Math.ceil(V / 8)))));
}

function uniformsOf(o: Resolved): Uint8Array {
  return PARAMS.pack({
    R: o.R,
    V: o.V,
    ldV: o.ldV,
    row0: o.row0,
    inv_temperature: 1 / o.temperature,
    top_k: o.topK,
    top_p: o.topP,
    seed: o.seed,
    step: o.step,
    eos_id: o.eosId,
    pad_id: o.padId,
    greedy: o.greedy,
  });
}

/**
 * ids[row0 + r] for each row of the chunk: argmax, or a draw (RNG, or `uniforms` when given). With
 * `done`, done rows get padId and rows that choose eosId are marked done. ids, done and logits must
 * be distinct buffers (WebGPU forbids a writable binding aliasing another). Grid: one workgroup per row.
 * Cost of a draw: 2 reads of the row with top-k and top-p off, 16 more for each of them that is on.
 */
export function sampleForward(
  gpu: Gpu,
  { ids, done = null }: { ids: Bindable; done?: Bindable | null },
  { logits, uniforms = null }: { logits: Bindable; uniforms?: Bindable | null },
  opts: SampleOptions,
): void {
  const o = resolve(opts);
  if (o.R === 0) return;
  if (done && uniforms) throw new Error('sampleForward: done and uniforms together are not supported');
  [ids, done, uniforms].forEach((b) => b && checkRows(b, o));
  // Binding 3 of sample.wgsl is `done` or `given`; greedy reads no uniforms.
  const third = o.greedy ? done : (uniforms ?? done);
  const entry = (o.greedy ? 'argmax' : uniforms ? 'sample_given' : 'sample') + (done ? '_done' : '');
  gpu.dispatch(gpu.pipelines.get(wgsl, entry, { WG: workgroupSize(o.V) }), {
    uniforms: uniformsOf(o),
    buffers: [ids, chunk(logits, o), ...(third ? [third] : [])],
    workgroups: [o.R],
  });
}

/** The simple kernel, one invocation per row and serial loops: the reference for sampleForward. */
export function sampleForwardSimple(
  gpu: Gpu,
  { ids }: { ids: Bindable },
  { logits }: { logits: Bindable },
  opts: SampleOptions,
): void {
  const o = resolve(opts);
  if (o.R === 0) return;
  checkRows(ids, o);
  gpu.dispatch(gpu.pipelines.get(wgsl, 'sample_simple'), {
    uniforms: uniformsOf(o),
    buffers: [ids, chunk(logits, o)],
    workgroups: [Math.ceil(o.R / 64)],
  });
}
