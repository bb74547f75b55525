/**
 * Our seeded random numbers for data: mulberry32 streams seeded through a splitmix32-style hash.
 * Not numpy's Mersenne Twister: a seed here does not reproduce TRL's numpy draws, only our own.
 */

/** Mixes integers into one 32-bit seed (splitmix32 finalizer per part), so (seed, stream) pairs differ. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = (h + Math.imul((p | 0) ^ 0x85ebca6b, 0x9e3779b9)) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform integer in [lo, hi) (hi exclusive, like numpy's `choice(range(lo, hi))`). */
export function randInt(next: () => number, lo: number, hi: number): number {
  return lo + Math.floor(next() * (hi - lo));
}

/** Fisher-Yates shuffle in place; returns `a`. */
export function shuffleInPlace<T>(a: T[], next: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
