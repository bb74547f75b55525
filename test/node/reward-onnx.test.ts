// The ONNX reward path (src/reward/onnx.ts) on a tiny DistilBERT sentiment classifier.
// Expected values: test/fixtures/reward/logits_torch.json, written by
// test/fixtures/scripts/make_reward_fixture.py: PyTorch float32 logits (eval mode) of the same
// model, per text and as one right-padded batch, and the Python tokenizer's input_ids with
// truncation at 64 tokens. The fixture is not saturated: a lost [SEP] moves its logits by ~1e-2
// and an ignored attention mask by ~1, so the 1e-4 checks below can fail.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadOnnxReward, type OnnxRewardModel } from '../../src/reward/onnx.ts';
import { rewardPathFor } from '../../src/reward/source.ts';
import { MissingLabelError, sentimentReward } from '../../src/reward/types.ts';

const DIR = 'test/fixtures/reward/tiny-distilbert';
interface Fixture {
  labels: string[];
  max_length: number;
  cases: { text: string; input_ids: number[]; logits: number[] }[];
  batch: { texts: string[]; logits: number[][] };
}
const fx = JSON.parse(readFileSync('test/fixtures/reward/logits_torch.json', 'utf8')) as Fixture;
const TOL = 1e-4;

function maxAbsErr(got: ArrayLike<number>, want: number[]): number {
  expect(got.length).toBe(want.length);
  return want.reduce((m, w, i) => Math.max(m, Math.abs(got[i] - w)), 0);
}

/** A copy of the fixture folder in a temp dir, to edit. */
function copyFixture(name = 'model'): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'reward-')), name);
  cpSync(DIR, dir, { recursive: true });
  return dir;
}

