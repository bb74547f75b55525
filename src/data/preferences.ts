/**
 * Preference pairs in TRL's standard preference format: rows with `prompt`, `chosen`, `rejected`
 * (text), from JSON Lines, CSV or parquet; tokenized as TRL 0.19's DPOTrainer does for a
 * decoder-only model (DPOTrainer.tokenize_row + concatenated_forward):
 *
 *   prompt_ids   = tok(prompt)[-max_prompt_length:]          (no special tokens)
 *   chosen_ids   = (tok(chosen) + [eos])[:max_completion_length]
 *   rejected_ids = (tok(rejected) + [eos])[:max_completion_length]
 *   sequence     = prompt_ids + completion_ids, of which, past max_length, only the last
 *                  max_length tokens are kept (truncation_mode "keep_end"; it eats the prompt's start)
 *   loss mask    = the completion's tokens; the batch is right-padded.
 *
 * The conformance form: rows giving `prompt_ids`, `chosen_ids`, `rejected_ids` (JSON Lines) are used
 * exactly as given (no EOS added, no truncation).
 *
 * Conversational rows (lists of {role, content}) are refused: GPT-2 has no chat template.
 */
import { downloadBytes, type DownloadOptions } from './download.ts';
import { PromptFileError } from './parquet-text.ts';
import { readRecords } from './records.ts';

export { PromptFileError };

/** The columns of TRL's standard preference format. */
export const PREFERENCE_COLUMNS = ['prompt', 'chosen', 'rejected'] as const;
/** The conformance form's columns: token ids, used as given. */
export const PREFERENCE_ID_COLUMNS = ['prompt_ids', 'chosen_ids', 'rejected_ids'] as const;

export type PreferenceFormat = 'jsonl' | 'csv' | 'parquet';

/** One row of a preference file. `row` is 1-based (the line of a .jsonl, the record of a .csv/.parquet). */
export type PreferencePair =
  | { kind: 'text'; row: number; prompt: string; chosen: string; rejected: string }
  | { kind: 'ids'; row: number; promptIds: number[]; chosenIds: number[]; rejectedIds: number[] };

/** One side of a pair, ready for the model: `ids[promptLength:]` is the completion (the loss). */
export interface TokenizedSequence {
  ids: number[];
  promptLength: number;
}

export interface TokenizedPair {
  row: number;
  chosen: TokenizedSequence;
  rejected: TokenizedSequence;
}

/** DPOConfig's tokenization fields (TRL 0.19 defaults in DPO_TOKENIZE_DEFAULTS). */
export interface PreferenceTokenizeConfig {
  /** Longest prompt + completion; longer rows keep their last max_length tokens. null: no limit. */
  max_length: number | null;
  /** Longest prompt; longer prompts keep their last max_prompt_length tokens. null: no limit. */
  max_prompt_length: number | null;
  /** Longest completion (EOS included); longer ones keep their first tokens. null: no limit. */
  max_completion_length: number | null;
}

/** TRL 0.19.0 DPOConfig: max_length 1024, max_prompt_length 512, max_completion_length None. */
export const DPO_TOKENIZE_DEFAULTS: PreferenceTokenizeConfig = {
  max_length: 1024,
  max_prompt_length: 512,
  max_completion_length: null,
};

