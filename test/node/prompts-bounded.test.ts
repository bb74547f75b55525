/**
 * Queries read a bounded prefix of each prompt (src/model/tokenizer.ts encodePrefix; PromptSet
 * encodes each review once).
 *
 * Exactness: encodePrefix(text, n) must equal encode(text).slice(0, n), the full encoding's first
 * ids, whenever no pre-token is longer than maxRun. Checked on the fixture prompts and on random
 * texts built from GPT-2's awkward pieces (whitespace runs, "<|endoftext|>", contractions, digits,
 * an emoji's surrogate pair) with a 40-character window, so the cut falls inside each of them.
 *
 * Time: a 1 MB and a 50 MB line without whitespace (one pre-token each; the full BPE of 1 MB took
 * over 120 s) must give their first ids within a child process's time limit, so a regression
 * fails instead of hanging the suite.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, test } from 'vitest';
import { PromptSet } from '../../src/data/prompts.ts';
import { decode, encode, encodePrefix } from '../../src/model/tokenizer.ts';
import { mulberry32 } from '../../src/util/random.ts';

const PIECES = [
  'a',
  'bc',
  ' the',
  ' ',
  '  ',
  '\n',
  '\n\n',
  '<|endoftext|>',
  "'s",
  "'ll",
  '12',
  '345',
  '!!',
  ' ?',
  'é',
  '😀',
  'x',
];
const PRE_TOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

describe('encodePrefix', () => {
  test('equals the first ids of the full encoding on the fixture prompts', () => {
    const prompts = readFileSync('test/fixtures/prompts/prompts.txt', 'utf8').split('\n');
    for (const text of prompts)
      for (const n of [1, 2, 7, 30]) {
        expect(encodePrefix(text, n, { maxRun: 8 }), `${n} of ${JSON.stringify(text)}`).toEqual(
          encode(text).slice(0, n),
        );
      }
  });

  test('equals the first ids of the full encoding when the cut falls anywhere', () => {
    const rand = mulberry32(12);
    const maxRun = 12;
    let checked = 0;
    for (let t = 0; t < 400; t++) {
      const count = 1 + Math.floor(rand() * 120);
      const text = Array.from({ length: count }, () => PIECES[Math.floor(rand() * PIECES.length)]).join('');
      // Texts with a pre-token longer than maxRun are the documented approximation; not compared here.
      if (text.split('<|endoftext|>').some((p) => (p.match(PRE_TOKEN) ?? []).some((m) => m.length > maxRun)))
        continue;
      const n = 1 + Math.floor(rand() * 12);
      expect(encodePrefix(text, n, { maxRun }), `${n} of ${JSON.stringify(text)}`).toEqual(
        encode(text).slice(0, n),
      );
      checked++;
    }
    expect(checked).toBeGreaterThan(200);
  });

  test('a run longer than maxRun gives the ids of its first maxRun characters', () => {
    const run = 'abcdefghij'.repeat(300); // 3000 letters, one pre-token
    expect(encodePrefix(`Hello ${run}`, 8, { maxRun: 64 })).toEqual(
      encode(`Hello ${run.slice(0, 63)}`).slice(0, 8),
    );
  });
});

describe('PromptSet', () => {
  test('encodes each review once, a bounded prefix', () => {
    const calls: [string, number][] = [];
    const set = new PromptSet(
      ['one two three four five', 'six seven eight'],
      {
        encode: () => expect.fail('the whole review was encoded'),
        encodePrefix: (text, n) => (calls.push([text, n]), encodePrefix(text, n)),
        decode,
      },
      { minTokens: 2, maxTokensExclusive: 4, minReviewChars: 0, seed: 1 },
    );
    const first = set.batch(0, 6).map((p) => p.tokens);
    expect(calls.length).toBe(2);
    expect(set.batch(1, 6).map((p) => p.tokens).length).toBe(6);
    expect(calls.length).toBe(2);
    for (const [r, text] of set.reviews.entries())
      expect(set.query(r).tokens).toEqual(encode(text).slice(0, set.lengths[r]));
    first[0].push(-1); // callers get copies: the cache is not theirs to change
    expect(set.batch(0, 1)[0].tokens).not.toContain(-1);
  });
});

describe('a line without whitespace', () => {
  test('1 MB and 50 MB: the first ids within a time limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefix-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(
      entry,
      `import { encode, encodePrefix } from ${JSON.stringify(join(process.cwd(), 'src/model/tokenizer.ts'))};
       const out = {};
       for (const mb of [1, 50]) {
         const line = 'thismoviewas'.repeat(Math.ceil((mb << 20) / 12)).slice(0, mb << 20);
         const t0 = performance.now();
         const ids = encodePrefix(line, 8);
         out[mb] = { ids, ms: performance.now() - t0, ref: encode(line.slice(0, 4096)).slice(0, 8) };
       }
       console.log(JSON.stringify(out));`,
    );
    await build({
      entryPoints: [entry],
      outfile: join(dir, 'entry.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'error',
    });
    const r = spawnSync(process.execPath, [join(dir, 'entry.mjs')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal, 'encodePrefix on a long line hung past 30 s').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, { ids: number[]; ms: number; ref: number[] }>;
    for (const mb of ['1', '50']) {
      console.log(`[prefix] ${mb} MB line: ${out[mb].ms.toFixed(1)} ms`);
      expect(out[mb].ids).toEqual(out[mb].ref);
      expect(out[mb].ids.length).toBe(8);
    }
  });
});
