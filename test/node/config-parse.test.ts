/**
 * The one PPOConfig text parser (src/rl/config.ts) that the CLI's options, the studio's form and its
 * page link share: decimal numbers only, one message per bad field, then TRL's cross-field check;
 * and the TRL sentiment preset both start from. Expected values are TRL 0.9.6's PPOConfig defaults
 * and examples/scripts/ppo.py's LengthSampler(2, 8) / LengthSampler(4, 16), len(review) > 200.
 */
import { describe, expect, test } from 'vitest';
import {
  TRL_DEFAULTS,
  TRL_SENTIMENT,
  fieldKind,
  parsePPOConfig,
  parseRolloutSpec,
} from '../../src/rl/config.ts';
import { TRL_SENTIMENT_ROLLOUT } from '../../src/rl/trainer.ts';

describe('PPOConfig from text', () => {
  test('fields by their TRL default type', () => {
    expect(parsePPOConfig({ batch_size: '16', mini_batch_size: '8', learning_rate: '3e-4' }).config).toEqual({
      ...TRL_DEFAULTS,
      batch_size: 16,
      mini_batch_size: 8,
      learning_rate: 3e-4,
    });
    expect(
      parsePPOConfig({ max_grad_norm: '0.5', score_clip: 'none', adap_kl_ctrl: 'false' }).config,
    ).toMatchObject({ max_grad_norm: 0.5, score_clip: null, adap_kl_ctrl: false });
    expect([fieldKind('batch_size'), fieldKind('cliprange'), fieldKind('max_grad_norm')]).toEqual([
      'integer',
      'number',
      'number-or-none',
    ]);
  });

  test.each([
    ['batch_size', '0x4', 'must be a number, got "0x4"'],
    ['batch_size', '', 'is required'],
    ['learning_rate', 'Infinity', 'must be a number, got "Infinity"'],
    ['learning_rate', '-1', 'must be a finite number > 0, got -1'],
    ['ppo_epochs', '1.5', 'must be an integer >= 1, got 1.5'],
    ['use_score_norm', 'yes', 'must be true or false, got "yes"'],
    ['kl_penalty', 'l2', 'must be one of kl, abs, mse, full, got l2'],
    ['learningRate', '1', 'not a PPOConfig field (TRL names are snake_case)'],
  ])('%s = %j is refused: %s', (field, raw, message) => {
    const r = parsePPOConfig({ [field]: raw });
    expect(r.config).toBeNull();
    expect(r.errors).toEqual([{ field, message }]);
  });

  test('every bad field is reported, then the cross-field check on batch_size', () => {
    expect(parsePPOConfig({ gamma: '2', lam: 'x' }).errors.map((e) => e.field)).toEqual(['gamma', 'lam']);
    expect(parsePPOConfig({ batch_size: '6', mini_batch_size: '4' }).errors).toEqual([
      {
        field: 'batch_size',
        message: 'must be a multiple of mini_batch_size * gradient_accumulation_steps = 4, got 6',
      },
    ]);
  });
});

describe('TRL sentiment preset and rollout text', () => {
  test("TRL's gpt2-sentiment example", () => {
    expect(TRL_SENTIMENT.config).toBe(TRL_DEFAULTS);
    expect(TRL_SENTIMENT.rollout).toEqual({
      query_min_tokens: 2,
      query_max_tokens: 8,
      response_min_length: 4,
      response_max_length: 16,
      min_prompt_chars: 200,
    });
    expect(TRL_SENTIMENT_ROLLOUT).toEqual({ responseMinLength: 4, responseMaxLength: 16, padId: 50256 });
  });

  test('lengths are integers, max exclusive above min', () => {
    expect(
      parseRolloutSpec({ response_max_length: '8' }, TRL_SENTIMENT.rollout).rollout?.response_max_length,
    ).toBe(8);
    expect(parseRolloutSpec({ query_min_tokens: '0' }, TRL_SENTIMENT.rollout).errors).toEqual([
      { field: 'query_min_tokens', message: 'must be an integer >= 1, got "0"' },
    ]);
    expect(parseRolloutSpec({ response_max_length: '4' }, TRL_SENTIMENT.rollout).errors).toEqual([
      { field: 'response_max_length', message: 'must exceed response_min_length (it is exclusive)' },
    ]);
  });
});
