/**
 * The CLI against careless or hostile arguments: each case exits non-zero within a time limit with
 * one clear line (no stack trace, no Node internals), and leaves the previous complete output or a
 * new complete one. The bundle (dist-cli/cli.mjs) is spawned as users run it.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decimalNumber, joinNegativeValues, parseCliArgs, positiveInt } from '../../src/cli/args.ts';
import { UsageError } from '../../src/cli/command.ts';

const bin = 'bin/rlhf-studio.mjs';
const MODEL = 'test/fixtures/gpt2/noprefix/model';
const REWARD = 'test/fixtures/reward/tiny-distilbert';
const PROMPTS = 'test/fixtures/prompts/prompts.txt';

/** Runs the CLI; a run past `seconds` is killed and fails the test as a hang. */
function cli(args: string[], seconds = 60) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: seconds * 1000,
  });
  const wall = (performance.now() - t0) / 1000;
  expect(r.signal, `rlhf-studio ${args.join(' ')} hung past ${seconds} s`).toBeNull();
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wall };
}

/** A clear one-line error: no stack frames, no Node error codes. */
function expectClearError(stderr: string, message: RegExp): void {
  expect(stderr).toMatch(message);
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr).not.toMatch(/ERR_[A-Z_]+|RangeError|TypeError/);
}

const trainArgs = (...more: string[]) => [
  'train',
  '--model',
  MODEL,
  '--reward',
  REWARD,
  '--prompts',
  PROMPTS,
  '--steps',
  '1',
  ...more,
];

describe('--out', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-robust-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'keep me');

  test.each([
    ['export', ['export', '--model', MODEL]],
    ['train', trainArgs()],
  ])('%s: /proc, an existing file and "" are refused at once', (_name, args) => {
    for (const [out, message] of [
      ['/proc/rlhf-studio-test', /cannot write \/proc\/rlhf-studio-test: ENOENT/],
      [file, /exists and is a file/],
      ['', /is empty/],
    ] as const) {
      const r = cli([...args, '--out', out], 30);
      expect(r.status, r.stderr).toBe(2);
      expectClearError(r.stderr, message);
    }
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  test('export over an older model folder replaces it whole', () => {
    const out = join(dir, 'model');
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), '{}');
    writeFileSync(join(out, 'pytorch_model.bin'), 'stale');
    writeFileSync(join(out, 'pytorch_model.bin.index.json'), '{}');
    const r = cli(['export', '--model', MODEL, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'merges.txt',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

describe('kill -9 during export', () => {
  /** Starts export over `out` and SIGKILLs it after `ms`; resolves when it is gone. */
  const killedExport = (out: string, ms: number) =>
    new Promise<void>((done) => {
      // RLHF_STUDIO_CHILD: the bin runs the command itself instead of in a child that a kill would miss.
      const child = spawn(process.execPath, [bin, 'export', '--model', MODEL, '--out', out], {
        stdio: 'ignore',
        env: { ...process.env, RLHF_STUDIO_CHILD: '1' },
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      child.on('exit', () => (clearTimeout(timer), done()));
    });

  test('leaves the previous complete folder or the new complete one, never a mix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-robust-kill-'));
    const ref = join(dir, 'ref');
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, 'export', '--model', MODEL, '--out', ref], {
      env: { ...process.env, RLHF_STUDIO_CHILD: '1' },
    });
    expect(r.status).toBe(0);
    const life = performance.now() - t0;
    const fresh = Object.fromEntries(readdirSync(ref).map((f) => [f, readFileSync(join(ref, f)).length]));
    const out = join(dir, 'model');
    const previous = { 'config.json': 2, 'pytorch_model.bin': 5 };
    const seen = new Set<string>();
    // Kills spread over the second half of the process's life (start, load, write, rename) and past it.
    for (let i = 0; i < 8; i++) {
      const ms = life * (0.5 + (0.7 * i) / 7);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out);
      writeFileSync(join(out, 'config.json'), '{}');
      writeFileSync(join(out, 'pytorch_model.bin'), 'stale');
      await killedExport(out, ms);
      // Killed between its two renames, the previous folder is whole under a hidden name; the next
      // write puts it back.
      const aside = readdirSync(dir).find((f) => f.startsWith('.model.old-'));
      const at = existsSync(out) ? out : join(dir, aside ?? 'nothing');
      const now = Object.fromEntries(readdirSync(at).map((f) => [f, readFileSync(join(at, f)).length]));
      expect([previous, fresh], `after a kill at ${ms} ms`).toContainEqual(now);
      seen.add(JSON.stringify(now) === JSON.stringify(previous) ? 'previous' : 'new');
    }
    console.log(`[kill] outcomes: ${[...seen].join(', ')}`);
  }, 120_000);
});

