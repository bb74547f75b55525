/**
 * PPO maths against conformance cases (shared/conformance/README.md, "ppo/*.json").
 * Every expected number comes from the case files: float64 results of
 * shared/reference/ppo_ref.py, a port of TRL 0.9.6's legacy PPOTrainer maths checked against TRL's
 * own functions. Cases in test/fixtures/ppo: conformance/ppo-case-[0-5].json, copies of
 * shared/conformance/ppo made by test/fixtures/scripts/copy_conformance_ppo.sh; ppo-case-10x.json by `make_ppo_cases.py test/fixtures/ppo 100 6`, ppo-skip-20x.json (mean ratio
 * above ratio_threshold) by test/fixtures/scripts/make_ppo_extra.py.
 *
 * Tolerance: |ours - ref| <= 1e-6 + 1e-5 * |ref|. The absolute 1e-6 is for values that are 0 up to
 * rounding (policy/advantages_mean is ~1e-17 in every case, a whitened mean).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { UsageError } from '../../src/cli/command.ts';
import { ppoMath } from '../../src/cli/ppo-math.ts';
import { computePpoCase, parsePpoCase, PpoCaseError } from '../../src/rl/ppo-case.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = join(ROOT, 'test/fixtures/ppo');
const CONFORMANCE = join(FIXTURES, 'conformance');
const ATOL = 1e-6;
const RTOL = 1e-5;

/** Flattens nested objects/arrays of numbers to path -> number. */
function leaves(x: unknown, path = '', out = new Map<string, number>()): Map<string, number> {
  if (typeof x === 'number') out.set(path, x);
  else if (Array.isArray(x)) x.forEach((v, i) => leaves(v, `${path}[${i}]`, out));
  else if (typeof x === 'object' && x !== null) {
    for (const [k, v] of Object.entries(x)) leaves(v, path ? `${path}.${k}` : k, out);
  } else throw new Error(`${path}: not a number (${String(x)})`);
  return out;
}

/** Same keys and every number within tolerance; returns the largest relative-to-tolerance error. */
function expectSameNumbers(actual: unknown, expected: unknown, what: string): number {
  const a = leaves(actual);
  const e = leaves(expected);
  expect([...a.keys()].sort(), `${what}: keys`).toEqual([...e.keys()].sort());
  let worst = 0;
  for (const [k, ref] of e) {
    const got = a.get(k) as number;
    const err = Math.abs(got - ref);
    if (!(err <= ATOL + RTOL * Math.abs(ref)))
      expect.fail(`${what} ${k}: got ${got}, expected ${ref} (|err| ${err})`);
    worst = Math.max(worst, err / (ATOL + RTOL * Math.abs(ref)));
  }
  return worst;
}

function caseFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

function readJson(file: string): { expected: unknown } & Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as { expected: unknown } & Record<string, unknown>;
}

describe('PPO conformance cases', () => {
  test('the conformance cases are in the fixtures', () => {
    expect(caseFiles(CONFORMANCE).length).toBeGreaterThanOrEqual(6);
  });

  const files = [...caseFiles(CONFORMANCE), ...caseFiles(FIXTURES)];
  for (const file of files) {
    test(file.slice(file.lastIndexOf('/', file.lastIndexOf('/') - 1) + 1), () => {
      const c = readJson(file);
      const worst = expectSameNumbers(computePpoCase(parsePpoCase(c)), c.expected, c.name as string);
      expect(worst).toBeLessThanOrEqual(1);
    });
  }

  test('the skip cases really zero the losses', () => {
    const c = readJson(join(FIXTURES, 'ppo-skip-200.json'));
    const out = computePpoCase(parsePpoCase(c));
    expect(out.pg_loss).toBe(0);
    expect(out.vf_loss).toBe(0);
    expect(out.stats['loss/total']).toBe(0);
    expect(out.stats['policy/approxkl']).toBeGreaterThan(1); // other stats still computed
  });
});

describe('case parsing', () => {
  const good = readJson(join(FIXTURES, 'ppo-case-100.json'));
  const mutate = (f: (c: Record<string, Record<string, unknown>>) => void): unknown => {
    const c = structuredClone(good) as unknown as Record<string, Record<string, unknown>>;
    f(c);
    return c;
  };
  test.each([
    ['missing config', mutate((c) => delete c.config), /case\.config is missing/],
    ['bad kl_penalty', mutate((c) => (c.config.kl_penalty = 'full')), /kl_penalty/],
    [
      'ragged row',
      mutate((c) => (c.inputs.values as number[][])[1].pop()),
      /inputs\.values\[1\] must be an array of/,
    ],
    [
      'string number',
      mutate((c) => ((c.inputs.vpreds as unknown[][])[0][0] = '1')),
      /inputs\.vpreds\[0\]\[0\]/,
    ],
    ['not an object', [1, 2], /JSON object/],
  ])('%s is refused with a clear message', (_what, json, message) => {
    expect(() => parsePpoCase(json)).toThrow(PpoCaseError);
    expect(() => parsePpoCase(json)).toThrow(message);
  });
});

describe('rlhf-studio ppo-math', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ppo-math-'));

  test('writes the expected object of a case', async () => {
    const file = join(FIXTURES, 'ppo-case-103.json');
    const out = join(dir, 'out.json');
    expect(await ppoMath.run(['--case', file, '--out', out])).toBe(0);
    expectSameNumbers(JSON.parse(readFileSync(out, 'utf8')), readJson(file).expected, 'cli ppo-case-103');
  });

  test('bad arguments and files are usage errors', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"config": {}, "inputs": {}}');
    await expect(ppoMath.run(['--case', bad])).rejects.toThrow(UsageError);
    await expect(ppoMath.run(['--out', join(dir, 'x.json')])).rejects.toThrow(/--case/);
    await expect(
      ppoMath.run(['--case', join(dir, 'none.json'), '--out', join(dir, 'x.json')]),
    ).rejects.toThrow(/cannot read/);
    await expect(ppoMath.run(['--case', bad, '--out', join(dir, 'x.json')])).rejects.toThrow(
      /not a PPO case/,
    );
  });
});
