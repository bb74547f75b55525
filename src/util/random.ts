/**
 * Seeded randomness for everything the engine draws on the CPU (response lengths, minibatch order,
 * weight init, prompt order): mulberry32, a small 32-bit generator; reproducible per seed, not
 * numpy's or torch's stream.
 */
export type Rng = () => number;

/** A generator whose whole state is one uint32, readable and settable (checkpoints save it). */
export interface StatefulRng extends Rng {
  state: number;
}

/** Uniform in [0, 1). The state is the 32-bit counter `a`; setting it resumes the stream exactly. */
export function mulberry32(seed: number): StatefulRng {
  let a = seed >>> 0;
  const next = (() => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as StatefulRng;
  Object.defineProperty(next, 'state', {
    get: () => a,
    set: (s: number) => {
      if (!Number.isInteger(s) || s < 0 || s > 0xffffffff)
        throw new RangeError(`mulberry32 state must be a uint32, got ${s}`);
      a = s;
    },
  });
  return next;
}

/** An integer in [lo, hi) (hi exclusive, like Python's randrange). */
export function randRange(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}

/** Fisher-Yates shuffle in place; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** A shuffled copy. */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  return shuffleInPlace(items.slice(), rng);
}

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

/** A standard normal (Box-Muller). */
export function normal(rng: Rng): number {
  const u = (rng() * 4294967296 + 0.5) / 4294967296;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}
