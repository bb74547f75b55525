/**
 * Test helpers: one real WebGPU device per test file (Dawn; SwiftShader where there is no GPU),
 * seeded random data, poisoning of outputs before a kernel runs, and `atol + rtol*|ref|` checks.
 */
import { expect } from 'vitest';
import type { Bindable } from '../../src/gpu/buffers.ts';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { createNodeGpu } from '../../src/gpu/node.ts';
import { mulberry32 } from '../../src/util/random.ts';

let shared: Promise<Gpu> | null = null;

/** The file's device. Logs the adapter once so test output names what the kernels ran on. */
export function testGpu(): Promise<Gpu> {
  shared ??= createNodeGpu().then((gpu) => {
    console.log(`[webgpu] adapter: ${adapterName(gpu.adapter)}`);
    return gpu;
  });
  return shared;
}

/** Seeded uniform floats in [0, 1) for test data (the engine's own generator). */
export const rng = mulberry32;

/** `n` uniform floats in [lo, hi) from `seed`. */
export function randn(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Fills a buffer with NaN, so a kernel that skips an element cannot pass on stale or zero memory. */
export function poison(gpu: Gpu, target: Bindable, bytes: number): void {
  gpu.write(target, new Float32Array(Math.ceil(bytes / 4)).fill(NaN));
}

export interface Closeness {
  maxAbsErr: number;
  worstIndex: number;
}

/** Every element within `atol + rtol*|expected|`; NaN anywhere fails. Returns the worst error. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-5, what = 'values' }: { atol?: number; rtol?: number; what?: string } = {},
): Closeness {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let maxAbsErr = 0;
  let worstIndex = -1;
  let firstBad = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const ok = err <= atol + rtol * Math.abs(expected[i]); // false for NaN
    if (!ok && firstBad < 0) firstBad = i;
    if (!(err <= maxAbsErr)) {
      maxAbsErr = Number.isNaN(err) ? Infinity : err;
      worstIndex = i;
    }
  }
  if (firstBad >= 0) {
    expect.fail(
      `${what}: element ${firstBad} is ${actual[firstBad]}, expected ${expected[firstBad]} ` +
        `(atol ${atol}, rtol ${rtol}); max |err| ${maxAbsErr} at ${worstIndex}`,
    );
  }
  return { maxAbsErr, worstIndex };
}
