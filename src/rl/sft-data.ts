/**
 * SFT rows and their tokenization as TRL 1.x's SFTTrainer._prepare_dataset and
 * DataCollatorForLanguageModeling do for a non-conversational dataset:
 *
 *   language modelling (`text`):       ids = tok(text + eos)                 labels = ids
 *   prompt-completion (`prompt`, `completion`):
 *                                      ids = tok(prompt + completion + eos)  (one text)
 *                                      completion_mask = 0 on the first len(tok(prompt)) ids, else 1
 *                                      labels = ids, -100 where completion_mask is 0 when
 *                                      completion_only_loss (default: on for prompt-completion rows)
 *   EOS is appended unless the text already ends with it.
 *   max_length (keep_start): ids and labels cut to their first max_length; rows left with no label
 *   dropped. packing: the rows' ids and labels concatenated and cut into max_length pieces (TRL's
 *   "wrapped" strategy; its default "bfd" needs attention that stops at document boundaries).
 *   batch: right-padded with the pad token (EOS for GPT-2), label -100 on pads; the loss predicts
 *   labels[t + 1] from position t.
 */
import { PromptFileError } from '../data/parquet-text.ts';
import { readRecords } from '../data/records.ts';
import { EOS_TOKEN } from '../model/tokenizer.ts';

export { PromptFileError };

export const IGNORE = -100;

export type SFTRow =
  | { kind: 'text'; row: number; text: string }
  | { kind: 'prompt-completion'; row: number; prompt: string; completion: string };

export interface SFTExample {
  ids: number[];
  /** Per id: the id itself when it is in the loss, IGNORE (-100) when not. */
  labels: number[];
}

export interface SFTTokenizeConfig {
  max_length: number | null;
  packing: boolean;
  /** null: on for prompt-completion rows, off for text rows (SFTConfig's None). */
  completion_only_loss: boolean | null;
}

/** SFTConfig 1.x: max_length 1024, packing False, completion_only_loss None. */
export const SFT_TOKENIZE_DEFAULTS: SFTTokenizeConfig = {
  max_length: 1024,
  packing: false,
  completion_only_loss: null,
};

function rowFromRecord(rec: Record<string, unknown>, row: number, name: string): SFTRow {
  const at = `${name} row ${row}`;
  const str = (k: string) => {
    const v = rec[k];
    if (Array.isArray(v))
      throw new PromptFileError(
        `${at}: '${k}' is a conversation; GPT-2 has no chat template, give plain text`,
      );
    if (typeof v !== 'string') throw new PromptFileError(`${at}: '${k}' is not text`);
    if (v === '') throw new PromptFileError(`${at}: '${k}' is empty`);
    return v;
  };
  if ('prompt' in rec && 'completion' in rec)
    return { kind: 'prompt-completion', row, prompt: str('prompt'), completion: str('completion') };
  if ('text' in rec) return { kind: 'text', row, text: str('text') };
  if ('messages' in rec)
    throw new PromptFileError(`${at}: 'messages' is a conversation; GPT-2 has no chat template`);
  const have = Object.keys(rec).join(', ') || '(none)';
  throw new PromptFileError(
    `${at} has neither 'text' nor 'prompt' and 'completion' columns (it has ${have})`,
  );
}

/** Rows of an SFT file (.jsonl, .csv or .parquet); errors name the file and row. */
export async function parseSFTRows(
  bytes: Uint8Array,
  { format, name }: { format: 'jsonl' | 'csv' | 'parquet'; name: string },
): Promise<SFTRow[]> {
  const records = await readRecords(bytes, format, name, (have) => {
    const cols = have.includes('prompt') && have.includes('completion') ? ['prompt', 'completion'] : ['text'];
    if (!cols.every((c) => have.includes(c)))
      throw new PromptFileError(
        `${name} has neither 'text' nor 'prompt'/'completion' columns (it has ${have.join(', ')})`,
      );
    return cols;
  });
  if (records.length === 0) throw new PromptFileError(`${name} holds no rows`);
  return records.map(({ rec }, i) => rowFromRecord(rec, i + 1, name));
}

/** Tokenized examples (see the header); throws naming a row that completion_only_loss cannot apply to. */
export function tokenizeSFTRows(
  rows: readonly SFTRow[],
  encode: (text: string) => number[],
  config: SFTTokenizeConfig = SFT_TOKENIZE_DEFAULTS,
): SFTExample[] {
  const { max_length: maxLength, packing } = config;
  if (maxLength !== null && !(Number.isInteger(maxLength) && maxLength > 1))
    throw new RangeError(`max_length must be an integer > 1 or null, got ${maxLength}`);
  if (packing && maxLength === null) throw new RangeError('packing needs max_length');
  const withEos = (t: string) => (t.endsWith(EOS_TOKEN) ? t : t + EOS_TOKEN);
  const examples = rows.map((r): SFTExample => {
    if (r.kind === 'text') {
      if (config.completion_only_loss === true)
        throw new PromptFileError(
          `row ${r.row}: completion_only_loss needs prompt/completion rows, this one has 'text'`,
        );
      const ids = encode(withEos(r.text));
      return { ids, labels: ids.slice() };
    }
    const ids = encode(r.prompt + withEos(r.completion));
    const promptLength = encode(r.prompt).length;
    const masked = config.completion_only_loss !== false;
    return { ids, labels: ids.map((id, t) => (masked && t < promptLength ? IGNORE : id)) };
  });
  if (packing) return pack(examples, maxLength!);
  const cut =
    maxLength === null
      ? examples
      : examples.map((e) => ({ ids: e.ids.slice(0, maxLength), labels: e.labels.slice(0, maxLength) }));
  return cut.filter((e) => e.labels.some((l) => l !== IGNORE));
}

/** TRL's "wrapped" packing: everything concatenated, cut into pieces of maxLength (the last shorter). */
function pack(examples: readonly SFTExample[], maxLength: number): SFTExample[] {
  const ids = examples.flatMap((e) => e.ids);
  const labels = examples.flatMap((e) => e.labels);
  const out: SFTExample[] = [];
  for (let i = 0; i < ids.length; i += maxLength)
    out.push({ ids: ids.slice(i, i + maxLength), labels: labels.slice(i, i + maxLength) });
  return out.filter((e) => e.labels.some((l) => l !== IGNORE));
}

/** A batch: (B, T) ids right-padded with padId, and next-token targets (B*T, -1 = not in the loss). */
export function layoutSFTBatch(
  examples: readonly SFTExample[],
  padId: number,
): { B: number; T: number; ids: Int32Array; targets: Int32Array; count: number } {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(-1);
  let count = 0;
  examples.forEach((e, b) => {
    ids.set(e.ids, b * T);
    for (let t = 0; t + 1 < e.ids.length; t++) {
      const l = e.labels[t + 1];
      if (l !== IGNORE) {
        targets[b * T + t] = l;
        count++;
      }
    }
  });
  return { B, T, ids, targets, count };
}
