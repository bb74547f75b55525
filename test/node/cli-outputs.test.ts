/**
 * Every training and dump command on the one argument/output layer (src/cli/args.ts,
 * src/cli/atomic-folder.ts): an unusable output path or a non-decimal number is a usage error (exit 2,
 * one clear line) before any model is read. The runs below name a model folder that does not exist,
 * so an error about the output or the number proves it came first. No GPU work.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { writeFolderAtomic } from '../../src/cli/atomic-folder.ts';
import { UsageError } from '../../src/cli/command.ts';
import { parseFields } from '../../src/cli/training-options.ts';
import { TRAINING_ARGS_DEFAULTS } from '../../src/rl/training-args.ts';

const bin = 'bin/rlhf-studio.mjs';
const dir = mkdtempSync(join(tmpdir(), 'cli-outputs-'));
const NO_MODEL = join(dir, 'no-such-model');
const A_FILE = join(dir, 'a-file');
writeFileSync(A_FILE, 'not a folder\n');
const A_FOLDER = join(dir, 'a-folder');
mkdirSync(A_FOLDER);

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  expect(r.signal, `rlhf-studio ${args.join(' ')} hung`).toBeNull();
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  return r;
}

/** The data flag and a file for it, per command (the file need not exist: the checks come first). */
const TRAINERS: [string, string[]][] = [
  ['dpo', ['--model', NO_MODEL, '--pairs', join(dir, 'pairs.jsonl')]],
  ['reward-train', ['--model', NO_MODEL, '--pairs', join(dir, 'pairs.jsonl')]],
  ['sft', ['--model', NO_MODEL, '--data', join(dir, 'data.jsonl')]],
];

