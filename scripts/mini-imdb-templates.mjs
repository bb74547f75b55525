/**
 * mini-IMDb's review templates (scripts/make_demo_models.py, ../shared/reference/torch_dpo.py): an
 * opening, then 2-4 clauses "the NOUN was ADJ" of one sentiment. Seeded (mulberry32), so the check
 * scripts' data repeat per seed.
 */
export const POS = [
  'great',
  'wonderful',
  'brilliant',
  'moving',
  'beautiful',
  'superb',
  'delightful',
  'excellent',
  'charming',
  'funny',
];
export const NEG = [
  'awful',
  'boring',
  'terrible',
  'dull',
  'painful',
  'weak',
  'stupid',
  'bad',
  'lifeless',
  'predictable',
];
export const NOUN = [
  'acting',
  'plot',
  'story',
  'script',
  'music',
  'ending',
  'cast',
  'direction',
  'photography',
  'pacing',
];
export const OPEN = [
  'This movie was',
  'I rented this film because',
  'The acting in this',
  'What a',
  'Honestly, the plot',
  'My favourite scene',
  'I went to see this',
  'The director of this',
  'After ten minutes',
  'This is one of those films',
];

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** " the NOUN was ADJ, the NOUN was ADJ." with 2-4 clauses of `words`. */
export function body(rng, words) {
  const pick = (xs) => xs[Math.floor(rng() * xs.length)];
  const n = 2 + Math.floor(rng() * 3);
  const parts = Array.from({ length: n }, () => `the ${pick(NOUN)} was ${pick(words)}`);
  return ' ' + parts.map((p, i) => p + (i < n - 1 ? ',' : '.')).join(' ');
}

/** n preference pairs: an opening, a positive review body as chosen, a negative one as rejected. */
export function preferencePairs(n, seed) {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => ({
    prompt: OPEN[Math.floor(rng() * OPEN.length)],
    chosen: body(rng, POS),
    rejected: body(rng, NEG),
  }));
}

export function jsonl(rows) {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}
