import { describe, expect, it } from 'vitest';
import { evalCsv } from '../../src/store/evaluate.ts';
import { preferenceJsonl, preferencePairs, type FeedbackRecord } from '../../src/store/feedback.ts';
import type { EvalReport } from '../../src/rl/evaluate.ts';
import { TRL_EVAL } from '../../src/rl/evaluate.ts';

const rec = (first: string, second: string, choice: 0 | 1 | 2): FeedbackRecord => ({
  prompt: 'The film',
  first,
  second,
  origins: ['policy', 'reference'],
  choice,
  at: '2026-01-01T00:00:00.000Z',
});

describe('feedback choices as TRL preference pairs', () => {
  // Source: TRL's preference format is {prompt, chosen, rejected}; choice 1 prefers the left text.
  it('puts the picked side in chosen and leaves ties out', () => {
    const records = [rec(' is great', ' is bad', 1), rec(' was dull', ' was fun', 2), rec(' a', ' b', 0)];
    expect(preferencePairs(records)).toEqual([
      { prompt: 'The film', chosen: ' is great', rejected: ' is bad' },
      { prompt: 'The film', chosen: ' was fun', rejected: ' was dull' },
    ]);
    const lines = preferenceJsonl(records).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1])).toEqual({ prompt: 'The film', chosen: ' was fun', rejected: ' was dull' });
  });
});

describe('evaluation CSV', () => {
  // Source: RFC 4180 quoting (fields with commas, quotes or line breaks are quoted, quotes doubled).
  it('writes one row per query and quotes fields that need it', () => {
    const resp = (text: string, reward: number) => ({ ids: [], text, reward, kl: 0.5, tokens: 3 });
    const report: EvalReport = {
      settings: TRL_EVAL,
      models: [
        { name: 'reference', mean: 1, median: 1, std: 0, kl: 0, responseTokens: 3 },
        { name: 'policy', mean: 2, median: 2, std: 0, kl: 0.5, responseTokens: 3 },
      ],
      rows: [{ query: 'Hi, "you"', maxNewTokens: 5, responses: [resp('a\nb', 1), resp('c', 2)] }],
    };
    const lines = evalCsv(report).split('\n');
    expect(lines[0]).toBe(
      'query,max_new_tokens,reference response,reference reward,reference kl,policy response,policy reward,policy kl',
    );
    expect(lines[1]).toBe('"Hi, ""you""",5,"a');
    expect(lines[2]).toBe('b",1,0.5,c,2,0.5');
    expect(lines[4]).toBe('model,mean,median,std,kl,response_tokens');
    expect(lines[6]).toBe('policy,2,2,0,0.5,3');
  });
});
