/** `--prompts FILE` for the CLI: the user's prompt file as a PromptSet, as `train` and `eval` build queries. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PromptSet } from '../data/prompts.ts';
import { parseUserPrompts, promptFormatFromName } from '../data/user-prompts.ts';
import { decode, encode } from '../model/tokenizer.ts';

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
  const texts = await parseUserPrompts(readFileSync(a.path), {
    format: promptFormatFromName(a.path),
    column: a.column,
    name: basename(a.path),
  });
  return new PromptSet(
    texts.filter((t) => [...t].length > a.minChars),
    { encode, decode },
    {
      minTokens: a.minTokens,
      maxTokensExclusive: a.maxTokensExclusive,
      minReviewChars: a.minChars,
      seed: a.seed,
    },
  );
}
