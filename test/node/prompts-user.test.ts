// The user's own prompt files (src/data/user-prompts.ts, csv.ts). Expected values: the fixture
// files in test/fixtures/prompts/ are written by test/fixtures/scripts/make_prompts_fixture.py from
// its USER_PROMPTS list (user-prompts.json); the CSV by Python's csv module (RFC 4180 quoting).
// The hand-written CSV cases below follow RFC 4180's rules, stated next to each.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { CsvError, parseCsv } from '../../src/data/csv.ts';
import { PromptFileError, parseUserPrompts, promptFormatFromName } from '../../src/data/user-prompts.ts';

const FIX = 'test/fixtures/prompts';
const expected = JSON.parse(readFileSync(`${FIX}/user-prompts.json`, 'utf8')) as {
  prompts: string[];
  txt: string[];
};
const file = (name: string) => new Uint8Array(readFileSync(`${FIX}/${name}`));
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('prompt files', () => {
  test('the format follows the file name', () => {
    expect(promptFormatFromName('a.CSV')).toBe('csv');
    expect(promptFormatFromName('a.jsonl')).toBe('jsonl');
    expect(promptFormatFromName('a.ndjson')).toBe('jsonl');
    expect(promptFormatFromName('a.parquet')).toBe('parquet');
    expect(promptFormatFromName('prompts.txt')).toBe('txt');
    expect(promptFormatFromName('prompts')).toBe('txt');
  });

  test('text: one prompt per line, blank lines skipped', async () => {
    expect(await parseUserPrompts(file('prompts.txt'), { format: 'txt' })).toEqual(expected.txt);
    expect(await parseUserPrompts(utf8('\ufeffa\r\nb \r\n\r\n'), { format: 'txt' })).toEqual(['a', 'b ']);
  });

  test('CSV: the text column, with quoted commas, quotes and newlines', async () => {
    expect(await parseUserPrompts(file('prompts.csv'), { format: 'csv' })).toEqual(expected.prompts);
  });

  test('CSV: a column named by the user', async () => {
    const got = await parseUserPrompts(file('prompts.csv'), { format: 'csv', column: 'source' });
    expect(got).toEqual(expected.prompts.map(() => 'fixture, hand-written'));
    const review = utf8('label,review\n1,great film\n0,\n');
    expect(await parseUserPrompts(review, { format: 'csv' })).toEqual(['great film']);
  });

  test('JSONL: the text field', async () => {
    expect(await parseUserPrompts(file('prompts.jsonl'), { format: 'jsonl' })).toEqual(expected.prompts);
  });

  test('parquet: the text column (here named prompt)', async () => {
    expect(await parseUserPrompts(file('prompts.parquet'), { format: 'parquet' })).toEqual(expected.prompts);
  });
});

describe('wrong prompt files give clear errors', () => {
  test('empty', async () => {
    await expect(parseUserPrompts(new Uint8Array(0), { format: 'txt', name: 'p.txt' })).rejects.toThrow(
      'p.txt is empty',
    );
    await expect(parseUserPrompts(utf8('\n  \n'), { format: 'txt', name: 'p.txt' })).rejects.toThrow(
      'p.txt holds no prompts',
    );
  });

  test('not parquet', async () => {
    await expect(
      parseUserPrompts(file('prompts.csv'), { format: 'parquet', name: 'p.parquet' }),
    ).rejects.toThrow(/p.parquet is not a parquet file/);
  });

  test('no text column: the error names the columns', async () => {
    await expect(parseUserPrompts(utf8('id,body\n1,hi\n'), { format: 'csv', name: 'p.csv' })).rejects.toThrow(
      "p.csv has no 'text' or 'review' or 'prompt' or 'query' column; its columns are id, body",
    );
    await expect(
      parseUserPrompts(file('prompts.parquet'), { format: 'parquet', column: 'body', name: 'p.parquet' }),
    ).rejects.toThrow("p.parquet has no 'body' column; its columns are id, prompt");
    await expect(parseUserPrompts(utf8('{"id": 1}\n'), { format: 'jsonl', name: 'p.jsonl' })).rejects.toThrow(
      /p.jsonl line 1 has no .* field; its fields are id/,
    );
  });

  test('broken JSONL and CSV', async () => {
    await expect(
      parseUserPrompts(utf8('{"text": "a"}\n{oops\n'), { format: 'jsonl', name: 'p.jsonl' }),
    ).rejects.toThrow(/p.jsonl line 2 is not JSON/);
    await expect(parseUserPrompts(utf8('["a"]\n'), { format: 'jsonl', name: 'p.jsonl' })).rejects.toThrow(
      'p.jsonl line 1 is not a JSON object',
    );
    await expect(parseUserPrompts(utf8('text\n"open\n'), { format: 'csv', name: 'p.csv' })).rejects.toThrow(
      'p.csv: unterminated quoted field starting on line 2',
    );
  });

  test('binary data as text', async () => {
    await expect(parseUserPrompts(file('prompts.parquet'), { format: 'txt', name: 'p.txt' })).rejects.toThrow(
      PromptFileError,
    );
  });
});

describe('parseCsv (RFC 4180)', () => {
  test('CRLF records, and LF or CR alone', () => {
    expect(parseCsv('a,b\r\n1,2\r\n')).toEqual([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(parseCsv('a,b\n1,2')).toEqual([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(parseCsv('a\r1\r')).toEqual([['a'], ['1']]);
  });

  test('quoted fields hold commas, line breaks and doubled quotes', () => {
    expect(parseCsv('"a,b","say ""hi""","x\r\ny"\n')).toEqual([['a,b', 'say "hi"', 'x\r\ny']]);
    expect(parseCsv('"",x\n')).toEqual([['', 'x']]);
    expect(parseCsv('""')).toEqual([['']]);
  });

  test('empty fields, trailing comma, blank line, BOM', () => {
    expect(parseCsv('\ufeffa,,c\n1,2,\n\n3')).toEqual([['a', '', 'c'], ['1', '2', ''], [''], ['3']]);
  });

  test('a quote inside an unquoted field is data', () => {
    expect(parseCsv('5" disk,x\n')).toEqual([['5" disk', 'x']]);
  });

  test('errors name the line', () => {
    expect(() => parseCsv('a\n"b\nc')).toThrow(new CsvError('unterminated quoted field starting on line 2'));
    expect(() => parseCsv('a\n"b"c\n')).toThrow('unexpected "c" after a closing quote on line 2');
  });
});
