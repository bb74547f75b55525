/**
 * Finite-difference gradient checks for the CPU references, in float64: central differences of a
 * scalar loss against the gradient a backward reference produced.
 */
import { expect } from 'vitest';

/**
 * For each checked index i: (loss(x + h e_i) - loss(x - h e_i)) / 2h must equal grad[i] within
 * `atol + rtol*|grad[i]|`. `loss` reads `x` (perturbed in place and restored). With float64 and
 * h = 1e-6 the central difference is accurate to about 1e-9 for smooth losses of size ~1.
 */
export function expectFiniteDiffGrad(
  loss: () => number,
  x: Float64Array,
  grad: ArrayLike<number>,
  { what, h = 1e-6, atol = 1e-7, rtol = 1e-6 }: { what: string; h?: number; atol?: number; rtol?: number },
): number {
  expect(grad.length, `${what}: gradient length`).toBe(x.length);
  let maxAbsErr = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    const fd = (lp - lm) / (2 * h);
    const err = Math.abs(fd - grad[i]);
    maxAbsErr = Math.max(maxAbsErr, err);
    if (!(err <= atol + rtol * Math.abs(grad[i]))) {
      expect.fail(`${what}[${i}]: backward gives ${grad[i]}, finite difference ${fd} (|err| ${err})`);
    }
  }
  return maxAbsErr;
}

/** sum_i a[i] * b[i] in float64: the loss L = <out, dout> whose gradient w.r.t. out is dout. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A Float64Array of `n` uniform values in [lo, hi) from the seeded generator `next`. */
export function randf64(n: number, next: () => number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * next());
}