describe.each(TRAINERS)('rlhf-studio %s', (cmd, base) => {
  test('--out an existing file: exit 2 naming it, before any model is read', () => {
    const r = cli([cmd, ...base, '--out', A_FILE]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--out ${A_FILE} exists and is a file`);
  });

  test('--out missing or empty: exit 2', () => {
    expect(cli([cmd, ...base]).stderr).toMatch(/--out is required/);
    const r = cli([cmd, ...base, '--out', '']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out is empty/);
  });

  test('--metrics a folder: exit 2 before any model is read', () => {
    const r = cli([cmd, ...base, '--out', join(dir, `${cmd}-out`), '--metrics', A_FOLDER]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--metrics ${A_FOLDER} is a folder`);
  });

  // 1_0, Infinity and the rest: parseFields below, the same rule.
  test('--learning_rate 0x4 is refused (exit 2)', () => {
    const r = cli([cmd, ...base, '--out', join(dir, `${cmd}-out`), '--learning_rate', '0x4']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--learning_rate takes a decimal number, got "0x4"');
  });

  test('--learning_rate -1 reaches the config check (not parseArgs\' "ambiguous")', () => {
    const r = cli([cmd, ...base, '--out', join(dir, `${cmd}-out`), '--learning_rate', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/learning_rate must be a number >= 0, got -1/);
  });

  test('--max_steps 1e1 is refused: counts are written as integers', () => {
    const r = cli([cmd, ...base, '--out', join(dir, `${cmd}-out`), '--max_steps', '1e1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--max_steps takes an integer, got "1e1"');
  });
});

describe('dump, eval and profile outputs', () => {
  test('dpo-dump and reward-dump: --out a folder is refused before loading', () => {
    const dpo = cli([
      'dpo-dump',
      '--model',
      NO_MODEL,
      '--ref',
      NO_MODEL,
      '--pairs',
      'x.jsonl',
      '--out',
      A_FOLDER,
    ]);
    expect(dpo.status).toBe(2);
    expect(dpo.stderr).toContain(`--out ${A_FOLDER} is a folder, not a file`);
    const rm = cli(['reward-dump', '--model', NO_MODEL, '--pairs', 'x.jsonl', '--out', A_FOLDER]);
    expect(rm.status).toBe(2);
    expect(rm.stderr).toContain(`--out ${A_FOLDER} is a folder, not a file`);
  });

  test('dpo-dump --beta 0x4 and reward-dump --center_rewards_coefficient 1_0 are refused', () => {
    const out = join(dir, 'dump.safetensors');
    const dpo = cli([
      'dpo-dump',
      '--model',
      NO_MODEL,
      '--ref',
      NO_MODEL,
      '--pairs',
      'x',
      '--out',
      out,
      '--beta',
      '0x4',
    ]);
    expect(dpo.status).toBe(2);
    expect(dpo.stderr).toContain('--beta takes a decimal number, got "0x4"');
    const rm = cli(['reward-dump', '--model', NO_MODEL, '--pairs', 'x', '--out', out]);
    expect(rm.status).toBe(2); // the missing model, not a number
    const c = cli([
      'reward-dump',
      '--model',
      NO_MODEL,
      '--pairs',
      'x',
      '--out',
      out,
      '--center_rewards_coefficient',
      '1_0',
    ]);
    expect(c.status).toBe(2);
    expect(c.stderr).toContain('--center_rewards_coefficient takes a decimal number, got "1_0"');
  });

  test('eval --json and profile --json a folder are refused before any model or GPU', () => {
    const ev = cli([
      'eval',
      '--ref',
      NO_MODEL,
      '--model',
      NO_MODEL,
      '--reward',
      NO_MODEL,
      '--prompts',
      'x.txt',
      '--json',
      A_FOLDER,
    ]);
    expect(ev.status).toBe(2);
    expect(ev.stderr).toContain(`--json ${A_FOLDER} is a folder, not a file`);
    const pr = cli(['profile', '--json', A_FOLDER]);
    expect(pr.status).toBe(2);
    expect(pr.stderr).toContain(`--json ${A_FOLDER} is a folder, not a file`);
    const top = cli(['profile', '--top', '0x4']);
    expect(top.status).toBe(2);
    expect(top.stderr).toContain('--top takes a positive integer, got "0x4"');
  });
});

describe('parseFields', () => {
  const parse = (values: Record<string, string>) =>
    parseFields(TRAINING_ARGS_DEFAULTS, values, ['max_grad_norm']);

  test('decimal numbers, integers for counts, none where allowed', () => {
    const c = parse({
      learning_rate: '3e-4',
      max_steps: '-1',
      seed: '7',
      max_grad_norm: 'none',
      num_train_epochs: '.5',
    });
    expect(c).toMatchObject({
      learning_rate: 3e-4,
      max_steps: -1,
      seed: 7,
      max_grad_norm: null,
      num_train_epochs: 0.5,
    });
  });

  test.each([
    ['learning_rate', '0x4'],
    ['learning_rate', '1_0'],
    ['learning_rate', 'Infinity'],
    ['learning_rate', ''],
    ['adam_epsilon', ' 1e-8'],
    ['per_device_train_batch_size', '8.0'],
    ['per_device_train_batch_size', '1e1'],
    ['seed', '0b1'],
    ['seed', 'none'],
  ])('--%s %j is refused', (k, raw) => {
    expect(() => parse({ [k]: raw })).toThrow(UsageError);
  });
});

describe('writeFolderAtomic keep', () => {
  test('kept subfolders of the old folder are carried over; other old files are gone', () => {
    const out = join(dir, 'model-out');
    writeFolderAtomic(
      join(out, 'checkpoint-2'),
      new Map([['config.json', new TextEncoder().encode('{"c":2}')]]),
    );
    mkdirSync(join(out, 'junk'));
    writeFileSync(join(out, 'pytorch_model.bin'), 'stale');
    const files = new Map([['config.json', new TextEncoder().encode('{"final":true}')]]);
    writeFolderAtomic(out, files, undefined, (name) => /^checkpoint-\d+$/.test(name));
    expect(readdirSync(out).sort()).toEqual(['checkpoint-2', 'config.json']);
    expect(readFileSync(join(out, 'checkpoint-2', 'config.json'), 'utf8')).toBe('{"c":2}');
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe('{"final":true}');
  });
});
