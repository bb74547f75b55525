/**
 * PPO queries from IMDb reviews, as TRL's gpt2-sentiment example builds them:
 *
 *   ds = load_dataset("stanfordnlp/imdb", split="train").rename_columns({"text": "review"})
 *   ds = ds.filter(lambda x: len(x["review"]) > 200)
 *   input_size = LengthSampler(2, 8)            # np.random.choice(range(2, 8)): 2..7 tokens
 *   sample["input_ids"] = tokenizer.encode(sample["review"])[: input_size()]
 *   sample["query"] = tokenizer.decode(sample["input_ids"])
 *
 * and a DataLoader with shuffle=True. The random draws are ours (src/util/random.ts, mulberry32),
 * not numpy's: a seed reproduces our prompts, not TRL's.
 */
import { mixSeed, mulberry32, randRange, shuffleInPlace } from '../util/random.ts';
import { readParquetText } from './parquet-text.ts';

/** The IMDb train split on the Hugging Face Hub (25,000 reviews; columns text, label). */
export const IMDB_TRAIN = {
  repo: 'stanfordnlp/imdb',
  file: 'plain_text/train-00000-of-00001.parquet',
  url: 'https://huggingface.co/datasets/stanfordnlp/imdb/resolve/main/plain_text/train-00000-of-00001.parquet',
};

export interface PromptSettings {
  /** Shortest query, in tokens. */
  minTokens: number;
  /** One past the longest query (exclusive, like LengthSampler's max_value). */
  maxTokensExclusive: number;
  /** Reviews are kept when longer than this many characters (Unicode code points, as Python's len). */
  minReviewChars: number;
  /** Seeds query lengths and the per-epoch order. */
  seed: number;
}

/** TRL's gpt2-sentiment example: LengthSampler(2, 8), len(review) > 200. */
export const TRL_IMDB_PROMPTS: PromptSettings = {
  minTokens: 2,
  maxTokensExclusive: 8,
  minReviewChars: 200,
  seed: 0,
};

/** GPT-2 BPE: text to token ids (e.g. gpt-tokenizer's r50k_base encode). */
export type Encode = (text: string) => number[];
/** GPT-2 BPE: token ids to text. */
export type Decode = (tokens: number[]) => string;
/** The first n ids of encode(text), reading a bounded prefix of text (tokenizer.ts encodePrefix). */
export type EncodePrefix = (text: string, n: number) => number[];

export interface PromptTokenizer {
  encode: Encode;
  decode?: Decode;
  /** When given, queries read only a bounded prefix of each review (a 50 MB line stays cheap). */
  encodePrefix?: EncodePrefix;
}

/** Length in Unicode code points, what Python's len() counts (JS .length counts UTF-16 units). */
export function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Reads the `text` column of an IMDb-style parquet file (bytes). */
export async function readReviews(bytes: Uint8Array, name = 'the IMDb parquet file'): Promise<string[]> {
  return (await readParquetText(bytes, { candidates: ['text', 'review'], name })).texts;
}

/** Reviews longer than `minChars` code points (TRL: `len(x["review"]) > 200`). */
export function filterReviews(reviews: string[], minChars: number): string[] {
  return reviews.filter((r) => codePointLength(r) > minChars);
}

export interface Prompt {
  /** Index into the PromptSet's (filtered) reviews. */
  review: number;
  /** The first k GPT-2 tokens of the review, k in [minTokens, maxTokensExclusive). */
  tokens: number[];
  /** decode(tokens), when the set has a decoder. */
  text?: string;
}

/**
 * An endless, epoch-shuffled stream of queries over `reviews` (already filtered). Query i is from
 * epoch floor(i / N): each epoch is a fresh shuffle, like a DataLoader with shuffle=True. The
 * length k of each review's query is drawn once, in review order (TRL's dataset.map), so a review
 * gives the same query in every epoch. A review's query is encoded once, when first asked for, from
 * a bounded prefix of the review when the tokenizer has encodePrefix.
 */
export class PromptSet {
  readonly reviews: string[];
  readonly settings: PromptSettings;
  /** Query length per review. */
  readonly lengths: Uint8Array;
  private readonly prefix: EncodePrefix;
  private readonly decode?: Decode;
  private orders = new Map<number, Uint32Array>();
  /** Query ids per review, once encoded. */
  private readonly queries: (number[] | undefined)[];

  constructor(reviews: string[], tokenizer: PromptTokenizer, settings: PromptSettings) {
    if (reviews.length === 0) throw new Error('no reviews to draw prompts from');
    if (!(settings.minTokens >= 1 && settings.maxTokensExclusive > settings.minTokens)) {
      throw new Error(`bad query length range [${settings.minTokens}, ${settings.maxTokensExclusive})`);
    }
    this.reviews = reviews;
    this.settings = settings;
    const { encode, encodePrefix } = tokenizer;
    this.prefix = encodePrefix ?? ((text, n) => encode(text).slice(0, n));
    this.decode = tokenizer.decode;
    this.queries = new Array<number[] | undefined>(reviews.length);
    const next = mulberry32(mixSeed(settings.seed, 1));
    this.lengths = Uint8Array.from(reviews, () =>
      randRange(next, settings.minTokens, settings.maxTokensExclusive),
    );
  }

  /** The longest query, in tokens: query lengths are drawn from [minTokens, maxTokensExclusive). */
  get longestQuery(): number {
    return this.settings.maxTokensExclusive - 1;
  }

  /** Number of reviews, i.e. queries per epoch. */
  get length(): number {
    return this.reviews.length;
  }

  /** Review order of an epoch: a seeded shuffle of 0..N-1. */
  order(epoch: number): Uint32Array {
    let o = this.orders.get(epoch);
    if (!o) {
      const idx = Array.from({ length: this.reviews.length }, (_, i) => i);
      o = Uint32Array.from(shuffleInPlace(idx, mulberry32(mixSeed(this.settings.seed, 2, epoch))));
      if (this.orders.size > 4) this.orders.clear();
      this.orders.set(epoch, o);
    }
    return o;
  }

  /** The query for review `r`. */
  query(r: number): Prompt {
    const tokens = (this.queries[r] ??= this.prefix(this.reviews[r], this.lengths[r]));
    return { review: r, tokens: tokens.slice(), text: this.decode?.(tokens) };
  }

  /** The i-th query of the stream (i >= 0). */
  get(i: number): Prompt {
    const N = this.reviews.length;
    return this.query(this.order(Math.floor(i / N))[i % N]);
  }

  /** Queries step*B .. step*B + B - 1: the batch for PPO step `step`. */
  batch(step: number, B: number): Prompt[] {
    return Array.from({ length: B }, (_, b) => this.get(step * B + b));
  }
}

/** IMDb parquet bytes -> PromptSet with TRL's filter and length rule. */
export async function imdbPromptSet(
  bytes: Uint8Array,
  tokenizer: PromptTokenizer,
  settings: PromptSettings = TRL_IMDB_PROMPTS,
): Promise<PromptSet> {
  const reviews = filterReviews(await readReviews(bytes), settings.minReviewChars);
  return new PromptSet(reviews, tokenizer, settings);
}
