// The WebGPU DistilBERT reward path (src/reward/distilbert-webgpu.ts, load.ts) on the tiny
// DistilBERT sentiment classifier of test/fixtures/reward/tiny-distilbert.
// Expected values: test/fixtures/reward/logits_torch.json, written by
// test/fixtures/scripts/make_reward_fixture.py: PyTorch float32 logits (eval mode) per text and as
// one right-padded batch, and the Python tokenizer's input_ids with truncation at 64 tokens. The
// fixture is not saturated (a lost [SEP] moves its logits by ~1e-2, an ignored mask by ~1), so the
// 1e-4 checks below can fail.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  readSafetensors,
  readWeightsFile,
  tensorToF32,
  writeSafetensors,
  type WriteTensor,
} from '../../src/model/safetensors.ts';
import {
  distilbertParamTable,
  loadDistilBertParams,
  parseDistilBertConfig,
} from '../../src/reward/distilbert-config.ts';
import { loadDistilBertReward, type DistilBertRewardModel } from '../../src/reward/distilbert-webgpu.ts';
import { localFolder } from '../../src/reward/folder-node.ts';
import { loadReward, remoteFolder, type FolderFetch } from '../../src/reward/load.ts';
import { sentimentReward } from '../../src/reward/types.ts';
import { loadWordPieceTokenizer } from '../../src/reward/wordpiece-tokenizer.ts';
import { testGpu } from '../helpers/gpu.ts';

const DIR = 'test/fixtures/reward/tiny-distilbert';
interface Fixture {
  labels: string[];
  max_length: number;
  cases: { text: string; input_ids: number[]; logits: number[] }[];
  batch: { texts: string[]; logits: number[][] };
}
const fx = JSON.parse(readFileSync('test/fixtures/reward/logits_torch.json', 'utf8')) as Fixture;
const TOL = 1e-4;
const read = (file: string) => readFileSync(join(DIR, file), 'utf8');
const configJson = read('config.json');
const weights = new Uint8Array(readFileSync(join(DIR, 'model.safetensors')));

function maxAbsErr(got: ArrayLike<number>, want: number[]): number {
  expect(got.length).toBe(want.length);
  return want.reduce((m, w, i) => Math.max(m, Math.abs(got[i] - w)), 0);
}

/** A copy of the fixture folder without onnx/ (so rewardPathFor picks the WebGPU path). */
function copyWithoutOnnx(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'reward-distilbert-')), 'model');
  cpSync(DIR, dir, { recursive: true });
  rmSync(join(dir, 'onnx'), { recursive: true });
  return dir;
}

