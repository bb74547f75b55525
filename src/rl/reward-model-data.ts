/**
 * Preference pairs tokenized as TRL 1.x's RewardTrainer._prepare_dataset does for a non-conversational
 * dataset, then laid out as its DataCollatorForPreference batches them:
 *
 *   chosen_ids   = tok(prompt + chosen + eos)      (EOS appended unless the text already ends with it;
 *   rejected_ids = tok(prompt + rejected + eos)     prompt and completion tokenized as one text)
 *   pairs with either side longer than max_length are dropped (filtered, not truncated)
 *   batch        = the n chosen rows then the n rejected rows, right-padded with pad_token_id
 *
 * Rows giving token ids (prompt_ids, chosen_ids, rejected_ids) are used as given: prompt_ids +
 * chosen_ids, no EOS added (the conformance form).
 */
import type { EncodeText, PreferencePair } from '../data/preferences.ts';
import { EOS_TOKEN } from '../model/tokenizer.ts';

export interface RewardPair {
  /** 1-based row of the source file. */
  row: number;
  chosen: number[];
  rejected: number[];
}

export interface TokenizedRewardPairs {
  pairs: RewardPair[];
  /** Rows dropped because a side was longer than max_length. */
  dropped: number[];
}

export function tokenizeRewardPairs(
  rows: readonly PreferencePair[],
  encode: EncodeText,
  { maxLength = null }: { maxLength?: number | null } = {},
): TokenizedRewardPairs {
  if (maxLength !== null && !(Number.isInteger(maxLength) && maxLength > 0))
    throw new RangeError(`max_length must be a positive integer or null, got ${maxLength}`);
  const withEos = (text: string) => (text.endsWith(EOS_TOKEN) ? text : text + EOS_TOKEN);
  const pairs: RewardPair[] = [];
  const dropped: number[] = [];
  for (const p of rows) {
    const pair: RewardPair =
      p.kind === 'ids'
        ? {
            row: p.row,
            chosen: [...p.promptIds, ...p.chosenIds],
            rejected: [...p.promptIds, ...p.rejectedIds],
          }
        : {
            row: p.row,
            chosen: encode(withEos(p.prompt + p.chosen)),
            rejected: encode(withEos(p.prompt + p.rejected)),
          };
    if (maxLength !== null && (pair.chosen.length > maxLength || pair.rejected.length > maxLength))
      dropped.push(p.row);
    else pairs.push(pair);
  }
  return { pairs, dropped };
}

/** The collator's row order for a batch of pairs: chosen rows 0..n-1, rejected rows n..2n-1. */
export function rewardBatchRows(pairs: readonly RewardPair[]): number[][] {
  return [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)];
}
