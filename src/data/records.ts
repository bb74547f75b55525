/**
 * The records of a table file (.jsonl, .csv or .parquet) as plain objects, with the row number
 * their errors name: the line for JSON Lines, the data row for CSV and parquet. Shared by the
 * preference-pair and SFT readers, which turn each record into their own row type.
 */
import { parquetRead } from 'hyparquet';
import { CsvError, parseCsv } from './csv.ts';
import { parquetColumns, PromptFileError } from './parquet-text.ts';

export type RecordFormat = 'jsonl' | 'csv' | 'parquet';

export interface FileRecord {
  /** 1-based: the line (JSON Lines) or the data row (CSV, parquet). */
  row: number;
  rec: Record<string, unknown>;
}

function decodeUtf8(bytes: Uint8Array, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PromptFileError(`${name} is not UTF-8 text`);
  }
}

function fromJsonl(text: string, name: string): FileRecord[] {
  const out: FileRecord[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new PromptFileError(`${name} line ${i + 1} is not JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new PromptFileError(`${name} line ${i + 1} is not a JSON object`);
    }
    out.push({ row: i + 1, rec: obj as Record<string, unknown> });
  });
  return out;
}

function fromCsv(text: string, name: string): FileRecord[] {
  let table: string[][];
  try {
    table = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) throw new PromptFileError(`${name}: ${e.message}`);
    throw e;
  }
  const [header = [], ...rows] = table;
  return rows
    .filter((r) => !(r.length === 1 && r[0] === ''))
    .map((r, i) => ({ row: i + 1, rec: Object.fromEntries(header.map((h, j) => [h, r[j] ?? ''])) }));
}

async function fromParquet(bytes: Uint8Array, name: string, cols: string[]): Promise<FileRecord[]> {
  let rows: unknown[][] = [];
  try {
    await parquetRead({
      file: bytes.slice().buffer as ArrayBuffer,
      columns: cols,
      onComplete: (r: unknown[][]) => (rows = r),
    });
  } catch (e) {
    throw new PromptFileError(`cannot read ${name}: ${(e as Error).message}`);
  }
  return rows.map((r, i) => {
    const rec: Record<string, unknown> = {};
    cols.forEach((c, j) => {
      const v = r[j] ?? '';
      // hyparquet reads int64 list items as BigInt
      rec[c] = Array.isArray(v) ? v.map((x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) : v;
    });
    return { row: i + 1, rec };
  });
}

/**
 * The records of `bytes`. For parquet, `columns` picks the columns to read from the file's own
 * (and may throw a PromptFileError naming what is missing); text formats give every field.
 */
export async function readRecords(
  bytes: Uint8Array,
  format: RecordFormat,
  name: string,
  columns: (have: string[]) => string[],
): Promise<FileRecord[]> {
  if (format === 'parquet') return fromParquet(bytes, name, columns(parquetColumns(bytes, name)));
  const text = decodeUtf8(bytes, name);
  return format === 'csv' ? fromCsv(text, name) : fromJsonl(text, name);
}