describe('DistilBERT on WebGPU vs PyTorch', () => {
  let model: DistilBertRewardModel;
  beforeAll(async () => {
    const tokenizer = {
      tokenizerJson: read('tokenizer.json'),
      tokenizerConfigJson: read('tokenizer_config.json'),
    };
    model = await loadDistilBertReward(await testGpu(), { configJson, weights, tokenizer });
  });
  afterAll(() => model?.dispose());

  test('labels from id2label, max length from tokenizer_config.json / max_position_embeddings', () => {
    expect(model.labels).toEqual(fx.labels);
    expect(model.maxLength).toBe(fx.max_length);
  });

  test('token ids equal the Python tokenizer, truncation keeping [CLS] .. [SEP]', () => {
    for (const c of fx.cases) {
      const { B, T, inputIds } = model.encode([c.text]);
      expect([B, T]).toEqual([1, c.input_ids.length]);
      expect(Array.from(inputIds, Number)).toEqual(c.input_ids);
    }
    expect(fx.cases.some((c) => c.input_ids.length === fx.max_length)).toBe(true);
  });

  test('each text alone (the truncated 130-token text included)', async () => {
    let worst = 0;
    for (const c of fx.cases) worst = Math.max(worst, maxAbsErr(await model.logits([c.text]), c.logits));
    console.log(`single texts: max |webgpu - torch| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(TOL);
  });

  test('one right-padded batch, and the same texts in batches of 4', async () => {
    const want = fx.batch.logits.flat();
    const whole = maxAbsErr(await model.logits(fx.batch.texts), want);
    const tokenizer = {
      tokenizerJson: read('tokenizer.json'),
      tokenizerConfigJson: read('tokenizer_config.json'),
    };
    const chunked = await loadDistilBertReward(
      await testGpu(),
      { configJson, weights, tokenizer },
      { batchSize: 4 },
    );
    const split = maxAbsErr(await chunked.logits(fx.batch.texts), want);
    chunked.dispose();
    console.log(
      `padded batch of ${fx.batch.texts.length}: ${whole.toExponential(2)}; batches of 4: ${split.toExponential(2)}`,
    );
    expect(whole).toBeLessThanOrEqual(TOL);
    expect(split).toBeLessThanOrEqual(TOL);
  });

  test('no texts give no logits; sentimentReward reads the POSITIVE logit', async () => {
    expect((await model.logits([])).length).toBe(0);
    const reward = sentimentReward(model, 'positive');
    const scores = await reward(fx.cases.map((c) => c.text));
    fx.cases.forEach((c, i) => expect(Math.abs(scores[i] - c.logits[1])).toBeLessThanOrEqual(TOL));
  });
});

describe('tokenizer', () => {
  test('from vocab.txt alone (no tokenizer.json): the same ids as Python', async () => {
    const tok = await loadWordPieceTokenizer({
      vocabTxt: read('vocab.txt'),
      tokenizerConfigJson: read('tokenizer_config.json'),
    });
    for (const c of fx.cases.filter((c) => c.input_ids.length < fx.max_length)) {
      expect(tok.encode(c.text, { add_special_tokens: true })).toEqual(c.input_ids);
    }
    expect(tok.pad_token_id).toBe(0);
  });

  test('neither tokenizer.json nor vocab.txt', async () => {
    await expect(loadWordPieceTokenizer({})).rejects.toThrow(/neither tokenizer.json nor vocab.txt/);
  });
});

describe('config.json and weights validation', () => {
  const config = parseDistilBertConfig(configJson);
  const { tensors } = readSafetensors(weights);

  test('config fields, labels and the parameter layout', () => {
    expect(config).toMatchObject({
      dim: 32,
      n_layers: 2,
      n_heads: 2,
      hidden_dim: 64,
      vocab_size: 200,
      labels: ['NEGATIVE', 'POSITIVE'],
    });
    const table = distilbertParamTable(config);
    expect(table.layers[0].qkvw.shape).toEqual([32, 96]);
    expect(table.model.clsw.shape).toEqual([32, 2]);
    expect(Object.values(table.model).every((e) => e.offset % 64 === 0)).toBe(true);
  });

  test('Linear weights are transposed and q, k, v fused', () => {
    const { table, params } = loadDistilBertParams(config, tensors);
    const k = tensorToF32(tensors.get('distilbert.transformer.layer.1.attention.k_lin.weight')!); // [out, in]
    const e = table.layers[1].qkvw; // (C, 3C): k in columns C..2C
    for (const [o, i] of [
      [0, 0],
      [3, 7],
      [31, 30],
    ])
      expect(params[e.offset + i * 96 + 32 + o]).toBe(k[o * 32 + i]);
  });

  test('bad config.json: wrong model_type, unsupported activation, heads not dividing dim', () => {
    const base = JSON.parse(configJson);
    expect(() => parseDistilBertConfig({ ...base, model_type: 'bert' })).toThrow(
      /model_type must be "distilbert"/,
    );
    expect(() => parseDistilBertConfig({ ...base, activation: 'silu' })).toThrow(
      /activation "silu" is not supported/,
    );
    expect(() => parseDistilBertConfig({ ...base, n_heads: 3 })).toThrow(
      /dim 32 is not divisible by n_heads 3/,
    );
    expect(() => parseDistilBertConfig('{')).toThrow(/not valid JSON/);
  });

  test('missing, unexpected and misshapen tensors are all named', () => {
    const entries: [string, WriteTensor][] = [];
    for (const [name, t] of tensors) {
      if (name === 'classifier.bias') continue;
      const data = tensorToF32(t);
      if (name === 'pre_classifier.weight')
        entries.push([name, { dtype: 'F32', shape: [32, 31], data: data.subarray(0, 32 * 31) }]);
      else entries.push([name, { dtype: 'F32', shape: t.shape, data }]);
    }
    entries.push(['vocab_projector.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    const bad = readSafetensors(writeSafetensors(entries)).tensors;
    expect(() => loadDistilBertParams(config, bad)).toThrow(
      /missing \(1\): classifier\.bias[\s\S]*unexpected \(1\): vocab_projector\.weight[\s\S]*pre_classifier\.weight is \[32, 31\], config\.json wants \[32, 32\]/,
    );
  });

  test('a truncated or garbled weights file: an error naming the file', async () => {
    const gpu = await testGpu();
    const tokenizer = { tokenizerJson: read('tokenizer.json') };
    for (const [bytes, why] of [
      [
        weights.subarray(0, 1000),
        /cannot read model\.safetensors: safetensors: .*goes beyond the end of the file/,
      ],
      [new TextEncoder().encode('not a weights file'), /cannot read model\.safetensors: safetensors: /],
    ] as const) {
      await expect(
        loadDistilBertReward(gpu, {
          configJson,
          weights: bytes,
          weightsName: 'model.safetensors',
          tokenizer,
        }),
      ).rejects.toThrow(why);
    }
  });
});

describe('loadReward picks the path from the folder', () => {
  test('a local folder without onnx/: WebGPU DistilBERT, PyTorch logits', async () => {
    const dir = copyWithoutOnnx();
    try {
      const model = await loadReward(
        { kind: 'local', path: dir },
        { folder: localFolder(dir), gpu: testGpu },
      );
      expect(model.path).toEqual({ kind: 'distilbert-webgpu', file: 'model.safetensors' });
      const c = fx.cases[1];
      expect(maxAbsErr(await model.logits([c.text]), c.logits)).toBeLessThanOrEqual(TOL);
      model.dispose();
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  test('a URL folder through remoteFolder (fetch stubbed with the fixture files)', async () => {
    const files = new Map(
      ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [
        f,
        readFileSync(join(DIR, f)),
      ]),
    );
    const fetchStub: FolderFetch = async (url) => {
      const body = files.get(url.replace('https://example.org/tiny/', ''));
      return body ? new Response(new Uint8Array(body)) : new Response('missing', { status: 404 });
    };
    const source = { kind: 'url', url: 'https://example.org/tiny' } as const;
    const model = await loadReward(source, {
      folder: remoteFolder(source, { fetch: fetchStub }),
      gpu: testGpu,
    });
    expect(model.path.kind).toBe('distilbert-webgpu');
    const c = fx.cases[0];
    expect(maxAbsErr(await model.logits([c.text]), c.logits)).toBeLessThanOrEqual(TOL);
    model.dispose();
  });

  test('errors: a local source without a folder reader, DistilBERT without a GPU', async () => {
    await expect(loadReward({ kind: 'local', path: DIR })).rejects.toThrow(/needs options.folder/);
    const dir = copyWithoutOnnx();
    try {
      await expect(loadReward({ kind: 'local', path: dir }, { folder: localFolder(dir) })).rejects.toThrow(
        /holds DistilBERT weights for our WebGPU kernels, but no GPU was given/,
      );
      writeFileSync(join(dir, 'model.safetensors'), 'garbage');
      await expect(
        loadReward({ kind: 'local', path: dir }, { folder: localFolder(dir), gpu: testGpu }),
      ).rejects.toThrow(
        /cannot load the DistilBERT reward model from folder .*: cannot read model\.safetensors: safetensors: /,
      );
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });
});

describe('rlhf-studio score on DistilBERT weights (WebGPU path)', () => {
  const bin = 'bin/rlhf-studio.mjs';
  test('--json prints PyTorch logits within 1e-4; a garbled weights file fails with its name', () => {
    const dir = copyWithoutOnnx();
    try {
      const [a, e] = [fx.cases[0], fx.cases[4]]; // e: the truncated text
      const r = spawnSync(
        process.execPath,
        [bin, 'score', '--reward', dir, '--text', a.text, '--text', e.text, '--json'],
        {
          encoding: 'utf8',
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const rows = JSON.parse(r.stdout) as { text: string; logits: Record<string, number> }[];
      rows.forEach((row, i) => {
        const want = [a, e][i].logits;
        expect(
          maxAbsErr(
            fx.labels.map((l) => row.logits[l]),
            want,
          ),
        ).toBeLessThanOrEqual(TOL);
      });
      writeFileSync(join(dir, 'model.safetensors'), weights.subarray(0, 500));
      const bad = spawnSync(process.execPath, [bin, 'score', '--reward', dir, '--text', 'x'], {
        encoding: 'utf8',
      });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/cannot read model\.safetensors: safetensors: /);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });
});

describe('pytorch_model.bin (the only weights file of lvwerra/distilbert-imdb)', () => {
  // test/fixtures/scripts/make_reward_bin_fixture.py: torch.save of model.safetensors' tensors plus an
  // old-style position_ids buffer, with q/k/v weights stored column-major.
  const bin = new Uint8Array(readFileSync('test/fixtures/reward/tiny-distilbert.bin'));

  test('gives the same parameters as model.safetensors', () => {
    const config = parseDistilBertConfig(configJson);
    const fromBin = loadDistilBertParams(config, readWeightsFile(bin)).params;
    expect(fromBin).toEqual(loadDistilBertParams(config, readSafetensors(weights).tensors).params);
  });

  test('a folder with pytorch_model.bin only: WebGPU path, PyTorch logits', async () => {
    const dir = copyWithoutOnnx();
    try {
      rmSync(join(dir, 'model.safetensors'));
      writeFileSync(join(dir, 'pytorch_model.bin'), bin);
      const model = await loadReward(
        { kind: 'local', path: dir },
        { folder: localFolder(dir), gpu: testGpu },
      );
      expect(model.path).toEqual({ kind: 'distilbert-webgpu', file: 'pytorch_model.bin' });
      expect(maxAbsErr(await model.logits(fx.batch.texts), fx.batch.logits.flat())).toBeLessThanOrEqual(TOL);
      model.dispose();
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });
});
