import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  DISTILGPT2,
  GPT2_LARGE,
  GPT2_MEDIUM,
  GPT2_SMALL,
  makeGPT2Config,
  parseGPT2Config,
  toHFConfigJson,
} from '../../src/model/config.ts';

// The config.json of openai-community/gpt2 as published on the Hugging Face hub (copied by hand).
const HUB_GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: 'cls_index',
  summary_use_proj: true,
  task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } },
  vocab_size: 50257,
};

describe('parseGPT2Config', () => {
  test('the hub config of gpt2 parses to GPT2_SMALL', () => {
    expect(parseGPT2Config(JSON.stringify(HUB_GPT2))).toEqual(GPT2_SMALL);
  });

  test('a config.json written by transformers 5.18 save_pretrained (test/fixtures/weights/tiny)', () => {
    const cfg = parseGPT2Config(readFileSync('test/fixtures/weights/tiny/config.json', 'utf8'));
    // Values set in test/fixtures/scripts/make_weights.py.
    expect(cfg).toMatchObject({
      vocab_size: 64,
      n_positions: 32,
      n_embd: 16,
      n_layer: 2,
      n_head: 2,
      eos_token_id: 63,
    });
  });

  test('presets have the released shapes', () => {
    // Shapes from the config.json files of distilgpt2, gpt2-medium and gpt2-large on the hub.
    expect([DISTILGPT2.n_embd, DISTILGPT2.n_layer, DISTILGPT2.n_head]).toEqual([768, 6, 12]);
    expect([GPT2_MEDIUM.n_embd, GPT2_MEDIUM.n_layer, GPT2_MEDIUM.n_head]).toEqual([1024, 24, 16]);
    expect([GPT2_LARGE.n_embd, GPT2_LARGE.n_layer, GPT2_LARGE.n_head]).toEqual([1280, 36, 20]);
    for (const p of [GPT2_SMALL, DISTILGPT2, GPT2_MEDIUM, GPT2_LARGE]) {
      expect([p.vocab_size, p.n_positions]).toEqual([50257, 1024]);
      expect(Object.isFrozen(p)).toBe(true);
    }
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['missing field', { n_embd: undefined }, /"n_embd" is missing/],
    ['NaN', { n_layer: NaN }, /"n_layer" must be a positive integer/],
    ['negative', { vocab_size: -5 }, /"vocab_size" must be a positive integer, got -5/],
    ['fractional', { n_head: 1.5 }, /"n_head" must be a positive integer/],
    ['string number', { n_positions: '1024' }, /"n_positions" must be a positive integer, got "1024"/],
    ['heads do not divide', { n_embd: 100, n_head: 12 }, /n_embd 100 is not divisible by n_head 12/],
    ['model_type', { model_type: 'llama' }, /model_type must be "gpt2", got "llama"/],
    ['no model_type', { model_type: undefined }, /model_type must be "gpt2", got undefined/],
    ['eps zero', { layer_norm_epsilon: 0 }, /"layer_norm_epsilon" must be a positive number/],
    ['dropout negative', { resid_pdrop: -0.1 }, /"resid_pdrop" must be a non-negative number/],
    ['activation', { activation_function: 'relu' }, /activation_function "relu" is not supported/],
    ['n_inner', { n_inner: 1000 }, /"n_inner": 1000 is not supported/],
    ['untied head', { tie_word_embeddings: false }, /"tie_word_embeddings": false is not supported/],
    ['cross attention', { add_cross_attention: true }, /"add_cross_attention"/],
    ['layer-scaled attention', { scale_attn_by_inverse_layer_idx: true }, /scale_attn_by_inverse_layer_idx/],
    ['n_ctx differs', { n_ctx: 512 }, /n_ctx 512 differs from n_positions 1024/],
    ['bad eos', { eos_token_id: 'x' }, /"eos_token_id" must be a non-negative integer or null/],
  ];
  for (const [what, patch, message] of bad) {
    test(`refuses: ${what}`, () => {
      const json: Record<string, unknown> = { ...HUB_GPT2, ...patch };
      for (const k of Object.keys(patch)) if (patch[k] === undefined) delete json[k];
      // NaN cannot travel through JSON text, so objects are passed as they are.
      expect(() => parseGPT2Config(json)).toThrow(message);
    });
  }

  test('refuses text that is not JSON, and JSON that is not an object', () => {
    expect(() => parseGPT2Config('{"n_embd": 7')).toThrow(/config.json: not valid JSON/);
    expect(() => parseGPT2Config('[1, 2]')).toThrow(/not a JSON object/);
  });

  test('defaults follow transformers GPT2Config when optional fields are absent', () => {
    const cfg = makeGPT2Config({ vocab_size: 64, n_positions: 32, n_embd: 16, n_layer: 2, n_head: 2 });
    // transformers' GPT2Config.__init__ defaults.
    expect(cfg).toMatchObject({
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
      bos_token_id: 50256,
    });
    expect(cfg.eos_token_id).toBe(50256);
  });
});

describe('toHFConfigJson', () => {
  test('round-trips and carries every field of the hub gpt2 config', () => {
    const json = JSON.parse(toHFConfigJson(GPT2_SMALL)) as Record<string, unknown>;
    expect(parseGPT2Config(json)).toEqual(GPT2_SMALL);
    const hub: Record<string, unknown> = { ...HUB_GPT2 };
    delete hub.task_specific_params; // generation defaults, not part of the model
    expect(json).toMatchObject(hub);
    expect(json).toMatchObject({ tie_word_embeddings: true, n_inner: null, scale_attn_weights: true });
  });
});
