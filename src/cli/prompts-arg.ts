/** `--prompts FILE` for the CLI: the user's prompt file as a PromptSet, as `train` and `eval` build queries. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { codePointLength, PromptSet } from '../data/prompts.ts';
import { parseUserPrompts, promptFormatFromName } from '../data/user-prompts.ts';
import { decode, encode, encodePrefix } from '../model/tokenizer.ts';
import { UsageError } from './command.ts';

export interface PromptArgs {
  /** .txt (one per line), .csv/.jsonl (a text column) or .parquet. */
  path: string;
  /** The CSV column / JSONL field / parquet column; default the first of TEXT_COLUMNS. */
  column?: string;
  /** Prompts are kept when longer than this many characters (TRL: reviews > 200). */
  minChars: number;
  /** Query lengths in tokens, uniform in [minTokens, maxTokensExclusive) (TRL: LengthSampler(2, 8)). */
  minTokens: number;
  maxTokensExclusive: number;
  /** Seeds the query lengths and the order. */
  seed: number;
}

/** The prompts of `a.path` longer than minChars, as queries of their first k GPT-2 tokens. */
export async function loadPromptSet(a: PromptArgs): Promise<PromptSet> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(a.path);
  } catch (e) {
    throw new UsageError(`cannot read --prompts ${a.path}: ${(e as Error).message}`);
  }
  const texts = await parseUserPrompts(bytes, {
    format: promptFormatFromName(a.path),
    column: a.column,
    name: basename(a.path),
  });
  return new PromptSet(
    texts.filter((t) => codePointLength(t) > a.minChars),
    { encode, decode, encodePrefix },
    {
      minTokens: a.minTokens,
      maxTokensExclusive: a.maxTokensExclusive,
      minReviewChars: a.minChars,
      seed: a.seed,
    },
  );
}
