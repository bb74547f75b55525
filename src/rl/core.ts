/**
 * TRL 0.9.6 `trl/core.py` helpers as pure functions over flat row-major arrays.
 *
 * Layout: a [B, T] tensor is a flat array of B*T numbers, element (b, t) at b*T + t; a [N, V]
 * tensor (N rows of V logits) has element (n, v) at n*V + v. Inputs may be Float32Array,
 * Float64Array or number[]; results are Float64Array (float64 arithmetic throughout, so that
 * GPU read-backs in float32 lose nothing more here).
 *
 * Masks are 0/1 and multiply, exactly as TRL: `masked_mean` is sum(x*m)/sum(m), so a NaN or
 * infinity under a 0 mask still poisons the result, as it does in PyTorch.
 */

/** Any flat numeric array: Float32Array, Float64Array or number[]. */
export type NumArray = ArrayLike<number>;

/** Throws unless `arr` holds exactly `n` numbers; `what` names the argument and its shape. */
export function checkLength(what: string, arr: NumArray, n: number): void {
  if (arr.length !== n) throw new Error(`${what}: expected ${n} numbers, got ${arr.length}`);
}

/** Copies any numeric array into a new Float64Array. */
export function toF64(arr: NumArray): Float64Array {
  return Float64Array.from(arr);
}

/** masked_mean(values, mask): sum(values*mask) / sum(mask) over all elements. */
export function maskedMean(values: NumArray, mask: NumArray): number {
  checkLength('maskedMean mask', mask, values.length);
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i] * mask[i];
    n += mask[i];
  }
  return s / n;
}

/** masked_mean(values, mask, axis=-1) on [B, T]: one mean per row, [B]. */
export function maskedMeanRows(
  values: NumArray,
  mask: NumArray,
  { B, T }: { B: number; T: number },
): Float64Array {
  checkLength('maskedMeanRows values [B,T]', values, B * T);
  checkLength('maskedMeanRows mask [B,T]', mask, B * T);
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      s += values[b * T + t] * mask[b * T + t];
      n += mask[b * T + t];
    }
    out[b] = s / n;
  }
  return out;
}

/**
 * masked_var(values, mask, unbiased): masked mean of squared deviations from the masked mean,
 * times sum(m)/(sum(m)-1) when unbiased (Bessel). Throws when sum(mask) is 0, as TRL does; with
 * sum(mask) == 1 the unbiased variance is NaN (0 * 1/0), also as in TRL.
 */
export function maskedVar(values: NumArray, mask: NumArray, unbiased = true): number {
  const mean = maskedMean(values, mask);
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const d = values[i] - mean;
    s += d * d * mask[i];
    n += mask[i];
  }
  let variance = s / n;
  if (unbiased) {
    if (n === 0) {
      throw new Error(
        'maskedVar: the sum of the mask is zero, which can happen when mini_batch_size=1; ' +
          'increase mini_batch_size or gradient_accumulation_steps',
      );
    }
    variance *= n / (n - 1);
  }
  return variance;
}

/**
 * masked_whiten(values, mask, shift_mean): (x - mean) / sqrt(var + 1e-8) with the masked mean and
 * unbiased masked variance, over every element (masked-out ones are transformed too). With
 * shiftMean false the mean is added back: only the scale changes.
 */
export function maskedWhiten(values: NumArray, mask: NumArray, { shiftMean = true } = {}): Float64Array {
  const mean = maskedMean(values, mask);
  const rstd = 1 / Math.sqrt(maskedVar(values, mask) + 1e-8);
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    out[i] = (values[i] - mean) * rstd + (shiftMean ? 0 : mean);
  }
  return out;
}

/** whiten(values, shift_mean): like maskedWhiten with every element counted (torch.var is unbiased). */
export function whiten(values: NumArray, { shiftMean = true } = {}): Float64Array {
  return maskedWhiten(values, new Float64Array(values.length).fill(1), { shiftMean });
}