/** The format a file name (or URL) implies; null when it is none of .jsonl/.ndjson/.csv/.parquet. */
export function preferenceFormatFromName(name: string): PreferenceFormat | null {
  const ext = (name.split(/[?#]/)[0].toLowerCase().split('.').pop() ?? '').trim();
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl';
  if (ext === 'csv') return 'csv';
  if (ext === 'parquet') return 'parquet';
  return null;
}

const isConversational = (v: unknown) =>
  Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === 'object' && m !== null && 'role' in m);

/** Builds one pair from a record of the file, or throws naming the row and the field. */
function pairFromRecord(rec: Record<string, unknown>, row: number, where: string): PreferencePair {
  const at = `${where} row ${row}`;
  if (PREFERENCE_ID_COLUMNS.every((c) => c in rec)) {
    const ids = PREFERENCE_ID_COLUMNS.map((c) => {
      const v = rec[c];
      if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && (x as number) >= 0)) {
        throw new PromptFileError(`${at}: '${c}' must be a list of non-negative integer token ids`);
      }
      return v as number[];
    });
    if (ids[0].length === 0) throw new PromptFileError(`${at}: 'prompt_ids' is empty`);
    if (ids[1].length === 0) throw new PromptFileError(`${at}: 'chosen_ids' is empty`);
    if (ids[2].length === 0) throw new PromptFileError(`${at}: 'rejected_ids' is empty`);
    return { kind: 'ids', row, promptIds: ids[0], chosenIds: ids[1], rejectedIds: ids[2] };
  }
  const texts = PREFERENCE_COLUMNS.map((c) => {
    const v = rec[c];
    if (v === undefined) {
      const have = Object.keys(rec).join(', ') || '(none)';
      throw new PromptFileError(
        `${at} has no '${c}' column (a preference row needs 'prompt', 'chosen' and 'rejected'; it has ${have})`,
      );
    }
    if (isConversational(v)) {
      throw new PromptFileError(
        `${at}: '${c}' is a conversation (a list of {role, content} messages); GPT-2 has no chat ` +
          `template, so give 'prompt', 'chosen' and 'rejected' as plain text`,
      );
    }
    if (typeof v !== 'string') throw new PromptFileError(`${at}: '${c}' is not text`);
    return v;
  });
  if (texts[0] === '') throw new PromptFileError(`${at}: the prompt is empty`);
  if (texts[1] === '') throw new PromptFileError(`${at}: the chosen completion is empty`);
  if (texts[2] === '') throw new PromptFileError(`${at}: the rejected completion is empty`);
  return { kind: 'text', row, prompt: texts[0], chosen: texts[1], rejected: texts[2] };
}

/** The columns of a preference parquet file to read: the id columns when all are there, else the text ones. */
function pairColumns(have: string[], name: string): string[] {
  if (PREFERENCE_ID_COLUMNS.every((c) => have.includes(c))) return [...PREFERENCE_ID_COLUMNS];
  const missing = PREFERENCE_COLUMNS.find((c) => !have.includes(c));
  if (missing) {
    throw new PromptFileError(
      `${name} has no '${missing}' column (a preference file needs 'prompt', 'chosen' and 'rejected'; its columns are ${have.join(', ')})`,
    );
  }
  return [...PREFERENCE_COLUMNS];
}

/**
 * Parses a preference file's bytes. Throws PromptFileError for an empty file, a missing column, a
 * conversational row, an empty prompt or completion, or a file with no pair, naming the row.
 */
export async function parsePreferencePairs(
  bytes: Uint8Array,
  { format, name = 'the preference file' }: { format: PreferenceFormat; name?: string },
): Promise<PreferencePair[]> {
  if (bytes.length === 0) throw new PromptFileError(`${name} is empty`);
  const records = await readRecords(bytes, format, name, (have) => pairColumns(have, name));
  const pairs = records.map(({ row, rec }) => pairFromRecord(rec, row, name));
  if (pairs.length === 0) throw new PromptFileError(`${name} holds no preference pairs`);
  return pairs;
}

