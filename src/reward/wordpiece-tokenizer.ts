/**
 * A BERT-family (WordPiece) tokenizer from a model folder's files, through @huggingface/tokenizers
 * (the pure-JS tokenizer inside transformers.js, whose PreTrainedTokenizer.encode is this
 * Tokenizer's encode(...).ids): the same tokenizer.json pipeline the Python `tokenizers` library
 * runs, so the ids equal Python's. Importing it rather than transformers.js keeps onnxruntime-node
 * and sharp (which transformers.js loads at import) off the WebGPU reward path. Built from file contents rather than from_pretrained, so it needs no
 * global transformers.js environment and works with files from any source.
 *
 * Without tokenizer.json, the folder's vocab.txt is turned into the tokenizer.json transformers'
 * BertConverter (convert_slow_tokenizer.py) would write for it: BertNormalizer (lowercase per
 * do_lower_case), BertPreTokenizer, WordPiece with "##" continuations and [UNK], and a
 * "[CLS] $A [SEP]" post-processor.
 */
import type { ClassifierTokenizer } from './onnx.ts';

export interface TokenizerFiles {
  /** tokenizer.json's text (preferred). */
  tokenizerJson?: string | null;
  /** tokenizer_config.json's text: special tokens, do_lower_case, model_max_length. */
  tokenizerConfigJson?: string | null;
  /** vocab.txt's text: one token per line in id order (used when there is no tokenizer.json). */
  vocabTxt?: string | null;
}

export type LoadedTokenizer = ClassifierTokenizer & { model_max_length?: unknown };

type Json = Record<string, unknown>;

/** BERT's special tokens, by tokenizer_config.json key, with their default strings. */
const SPECIAL_DEFAULTS = {
  unk_token: '[UNK]',
  sep_token: '[SEP]',
  pad_token: '[PAD]',
  cls_token: '[CLS]',
  mask_token: '[MASK]',
} as const;

function parseJson(text: string, file: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`${file} is not a JSON object`);
  return v as Json;
}

/** A special token's string from tokenizer_config.json (a string or an AddedToken object). */
function specialToken(config: Json, key: keyof typeof SPECIAL_DEFAULTS): string {
  const v = config[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string')
    return (v as Json).content as string;
  return SPECIAL_DEFAULTS[key];
}

/** The tokenizer.json BertConverter writes for a vocab.txt and tokenizer_config.json. */
export function bertTokenizerJson(vocabTxt: string, config: Json): Json {
  const vocab: Record<string, number> = {};
  const lines = vocabTxt.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, id) => {
    const token = line.replace(/\r$/, '');
    if (!(token in vocab)) vocab[token] = id;
  });
  const idOf = (key: keyof typeof SPECIAL_DEFAULTS) => {
    const token = specialToken(config, key);
    if (!(token in vocab)) throw new Error(`vocab.txt has no ${key} ${JSON.stringify(token)}`);
    return { token, id: vocab[token] };
  };
  const cls = idOf('cls_token');
  const sep = idOf('sep_token');
  const added = (Object.keys(SPECIAL_DEFAULTS) as (keyof typeof SPECIAL_DEFAULTS)[])
    .map((k) => specialToken(config, k))
    .filter((t) => t in vocab)
    .map((content) => ({
      id: vocab[content],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }))
    .sort((a, b) => a.id - b.id);
  const special = (t: { token: string }) => ({ SpecialToken: { id: t.token, type_id: 0 } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: config.tokenize_chinese_chars ?? true,
      strip_accents: config.strip_accents ?? null,
      lowercase: config.do_lower_case ?? true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(cls), { Sequence: { id: 'A', type_id: 0 } }, special(sep)],
      pair: [
        special(cls),
        { Sequence: { id: 'A', type_id: 0 } },
        special(sep),
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: sep.token, type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(
        [cls, sep].map((t) => [t.token, { id: t.token, ids: [t.id], tokens: [t.token] }]),
      ),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: specialToken(config, 'unk_token'),
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

/**
 * The tokenizer of a BERT-family folder: tokenizer.json (+ tokenizer_config.json), or vocab.txt
 * (+ tokenizer_config.json) when there is no tokenizer.json. The tokenizer library is imported
 * here, on first use, not with this module.
 */
export async function loadWordPieceTokenizer(files: TokenizerFiles): Promise<LoadedTokenizer> {
  const config = files.tokenizerConfigJson
    ? parseJson(files.tokenizerConfigJson, 'tokenizer_config.json')
    : {};
  let json: Json;
  if (files.tokenizerJson) {
    json = parseJson(files.tokenizerJson, 'tokenizer.json');
  } else if (files.vocabTxt) {
    json = bertTokenizerJson(files.vocabTxt, config);
    // transformers.js reads the special tokens from the config; vocab.txt folders may omit them.
    for (const k of Object.keys(SPECIAL_DEFAULTS) as (keyof typeof SPECIAL_DEFAULTS)[]) {
      config[k] = specialToken(config, k);
    }
  } else {
    throw new Error('the folder has neither tokenizer.json nor vocab.txt');
  }
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const tokenizer = new Tokenizer(json, config);
  // As transformers.js' PreTrainedTokenizer: pad token from pad_token, else eos_token; right padding.
  const padToken = configToken(config, 'pad_token') ?? configToken(config, 'eos_token');
  return {
    encode: (text, { add_special_tokens }) => tokenizer.encode(text, { add_special_tokens }).ids,
    pad_token_id: padToken === null ? null : (tokenizer.token_to_id(padToken) ?? null),
    padding_side: typeof config.padding_side === 'string' ? config.padding_side : 'right',
    model_max_length: config.model_max_length ?? Infinity,
  };
}

/** A token named in tokenizer_config.json (a string or an AddedToken object), or null. */
function configToken(config: Json, key: string): string | null {
  const v = config[key];
  if (typeof v === 'string' && v) return v;
  if (typeof v === 'object' && v !== null && typeof (v as Json).content === 'string')
    return (v as Json).content as string;
  return null;
}
