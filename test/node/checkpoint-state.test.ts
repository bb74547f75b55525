/**
 * The checkpoint state file (src/rl/checkpoint.ts): a serialise/parse round trip keeps every number
 * bit for bit, and every damaged field is refused with its path named. The RNG's state resumes its
 * stream exactly. No GPU.
 */
import { describe, expect, test } from 'vitest';
import {
  CheckpointError,
  parseCheckpointState,
  serialiseCheckpointState,
  type CheckpointState,
} from '../../src/rl/checkpoint.ts';
import { TRL_DEFAULTS } from '../../src/rl/config.ts';
import { mulberry32 } from '../../src/util/random.ts';

const STATE: CheckpointState<{ note: string }> = {
  format: 'rlhf-studio-checkpoint',
  version: 2,
  step: 3,
  savedAt: '2026-01-01T00:00:00.000Z',
  session: {
    trainer: {
      step: 3,
      // Doubles whose shortest decimal forms are long: JSON must keep them exactly.
      klCoef: 0.1 + 0.2,
      rng: 0xfedcba98,
      scoreMoments: { mean: -1 / 3, std: Math.SQRT2, var: 2.0000000000000004, count: 12.000000000000002 },
    },
    sampleCalls: 3,
    dropoutPasses: 12,
  },
  adamStep: 6,
  gpt2Config: '{}',
  ppo: { ...TRL_DEFAULTS, batch_size: 4, mini_batch_size: 2 },
  rollout: { responseMinLength: 4, responseMaxLength: 16, padId: 50256 },
  lora: { r: 4, alpha: 8, dropout: 0.05, targetModules: ['c_attn', 'c_fc'], useRslora: true },
  totalSteps: 10,
  target: 'negative',
  marks: [{ fromStep: 2, target: 'negative' }],
  metrics: [
    {
      step: 0,
      stats: { 'env/reward_mean': Math.PI / 7, 'env/reward_std': NaN },
      target: 'positive',
      seconds: 1.5,
      tokens: 40,
      gpuBytes: 1024,
      gpuPeakBytes: 2048,
    },
  ],
  app: { note: 'x' },
};

const parseApp = (v: unknown, at: string) => {
  if (typeof v !== 'object' || v === null || typeof (v as { note?: unknown }).note !== 'string')
    throw new CheckpointError(`${at}.note must be a string`);
  return v as { note: string };
};

const text = () => new TextDecoder().decode(serialiseCheckpointState(STATE));

/** The state with one field replaced (path of keys), as JSON text. */
function damaged(path: (string | number)[], value: unknown): string {
  const o = JSON.parse(text()) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = o;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  at[path.at(-1)!] = value;
  return JSON.stringify(o);
}

describe('checkpoint state file', () => {
  test('round-trips every number exactly (a NaN stat comes back as NaN)', () => {
    const back = parseCheckpointState(text(), parseApp);
    expect(back).toEqual(STATE);
    expect(Object.is(back.session.trainer.klCoef, 0.1 + 0.2)).toBe(true);
    expect(Number.isNaN(back.metrics[0].stats['env/reward_std'])).toBe(true);
  });

  test.each([
    [['format'], 'x', /state.format must be "rlhf-studio-checkpoint"/],
    [['version'], 1, /state.version must be 2, got 1/],
    [['step'], -1, /state.step must be an integer in \[0,/],
    [
      ['session', 'trainer', 'rng'],
      2 ** 32,
      /state.session.trainer.rng must be an integer in \[0, 4294967295\]/,
    ],
    [
      ['session', 'trainer', 'klCoef'],
      '0.2',
      /state.session.trainer.klCoef must be a finite number, got "0.2"/,
    ],
    [['session', 'trainer', 'step'], 2, /state.session.trainer.step must be state.step \(3\)/],
    [['session', 'trainer', 'scoreMoments', 'count'], null, /scoreMoments.count must be a finite number/],
    [['session', 'sampleCalls'], 1.5, /state.session.sampleCalls must be an integer/],
    [['ppo', 'learning_rate'], -1, /state.ppo.learning_rate: .*must be a finite number > 0/],
    [['rollout', 'responseMaxLength'], 2, /state.rollout.responseMaxLength must be > responseMinLength/],
    [['metrics', 0, 'stats', 'env/reward_mean'], 'high', /state.metrics\[0\].stats\["env\/reward_mean"\]/],
    [['marks', 0, 'target'], 'neutral', /state.marks\[0\].target must be one of positive, negative/],
    [['lora', 'r'], 0, /state.lora.r must be an integer in \[1,/],
    [['lora', 'targetModules', 1], 'c_xx', /state.lora: lora_target_modules: "c_xx" is not a GPT-2 Conv1D/],
    [['lora', 'useRslora'], 'yes', /state.lora.useRslora must be true or false/],
    [['app', 'note'], 3, /state.app.note must be a string/],
  ] as const)('refuses %j = %j', (path, value, message) => {
    expect(() => parseCheckpointState(damaged([...path], value), parseApp)).toThrow(message);
  });

  test('a state without lora (written before LoRA checkpoints) is a full fine-tuning run', () => {
    const o = JSON.parse(text()) as Record<string, unknown>;
    delete o.lora;
    expect(parseCheckpointState(JSON.stringify(o), parseApp).lora).toBeNull();
  });

  test('refuses a file that is not JSON', () => {
    expect(() => parseCheckpointState(text().slice(0, 40), parseApp)).toThrow(/state.json is not JSON/);
  });
});

describe('mulberry32 state', () => {
  test('setting the state resumes the stream exactly', () => {
    const a = mulberry32(42);
    for (let i = 0; i < 5; i++) a();
    const saved = a.state;
    const next = [a(), a(), a()];
    const b = mulberry32(0);
    b.state = saved;
    expect([b(), b(), b()]).toEqual(next);
    expect(() => (b.state = -1)).toThrow(RangeError);
  });
});
