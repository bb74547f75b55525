/**
 * One text column of a parquet file, from bytes, with hyparquet (snappy and uncompressed pages;
 * the Hub's dataset parquet files are snappy).
 */
import { parquetMetadata, parquetRead, parquetSchema } from 'hyparquet';

/** A data file we cannot use; the message says why in the user's terms. */
export class PromptFileError extends Error {
  override name = 'PromptFileError';
}

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1", at the start and end of every parquet file

function hasMagic(bytes: Uint8Array, at: number): boolean {
  return MAGIC.every((b, i) => bytes[at + i] === b);
}

/** An ArrayBuffer holding exactly `bytes` (hyparquet reads ArrayBuffers). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  const { buffer, byteOffset, byteLength } = bytes;
  if (buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength) return buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

/** Checks the PAR1 magic; throws PromptFileError for an empty file or one that is not parquet. */
export function checkParquet(bytes: Uint8Array, name = 'the file'): void {
  if (bytes.length === 0) throw new PromptFileError(`${name} is empty`);
  if (bytes.length < 12 || !hasMagic(bytes, 0) || !hasMagic(bytes, bytes.length - 4)) {
    throw new PromptFileError(
      `${name} is not a parquet file (it does not start and end with the bytes "PAR1")`,
    );
  }
}

/** Top-level column names of a parquet file. */
export function parquetColumns(bytes: Uint8Array, name = 'the file'): string[] {
  checkParquet(bytes, name);
  return parquetSchema(parquetMetadata(ownBuffer(bytes))).children.map((c) => c.element.name);
}

/**
 * Reads one string column. `column` names it; otherwise the first of `candidates` the file has.
 * Null cells read as ''. Throws PromptFileError naming the file's columns when none fits, or when
 * the column is not text.
 */
export async function readParquetText(
  bytes: Uint8Array,
  { column, candidates, name = 'the file' }: { column?: string; candidates: string[]; name?: string },
): Promise<{ column: string; texts: string[] }> {
  const columns = parquetColumns(bytes, name);
  const wanted = column ? [column] : candidates;
  const col = wanted.find((c) => columns.includes(c));
  if (!col) {
    throw new PromptFileError(
      `${name} has no ${wanted.map((c) => `'${c}'`).join(' or ')} column; its columns are ${columns.join(', ')}`,
    );
  }
  let rows: unknown[][] = [];
  try {
    await parquetRead({
      file: ownBuffer(bytes),
      columns: [col],
      onComplete: (r: unknown[][]) => {
        rows = r;
      },
    });
  } catch (e) {
    throw new PromptFileError(`cannot read column '${col}' of ${name}: ${(e as Error).message}`);
  }
  const texts = rows.map((r) => r[0] ?? ''); // a null cell reads as an empty text
  const bad = texts.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) {
    throw new PromptFileError(
      `column '${col}' of ${name} is not text (row ${bad} holds ${String(texts[bad])})`,
    );
  }
  return { column: col, texts: texts as string[] };
}
