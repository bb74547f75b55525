// IMDb prompts (src/data/prompts.ts) on test/fixtures/prompts/imdb-sample.parquet: 60 reviews with
// the IMDb train split's schema, written by test/fixtures/scripts/make_prompts_fixture.py.
// Expected values: imdb-sample.json lists the rows Python's `len(text) > 200` keeps (TRL's filter);
// the length rule is TRL's LengthSampler(2, 8) = uniform over 2..7; tokens come from our GPT-2
// encoder (src/model/tokenizer.ts), so "a prefix of the review's tokens" is checked against it.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { decode, encode } from '../../src/model/tokenizer.ts';
import {
  PromptSet,
  TRL_IMDB_PROMPTS,
  codePointLength,
  filterReviews,
  imdbPromptSet,
  readReviews,
  type Prompt,
} from '../../src/data/prompts.ts';
import { PromptFileError } from '../../src/data/parquet-text.ts';
import { mulberry32, randRange } from '../../src/util/random.ts';

const bytes = new Uint8Array(readFileSync('test/fixtures/prompts/imdb-sample.parquet'));
const expected = JSON.parse(readFileSync('test/fixtures/prompts/imdb-sample.json', 'utf8')) as {
  rows: number;
  kept: number[];
};
const tokenizer = { encode, decode };

async function set(seed: number): Promise<PromptSet> {
  return imdbPromptSet(bytes, tokenizer, { ...TRL_IMDB_PROMPTS, seed });
}

describe('IMDb reviews from parquet', () => {
  test('all rows of the text column are read', async () => {
    const reviews = await readReviews(bytes);
    expect(reviews.length).toBe(expected.rows);
    expect(reviews[0]).toMatch(/^\w/);
  });

  test("only reviews longer than 200 code points are kept, as Python's len() counts", async () => {
    const reviews = await readReviews(bytes);
    const kept = filterReviews(reviews, 200);
    expect(kept).toEqual(expected.kept.map((i) => reviews[i]));
    // row 17: 198 code points but 204 UTF-16 units (emoji), out as in Python
    expect(reviews[17].length).toBe(204);
    expect(codePointLength(reviews[17])).toBe(198);
    expect(expected.kept).not.toContain(17);
  });

  test('codePointLength counts surrogate pairs once', () => {
    expect(codePointLength('abc')).toBe(3);
    expect(codePointLength('😀x')).toBe(2);
    expect(codePointLength('\ud800')).toBe(1); // a lone surrogate is one code point in Python too
  });
});

describe('queries', () => {
  test('each query is the first 2..7 GPT-2 tokens of a kept review', async () => {
    const prompts = await set(0);
    expect(prompts.length).toBe(expected.kept.length);
    const seen = new Set<number>();
    for (let i = 0; i < 2 * prompts.length; i++) {
      const p: Prompt = prompts.get(i);
      const review = prompts.reviews[p.review];
      expect(codePointLength(review)).toBeGreaterThan(200);
      const k = prompts.lengths[p.review];
      expect(k).toBeGreaterThanOrEqual(2);
      expect(k).toBeLessThanOrEqual(7);
      expect(p.tokens).toEqual(encode(review).slice(0, k));
      expect(p.tokens.length).toBe(k); // every kept review has more than 7 tokens
      expect(p.text).toBe(decode(p.tokens));
      expect(review.startsWith(p.text ?? '')).toBe(true);
      seen.add(k);
    }
    expect([...seen].sort()).toEqual([2, 3, 4, 5, 6, 7]);
  });

  test('each epoch visits every review once, in a new order; a review keeps its query', async () => {
    const prompts = await set(0);
    const N = prompts.length;
    const e0 = Array.from(prompts.order(0));
    const e1 = Array.from(prompts.order(1));
    expect([...e0].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect([...e1].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(e1).not.toEqual(e0);
    const r = e0[0];
    expect(prompts.get(N + e1.indexOf(r)).tokens).toEqual(prompts.get(0).tokens);
  });

  test('batch(step, B) is queries step*B .. step*B+B-1', async () => {
    const prompts = await set(3);
    const b = prompts.batch(2, 5);
    expect(b.map((p) => p.review)).toEqual([10, 11, 12, 13, 14].map((i) => prompts.get(i).review));
  });

  test('the same seed gives the same prompts; other seeds give others', async () => {
    const take = async (seed: number) => (await set(seed)).batch(0, 20).map((p) => p.tokens.join(' '));
    const a = await take(1);
    expect(await take(1)).toEqual(a);
    expect(await take(2)).not.toEqual(a);
    expect(Array.from((await set(1)).lengths)).not.toEqual(Array.from((await set(2)).lengths));
  });

  test('query lengths are uniform over 2..7 (upper bound exclusive)', () => {
    // 60,000 draws: each count within 5 sigma (sigma = sqrt(n p (1-p)) ~ 91) of n/6 = 10,000.
    const next = mulberry32(42);
    const counts = new Map<number, number>();
    for (let i = 0; i < 60_000; i++) {
      const k = randRange(next, 2, 8);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([2, 3, 4, 5, 6, 7]);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(5 * 91);
  });

  test('bad settings and empty input are errors', () => {
    expect(() => new PromptSet([], tokenizer, TRL_IMDB_PROMPTS)).toThrow(/no reviews/);
    expect(() => new PromptSet(['x'], tokenizer, { ...TRL_IMDB_PROMPTS, maxTokensExclusive: 2 })).toThrow(
      /bad query length range/,
    );
  });
});

describe('wrong files', () => {
  test('not parquet', async () => {
    const csv = new TextEncoder().encode('text,label\nhello,1\n');
    await expect(readReviews(csv, 'train.parquet')).rejects.toThrow(PromptFileError);
    await expect(readReviews(csv, 'train.parquet')).rejects.toThrow(/train.parquet is not a parquet file/);
  });

  test('a parquet file without a text column names its columns', async () => {
    const prompts = new Uint8Array(readFileSync('test/fixtures/prompts/prompts.parquet'));
    await expect(readReviews(prompts, 'x.parquet')).rejects.toThrow(
      "x.parquet has no 'text' or 'review' column; its columns are id, prompt",
    );
  });

  test('an empty file', async () => {
    await expect(readReviews(new Uint8Array(0), 'train.parquet')).rejects.toThrow('train.parquet is empty');
  });
});