describe('ONNX reward model vs PyTorch', () => {
  let model: OnnxRewardModel;
  beforeAll(async () => {
    model = await loadOnnxReward({ kind: 'local', path: DIR });
  });
  afterAll(() => model?.dispose());

  test('labels and max length come from config.json / tokenizer_config.json', () => {
    expect(model.labels).toEqual(fx.labels);
    expect(model.maxLength).toBe(fx.max_length);
  });

  test('token ids equal the Python tokenizer, truncation keeping [CLS] .. [SEP]', () => {
    for (const c of fx.cases) {
      const { B, T, inputIds, attentionMask } = model.encode([c.text]);
      expect([B, T]).toEqual([1, c.input_ids.length]);
      expect(Array.from(inputIds, Number)).toEqual(c.input_ids);
      expect(Array.from(attentionMask, Number).every((m) => m === 1)).toBe(true);
    }
    expect(fx.cases.some((c) => c.input_ids.length === fx.max_length)).toBe(true); // the truncation case is there
  });

  test('each text alone', async () => {
    let worst = 0;
    for (const c of fx.cases) worst = Math.max(worst, maxAbsErr(await model.logits([c.text]), c.logits));
    console.log(`single texts: max |onnx - torch| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(TOL);
  });

  test('one padded batch, and the same texts in batches of 4', async () => {
    const want = fx.batch.logits.flat();
    const whole = maxAbsErr(await model.logits(fx.batch.texts), want);
    const chunked = await loadOnnxReward({ kind: 'local', path: DIR }, { batchSize: 4 });
    const split = maxAbsErr(await chunked.logits(fx.batch.texts), want);
    chunked.dispose();
    console.log(
      `padded batch of ${fx.batch.texts.length}: ${whole.toExponential(2)}; batches of 4: ${split.toExponential(2)}`,
    );
    expect(whole).toBeLessThanOrEqual(TOL);
    expect(split).toBeLessThanOrEqual(TOL);
  });

  test('no texts give no logits', async () => {
    expect((await model.logits([])).length).toBe(0);
  });

  test('sentimentReward reads the POSITIVE logit, then NEGATIVE after setTarget', async () => {
    const texts = fx.cases.map((c) => c.text);
    const reward = sentimentReward(model, 'positive');
    const pos = await reward(texts);
    reward.setTarget('negative');
    expect(reward.target).toBe('negative');
    const neg = await reward(texts);
    fx.cases.forEach((c, i) => {
      expect(Math.abs(pos[i] - c.logits[fx.labels.indexOf('POSITIVE')])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(neg[i] - c.logits[fx.labels.indexOf('NEGATIVE')])).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('loading errors', () => {
  test('a model whose labels are not POSITIVE/NEGATIVE: the error names its labels', async () => {
    const dir = copyFixture();
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config.id2label = { 0: 'LABEL_0', 1: 'LABEL_1' };
    config.label2id = { LABEL_0: 0, LABEL_1: 1 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const model = await loadOnnxReward({ kind: 'local', path: dir });
    expect(model.labels).toEqual(['LABEL_0', 'LABEL_1']);
    expect(() => sentimentReward(model, 'positive')).toThrow(MissingLabelError);
    expect(() => sentimentReward(model, 'positive')).toThrow(/no POSITIVE label.*"LABEL_0", "LABEL_1"/);
    model.dispose();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  test('a folder whose name is not a Hub id (a space in it) loads as a plain path', async () => {
    const dir = copyFixture('tiny model');
    const model = await loadOnnxReward({ kind: 'local', path: dir });
    const c = fx.cases[0];
    expect(maxAbsErr(await model.logits([c.text]), c.logits)).toBeLessThanOrEqual(TOL);
    model.dispose();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  test('a folder that does not exist', async () => {
    await expect(
      loadOnnxReward({ kind: 'local', path: 'test/fixtures/reward/no-such-model' }),
    ).rejects.toThrow(/cannot load the ONNX reward model from folder test\/fixtures\/reward\/no-such-model/);
  });
});

describe('rewardPathFor', () => {
  const distilbert = { model_type: 'distilbert' };
  test('an ONNX export selects the ONNX path', () => {
    const files = ['config.json', 'tokenizer.json', 'model.safetensors', 'onnx/model.onnx'];
    expect(rewardPathFor(files, distilbert)).toEqual({
      kind: 'onnx',
      file: 'onnx/model.onnx',
      dtype: 'fp32',
    });
    expect(rewardPathFor(['onnx/model_quantized.onnx'], null)).toEqual({
      kind: 'onnx',
      file: 'onnx/model_quantized.onnx',
      dtype: 'q8',
    });
  });
  test('DistilBERT weights without ONNX select the WebGPU DistilBERT path', () => {
    expect(rewardPathFor(['config.json', 'model.safetensors'], distilbert)).toEqual({
      kind: 'distilbert-webgpu',
      file: 'model.safetensors',
    });
    expect(rewardPathFor(['config.json', 'pytorch_model.bin'], distilbert).kind).toBe('distilbert-webgpu');
  });
  test('other weights without ONNX, or no weights: errors that say what is missing', () => {
    expect(() => rewardPathFor(['config.json', 'model.safetensors'], { model_type: 'roberta' })).toThrow(
      /model_type 'roberta' but no ONNX export/,
    );
    expect(() => rewardPathFor(['config.json'], distilbert)).toThrow(
      /no model weights found.*has config.json/,
    );
  });
});

describe('rlhf-studio score', () => {
  const bin = 'bin/rlhf-studio.mjs';
  test('--json prints each label logit per text (PyTorch within 1e-4)', () => {
    const [a, b] = fx.cases;
    const out = execFileSync(
      process.execPath,
      [bin, 'score', '--reward', DIR, '--text', a.text, '--text', b.text, '--json'],
      {
        encoding: 'utf8',
      },
    );
    const rows = JSON.parse(out) as { text: string; logits: Record<string, number> }[];
    expect(rows.map((r) => r.text)).toEqual([a.text, b.text]);
    rows.forEach((r, i) => {
      const want = [a, b][i].logits;
      expect(
        maxAbsErr(
          fx.labels.map((l) => r.logits[l]),
          want,
        ),
      ).toBeLessThanOrEqual(TOL);
    });
  });

  test('the table form names every label', () => {
    const out = execFileSync(process.execPath, [bin, 'score', '--reward', DIR, '--text', 'a film.'], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/^NEGATIVE=-?\d+\.\d{4} {2}POSITIVE=-?\d+\.\d{4} {2}"a film\."$/m);
  });

  test('no --text is a usage error', () => {
    const r = spawnSync(process.execPath, [bin, 'score', '--reward', DIR], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/at least one --text/);
  });
});