/** A Hub dataset file's download URL: https://huggingface.co/datasets/{repo}/resolve/{revision}/{file}. */
export function hubDatasetFileUrl(repo: string, file: string, revision = 'main'): string {
  return `https://huggingface.co/datasets/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}

/**
 * A Hub dataset file named as the `datasets` library's fsspec paths do,
 * hf://datasets/{owner}/{name}[@{revision}]/{path}, as its download URL; null for anything else.
 */
export function hubDatasetPathUrl(path: string): string | null {
  const m = /^hf:\/\/datasets\/([^/@]+\/[^/@]+)(?:@([^/]+))?\/(.+)$/.exec(path);
  return m ? hubDatasetFileUrl(m[1], m[3], m[2] ? decodeURIComponent(m[2]) : 'main') : null;
}

/** Where pairs come from: bytes already in hand (a local file), or a URL (a Hub file's URL too). */
export type PreferenceSource =
  | { kind: 'bytes'; bytes: Uint8Array; name: string; format?: PreferenceFormat }
  | { kind: 'url'; url: string; format?: PreferenceFormat };

/** Reads pairs from a source; the format is the given one, else the one the name implies. */
export async function loadPreferencePairs(
  source: PreferenceSource,
  download: DownloadOptions = {},
): Promise<PreferencePair[]> {
  const name = source.kind === 'bytes' ? source.name : source.url;
  const format = source.format ?? preferenceFormatFromName(name);
  if (!format) {
    throw new PromptFileError(`${name}: cannot tell the format (name it .jsonl, .csv or .parquet)`);
  }
  const bytes = source.kind === 'bytes' ? source.bytes : (await downloadBytes(source.url, download)).bytes;
  return parsePreferencePairs(bytes, { format, name });
}

/** GPT-2 BPE: text to token ids, no special tokens added. */
export type EncodeText = (text: string) => number[];

function checkLimit(name: string, v: number | null): void {
  if (v !== null && !(Number.isInteger(v) && v > 0)) {
    throw new RangeError(`${name} must be a positive integer or null, got ${v}`);
  }
}

/** prompt + completion, keep_end-truncated to maxLength; throws when no prompt token would be left. */
function sequence(
  prompt: number[],
  completion: number[],
  maxLength: number | null,
  at: string,
): TokenizedSequence {
  const ids = [...prompt, ...completion];
  const cut = maxLength === null ? 0 : Math.max(0, ids.length - maxLength);
  if (cut >= prompt.length) {
    throw new PromptFileError(
      `${at}: prompt (${prompt.length} tokens) + completion (${completion.length} tokens) leaves no prompt ` +
        `token within max_length ${maxLength}`,
    );
  }
  return { ids: ids.slice(cut), promptLength: prompt.length - cut };
}

/**
 * Tokenizes pairs as TRL's DPOTrainer does for a decoder-only model (see the header); id rows are
 * taken as given. Throws PromptFileError naming the row when a prompt is longer than max_length
 * (nothing would remain of it), or when a completion truncates to nothing.
 */
export function tokenizePairs(
  pairs: readonly PreferencePair[],
  encode: EncodeText,
  config: PreferenceTokenizeConfig = DPO_TOKENIZE_DEFAULTS,
  eosId = 50256,
): TokenizedPair[] {
  checkLimit('max_length', config.max_length);
  checkLimit('max_prompt_length', config.max_prompt_length);
  checkLimit('max_completion_length', config.max_completion_length);
  return pairs.map((p) => {
    const at = `preference row ${p.row}`;
    if (p.kind === 'ids') {
      const chosen = { ids: [...p.promptIds, ...p.chosenIds], promptLength: p.promptIds.length };
      const rejected = { ids: [...p.promptIds, ...p.rejectedIds], promptLength: p.promptIds.length };
      return { row: p.row, chosen, rejected };
    }
    let prompt = encode(p.prompt);
    if (prompt.length === 0) throw new PromptFileError(`${at}: the prompt has no tokens`);
    if (config.max_prompt_length !== null) prompt = prompt.slice(-config.max_prompt_length);
    if (config.max_length !== null && prompt.length >= config.max_length) {
      throw new PromptFileError(
        `${at}: the prompt (${prompt.length} tokens) is longer than max_length ${config.max_length} allows (no room is left for a completion)`,
      );
    }
    const completion = (text: string) => {
      const ids = [...encode(text), eosId];
      return config.max_completion_length === null ? ids : ids.slice(0, config.max_completion_length);
    };
    return {
      row: p.row,
      chosen: sequence(prompt, completion(p.chosen), config.max_length, `${at} (chosen)`),
      rejected: sequence(prompt, completion(p.rejected), config.max_length, `${at} (rejected)`),
    };
  });
}

/**
 * A batch of n pairs as B = 2n rows of length T (TRL's concatenated_inputs: chosen rows 0..n-1,
 * rejected rows n..2n-1), right-padded with `padId`.
 *
 *   tokens (B, T)    input ids
 *   lengths (B)      real tokens per row
 *   lossMask (B, T)  1 at position t when token t is a completion token (predicted from t-1), else 0;
 *                    position 0 is never in the loss (nothing predicts it)
 *   counts (B)       completion tokens per row (the sum of the row's lossMask)
 */
export interface PairBatch {
  B: number;
  T: number;
  tokens: Int32Array;
  lengths: Int32Array;
  lossMask: Float32Array;
  counts: Float32Array;
}

export function layoutPairBatch(pairs: readonly TokenizedPair[], padId = 50256): PairBatch {
  const rows = [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
  const B = rows.length;
  const T = Math.max(1, ...rows.map((r) => r.ids.length));
  const tokens = new Int32Array(B * T).fill(padId);
  const lengths = new Int32Array(B);
  const lossMask = new Float32Array(B * T);
  const counts = new Float32Array(B);
  rows.forEach((r, b) => {
    tokens.set(r.ids, b * T);
    lengths[b] = r.ids.length;
    for (let t = Math.max(1, r.promptLength); t < r.ids.length; t++) lossMask[b * T + t] = 1;
    counts[b] = r.ids.length - Math.max(1, r.promptLength);
  });
  return { B, T, tokens, lengths, lossMask, counts };
}
