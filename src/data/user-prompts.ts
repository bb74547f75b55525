/**
 * The user's own prompts from a file: plain text (one per line), CSV, JSON Lines or parquet.
 * Blank prompts are skipped everywhere; prompts are otherwise kept exactly (no trimming: a
 * trailing space changes GPT-2's tokens).
 */
import { CsvError, parseCsv } from './csv.ts';
import { PromptFileError, readParquetText } from './parquet-text.ts';

export { PromptFileError };

export type PromptFormat = 'txt' | 'csv' | 'jsonl' | 'parquet';

/** Column / field names tried, in order, when the user names none. */
export const TEXT_COLUMNS = ['text', 'review', 'prompt', 'query'];

/** The format a file name implies: .csv, .jsonl/.ndjson, .parquet, anything else plain text. */
export function promptFormatFromName(name: string): PromptFormat {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  if (ext === 'csv') return 'csv';
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl';
  if (ext === 'parquet') return 'parquet';
  return 'txt';
}

export interface UserPromptOptions {
  format: PromptFormat;
  /** The CSV column / JSONL field / parquet column holding the prompt; default: first of TEXT_COLUMNS. */
  column?: string;
  /** The file's name, for messages. */
  name?: string;
}

const isBlank = (s: string) => s.trim() === '';

function decodeUtf8(bytes: Uint8Array, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PromptFileError(`${name} is not UTF-8 text`);
  }
}

function pickColumn(have: string[], column: string | undefined, name: string, what: string): string {
  const wanted = column ? [column] : TEXT_COLUMNS;
  const col = wanted.find((c) => have.includes(c));
  if (!col) {
    throw new PromptFileError(
      `${name} has no ${wanted.map((c) => `'${c}'`).join(' or ')} ${what}; its ${what}s are ${have.join(', ') || '(none)'}`,
    );
  }
  return col;
}

function fromTxt(text: string): string[] {
  return text.split(/\r\n|\n|\r/).filter((l) => !isBlank(l));
}

function fromCsv(text: string, column: string | undefined, name: string): string[] {
  let records: string[][];
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) throw new PromptFileError(`${name}: ${e.message}`);
    throw e;
  }
  const [header, ...rows] = records;
  const col = header.indexOf(pickColumn(header, column, name, 'column'));
  return rows.map((r) => r[col] ?? '').filter((t) => !isBlank(t));
}

function fromJsonl(text: string, column: string | undefined, name: string): string[] {
  const out: string[] = [];
  let field: string | undefined;
  text.split(/\r?\n/).forEach((line, i) => {
    if (isBlank(line)) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new PromptFileError(`${name} line ${i + 1} is not JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new PromptFileError(`${name} line ${i + 1} is not a JSON object`);
    }
    const rec = obj as Record<string, unknown>;
    field ??= pickColumn(Object.keys(rec), column, `${name} line ${i + 1}`, 'field');
    const value = rec[field];
    if (value === undefined || value === null) return;
    if (typeof value !== 'string') {
      throw new PromptFileError(`${name} line ${i + 1}: field '${field}' is not a string`);
    }
    if (!isBlank(value)) out.push(value);
  });
  return out;
}

/**
 * Parses a prompt file. Throws PromptFileError for an empty file, a file of the wrong kind, a
 * missing text column (naming the columns it has), or a file with no non-blank prompt.
 */
export async function parseUserPrompts(bytes: Uint8Array, options: UserPromptOptions): Promise<string[]> {
  const name = options.name ?? 'the prompt file';
  if (bytes.length === 0) throw new PromptFileError(`${name} is empty`);
  let prompts: string[];
  if (options.format === 'parquet') {
    const { texts } = await readParquetText(bytes, {
      column: options.column,
      candidates: TEXT_COLUMNS,
      name,
    });
    prompts = texts.filter((t) => !isBlank(t));
  } else {
    const text = decodeUtf8(bytes, name);
    if (options.format === 'csv') prompts = fromCsv(text, options.column, name);
    else if (options.format === 'jsonl') prompts = fromJsonl(text, options.column, name);
    else prompts = fromTxt(text);
  }
  if (prompts.length === 0) throw new PromptFileError(`${name} holds no prompts (every entry is blank)`);
  return prompts;
}
