/**
 * An RFC 4180 CSV reader (https://www.rfc-editor.org/rfc/rfc4180): comma-separated fields, records
 * ended by CRLF (LF and CR alone accepted too), fields optionally in double quotes, inside which
 * commas and line breaks are data and `""` is one quote. A leading UTF-8 BOM is dropped.
 *
 * Lenient where spreadsheets are: a quote inside an unquoted field is kept as data. Strict where
 * data would be lost: an unterminated quoted field, or text after a closing quote, is an error.
 */

export class CsvError extends Error {
  override name = 'CsvError';
}

/** All records of `text`, each a list of fields. A final line break does not start a record. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let line = 1; // for errors
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  while (i < n) {
    let field: string;
    if (text[i] === '"') {
      // quoted field: up to the closing quote; "" is a literal quote
      const startLine = line;
      field = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new CsvError(`unterminated quoted field starting on line ${startLine}`);
        const chunk = text.slice(i, q);
        line += chunk.split('\n').length - 1;
        field += chunk;
        if (text[q + 1] === '"') {
          field += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        throw new CsvError(`unexpected ${JSON.stringify(text[i])} after a closing quote on line ${line}`);
      }
    } else {
      // unquoted field: up to the next comma or line break (a quote here is data)
      let j = i;
      while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r') j++;
      field = text.slice(i, j);
      i = j;
    }
    record.push(field);
    if (i >= n) break;
    if (text[i] === ',') {
      i++;
      if (i === n) record.push(''); // "a," ends with an empty field
      continue;
    }
    // line break: CRLF, LF or CR
    i += text[i] === '\r' && text[i + 1] === '\n' ? 2 : 1;
    line++;
    records.push(record);
    record = [];
  }
  if (record.length > 0) records.push(record);
  return records;
}