/**
 * clip_by_value(x, min, max) = max(min(x, max), min), elementwise; `min` and `max` are arrays of
 * x's length or scalars. When min > max the result is min, as in TRL.
 */
export function clipByValue(x: NumArray, min: NumArray | number, max: NumArray | number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const hi = typeof max === 'number' ? max : max[i];
    const lo = typeof min === 'number' ? min : min[i];
    out[i] = Math.max(Math.min(x[i], hi), lo);
  }
  return out;
}

/** log-sum-exp of row n of a [N, V] array, shifted by the row max for stability. */
function rowLogSumExp(logits: NumArray, n: number, V: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, logits[n * V + v]);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[n * V + v] - m);
  return m + Math.log(s);
}

/** entropy_from_logits: logsumexp(z) - sum(softmax(z) * z) per row of [N, V] logits; [N]. */
export function entropyFromLogits(logits: NumArray, { N, V }: { N: number; V: number }): Float64Array {
  checkLength('entropyFromLogits logits [N,V]', logits, N * V);
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const lse = rowLogSumExp(logits, n, V);
    let pz = 0;
    for (let v = 0; v < V; v++) pz += Math.exp(logits[n * V + v] - lse) * logits[n * V + v];
    out[n] = lse - pz;
  }
  return out;
}

/** log_softmax over the last axis of [N, V] logits: logprobs_from_logits(..., gather=False). */
export function logSoftmax(logits: NumArray, { N, V }: { N: number; V: number }): Float64Array {
  checkLength('logSoftmax logits [N,V]', logits, N * V);
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const lse = rowLogSumExp(logits, n, V);
    for (let v = 0; v < V; v++) out[n * V + v] = logits[n * V + v] - lse;
  }
  return out;
}

/** logprobs_from_logits(logits, labels): log_softmax(z)[n, labels[n]] for [N, V] logits; [N]. */
export function logprobsFromLogits(
  logits: NumArray,
  labels: NumArray,
  { N, V }: { N: number; V: number },
): Float64Array {
  checkLength('logprobsFromLogits logits [N,V]', logits, N * V);
  checkLength('logprobsFromLogits labels [N]', labels, N);
  const out = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const label = labels[n];
    if (!Number.isInteger(label) || label < 0 || label >= V) {
      throw new Error(`logprobsFromLogits: label ${label} at row ${n} is outside [0, ${V})`);
    }
    out[n] = logits[n * V + label] - rowLogSumExp(logits, n, V);
  }
  return out;
}

/** A nested record of leaves, as TRL's stats dicts before flatten_dict. */
export interface Nested<L> {
  [key: string]: L | Nested<L>;
}

/**
 * flatten_dict(nested, sep): {a: {b: 1}} -> {'a/b': 1}. Throws if a key contains `sep`, as TRL.
 * `isLeaf` tells leaves from sub-records (TRL checks for Mapping).
 */
export function flattenDict<L>(
  nested: Nested<L>,
  isLeaf: (x: L | Nested<L>) => x is L,
  sep = '/',
): Record<string, L> {
  const flat: Record<string, L> = {};
  const recurse = (nest: Nested<L>, prefix: string): void => {
    for (const [k, v] of Object.entries(nest)) {
      if (k.includes(sep)) throw new Error(`flattenDict: separator '${sep}' not allowed in key '${k}'`);
      if (isLeaf(v)) flat[prefix + k] = v;
      else recurse(v, prefix + k + sep);
    }
  };
  recurse(nested, '');
  return flat;
}

/** Mean of an array (torch.mean); NaN when empty. */
export function mean(x: NumArray): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

/** Standard deviation with Bessel's correction (torch.std default); NaN for fewer than 2 numbers. */
export function stdUnbiased(x: NumArray): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) * (x[i] - m);
  return Math.sqrt(s / (x.length - 1));
}
