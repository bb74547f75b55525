// Preference files and TRL's DPO tokenization (src/data/preferences.ts). Expected values: the files in
// test/fixtures/preferences/ come from test/fixtures/scripts/make_preferences_fixture.py, whose PAIRS
// list is pairs.json; token ids "The sky is" -> 464 6766 318, " blue" -> 4171, " green" -> 4077 are
// the example in TRL 0.19's DPOTrainer.tokenize_row docstring (GPT-2 tokenizer).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  PromptFileError,
  layoutPairBatch,
  hubDatasetPathUrl,
  loadPreferencePairs,
  parsePreferencePairs,
  preferenceFormatFromName,
  tokenizePairs,
  type PreferencePair,
} from '../../src/data/preferences.ts';
import { encode } from '../../src/model/tokenizer.ts';

const FIX = 'test/fixtures/preferences';
const file = (name: string) => new Uint8Array(readFileSync(`${FIX}/${name}`));
const utf8 = (s: string) => new TextEncoder().encode(s);
const expected = (
  JSON.parse(readFileSync(`${FIX}/pairs.json`, 'utf8')) as Omit<PreferencePair, 'row' | 'kind'>[]
).map((p, i) => ({ kind: 'text', row: i + 1, ...p }));

describe('preference files', () => {
  test('the format follows the name', () => {
    expect(preferenceFormatFromName('a.JSONL')).toBe('jsonl');
    expect(preferenceFormatFromName('https://x/y/train.parquet?download=1')).toBe('parquet');
    expect(preferenceFormatFromName('a.csv')).toBe('csv');
    expect(preferenceFormatFromName('a.txt')).toBeNull();
  });

  test.each(['jsonl', 'csv', 'parquet'] as const)('%s: prompt, chosen, rejected', async (format) => {
    expect(await parsePreferencePairs(file(`pairs.${format}`), { format })).toEqual(expected);
  });

  test('the conformance form: token ids as given (parquet int64 lists)', async () => {
    const pairs = await parsePreferencePairs(file('ids.parquet'), { format: 'parquet' });
    expect(pairs[1]).toEqual({
      kind: 'ids',
      row: 2,
      promptIds: [1212],
      chosenIds: [3807, 373, 1049],
      rejectedIds: [50256],
    });
    const [a] = tokenizePairs(pairs, encode);
    expect(a.chosen).toEqual({ ids: [464, 6766, 318, 4171], promptLength: 3 }); // no EOS added
  });

  test('Hub dataset paths as the datasets library writes them', () => {
    expect(
      hubDatasetPathUrl('hf://datasets/trl-lib/ultrafeedback_binarized/data/train-00000-of-00001.parquet'),
    ).toBe(
      'https://huggingface.co/datasets/trl-lib/ultrafeedback_binarized/resolve/main/data/train-00000-of-00001.parquet',
    );
    expect(hubDatasetPathUrl('hf://datasets/o/n@refs%2Fconvert%2Fparquet/a.parquet')).toBe(
      'https://huggingface.co/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/a.parquet',
    );
    expect(hubDatasetPathUrl('pairs.jsonl')).toBeNull();
  });

  test('a URL goes through the downloader', async () => {
    const fetch = async () => new Response(file('pairs.jsonl'));
    const pairs = await loadPreferencePairs(
      { kind: 'url', url: 'https://h/d/pairs.jsonl' },
      { fetch, cache: null },
    );
    expect(pairs).toEqual(expected);
  });

  test('bad rows are named', async () => {
    const jsonl = (rows: object[]) => utf8(rows.map((r) => JSON.stringify(r)).join('\n'));
    const parse = (b: Uint8Array) => parsePreferencePairs(b, { format: 'jsonl', name: 'p.jsonl' });
    await expect(parse(file('conversational.jsonl'))).rejects.toThrow(
      /row 1: 'prompt' is a conversation.*no chat template/,
    );
    await expect(
      parse(
        jsonl([
          { prompt: 'a', chosen: 'b', rejected: 'c' },
          { prompt: 'a', chosen: 'b' },
        ]),
      ),
    ).rejects.toThrow(/p\.jsonl row 2 has no 'rejected' column/);
    await expect(parse(jsonl([{ prompt: 'a', chosen: '', rejected: 'c' }]))).rejects.toThrow(
      /row 1: the chosen completion is empty/,
    );
    await expect(parse(utf8(''))).rejects.toThrow(PromptFileError);
    await expect(
      parsePreferencePairs(utf8('prompt,chosen\na,b\n'), { format: 'csv', name: 'p.csv' }),
    ).rejects.toThrow(/p\.csv row 1 has no 'rejected' column/);
  });
});

describe('TRL tokenization', () => {
  const sky: PreferencePair = {
    kind: 'text',
    row: 7,
    prompt: 'The sky is',
    chosen: ' blue',
    rejected: ' green',
  };
  const noLimit = { max_length: null, max_prompt_length: null, max_completion_length: null };

  test('prompt, completion + EOS', () => {
    const [p] = tokenizePairs([sky], encode, noLimit);
    expect(p.chosen).toEqual({ ids: [464, 6766, 318, 4171, 50256], promptLength: 3 });
    expect(p.rejected).toEqual({ ids: [464, 6766, 318, 4077, 50256], promptLength: 3 });
  });

  test('max_prompt_length keeps the prompt end; max_completion_length the completion start', () => {
    const [p] = tokenizePairs([sky], encode, {
      max_length: null,
      max_prompt_length: 2,
      max_completion_length: 1,
    });
    expect(p.chosen).toEqual({ ids: [6766, 318, 4171], promptLength: 2 });
  });

  test('max_length keeps the end (keep_end), cutting the prompt', () => {
    const [p] = tokenizePairs([sky], encode, { ...noLimit, max_length: 4 });
    expect(p.chosen).toEqual({ ids: [6766, 318, 4171, 50256], promptLength: 2 });
  });

  test('a prompt longer than max_length names the row', () => {
    expect(() => tokenizePairs([sky], encode, { ...noLimit, max_length: 3 })).toThrow(
      /row 7: the prompt \(3 tokens\) is longer than max_length 3/,
    );
    expect(() => tokenizePairs([sky], encode, { ...noLimit, max_length: 2 })).toThrow(PromptFileError);
  });

  test('batch layout: chosen rows then rejected rows, right-padded, completion-only loss mask', () => {
    const pairs = tokenizePairs(
      [sky, { kind: 'ids', row: 8, promptIds: [1, 2], chosenIds: [3, 4, 5, 6], rejectedIds: [7] }],
      encode,
      noLimit,
    );
    const b = layoutPairBatch(pairs, 0);
    expect([b.B, b.T]).toEqual([4, 6]);
    expect(Array.from(b.tokens.slice(6, 12))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(b.tokens.slice(18, 24))).toEqual([1, 2, 7, 0, 0, 0]);
    expect(Array.from(b.lossMask.slice(0, 6))).toEqual([0, 0, 0, 1, 1, 0]);
    expect(Array.from(b.lossMask.slice(18, 24))).toEqual([0, 0, 1, 0, 0, 0]);
    expect(Array.from(b.counts)).toEqual([2, 4, 2, 1]);
    expect(Array.from(b.lengths)).toEqual([5, 6, 5, 3]);
  });
});