describe('numbers', () => {
  test('a negative value is read as a value, then judged by the config', () => {
    const r = cli(trainArgs('--learning_rate', '-1'), 30);
    expect(r.status).toBe(2);
    expectClearError(r.stderr, /learning_rate: must be a finite number > 0, got -1\n/);
    expect(r.stderr).not.toMatch(/argument is ambiguous/);
  });

  test.each([
    ['--batch_size', '0x4'],
    ['--batch_size', '4.5'],
    ['--learning_rate', '1_0'],
    ['--learning_rate', 'Infinity'],
    ['--steps', '1e1'],
  ])('%s %s is refused', (flag, value) => {
    const r = cli([...trainArgs(), flag, value], 30);
    expect(r.status).toBe(2);
    expectClearError(r.stderr, new RegExp(`${flag.slice(2)}.*${value.replace('.', '\\.')}`));
  });
});

describe('limits and failures during training (WebGPU)', () => {
  const DEMO = 'public/models/mini-imdb';
  const demoArgs = (...more: string[]) => [
    'train',
    '--model',
    `${DEMO}/policy`,
    '--reward',
    `${DEMO}/reward`,
    '--prompts',
    PROMPTS,
    '--quiet',
    ...more,
  ];

  test.each(['65536', '1000000'])('--batch_size %s is refused with the limit that binds', (b) => {
    const r = cli(demoArgs('--steps', '1', '--batch_size', b, '--mini_batch_size', b), 120);
    expect(r.status, r.stderr).toBe(2);
    // The demo policy: C 64, NH 4, T = 7 + 15 = 22 -> max(4*22*22, 4*22*64) * 4 = 22528 bytes a sequence.
    expectClearError(
      r.stderr,
      new RegExp(`--batch_size ${b} is more than this adapter allows for this model, \\d+: `),
    );
  });

  test('a model without the GPT-2 vocabulary is refused before training', () => {
    const r = cli(
      [
        'train',
        '--model',
        'test/fixtures/weights/tiny',
        '--reward',
        REWARD,
        '--prompts',
        PROMPTS,
        '--steps',
        '1',
      ],
      120,
    );
    expect(r.status).toBe(2);
    expectClearError(r.stderr, /has a vocabulary of 64 tokens; train tokenizes prompts with GPT-2's 50257/);
  });

  test('--learning_rate 1e9: a non-finite loss ends the metrics with a failed record; --out keeps the previous model', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-robust-lr-'));
    const out = join(dir, 'model');
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), '{"previous": true}');
    const metrics = join(dir, 'metrics.jsonl');
    const r = cli(
      demoArgs(
        '--steps',
        '3',
        '--batch_size',
        '2',
        '--mini_batch_size',
        '2',
        '--learning_rate',
        '1e9',
        '--response-max-length',
        '6',
        '--out',
        out,
        '--metrics',
        metrics,
      ),
      300,
    );
    expect(r.status, r.stderr).toBe(1);
    expectClearError(
      r.stderr,
      /training stopped after \d new steps \(at PPO step \d\): NonFiniteError: non-finite/,
    );
    expect(r.stderr).toContain(`${out} was not written`);
    const lines = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const end = lines.at(-1) as Record<string, unknown>;
    expect(end.end).toBe('failed');
    expect(end.error).toMatch(/non-finite/);
    expect(end.steps).toBe(lines.length - 1);
    expect(lines.slice(0, -1).map((l) => l.step)).toEqual([...Array(lines.length - 1).keys()]);
    expect(readdirSync(out)).toEqual(['config.json']);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe('{"previous": true}');
    expect(readdirSync(dir).sort()).toEqual(['metrics.jsonl', 'model']);
  }, 300_000);
});

describe('the argument layer', () => {
  const options = { lr: { type: 'string' }, quiet: { type: 'boolean' } } as const;

  test('a dash-number after a value option is its value; other dashes stay options', () => {
    expect(joinNegativeValues(['--lr', '-1e-3', '--quiet'], options)).toEqual(['--lr=-1e-3', '--quiet']);
    expect(joinNegativeValues(['--lr', '-.5'], options)).toEqual(['--lr=-.5']);
    expect(joinNegativeValues(['--quiet', '-1'], options)).toEqual(['--quiet', '-1']);
    expect(joinNegativeValues(['--lr', '--quiet'], options)).toEqual(['--lr', '--quiet']);
    expect(parseCliArgs({ args: ['--lr', '-2'], options }).values.lr).toBe('-2');
  });

  test.each(['4', '-1.5', '3e-4', '.5', '+2', '1E3'])('%s is a decimal number', (raw) => {
    expect(decimalNumber('--x', raw)).toBe(Number(raw));
  });

  test.each(['0x4', '0b1', '0o7', '1_000', 'Infinity', 'NaN', '', ' 4', '4 ', '1e999', '--4'])(
    '%j is not a decimal number',
    (raw) => {
      expect(() => decimalNumber('--x', raw)).toThrow(UsageError);
    },
  );

  test.each(['0', '-1', '1.0', '1e2', '0x10', '9007199254740993'])('%j is not a positive integer', (raw) => {
    expect(() => positiveInt('--n', raw)).toThrow(/--n takes a positive integer/);
  });
});
