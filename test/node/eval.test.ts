/**
 * Evaluation (src/rl/evaluate.ts, `rlhf-studio eval`) on tiny models: a random GPT-2 with GPT-2's
 * vocabulary (n_embd 16, 1 layer) as the reference A, a copy of it, and B = A with its token
 * embeddings scaled by 50 (peaked next-token distributions, so B's responses and log-probs differ
 * from A's); the reward is the tiny DistilBERT sentiment fixture (ONNX). Expected values:
 *  - copies of A draw the same keys (same seed, same batches), so their responses and rewards equal
 *    A's exactly, and their KL to A is exactly 0 (the same kernels on the same rows);
 *  - B's per-sample KL equals the sum over its response tokens of log p_B - log p_A computed again
 *    with each sample alone (one unpadded row), which checks the batching, padding and masks;
 *  - mean, median and std of a model equal those of its rows (median and unbiased std by hand here);
 *  - response lengths come from LengthSampler(4, 16) once per query, shared by every model.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { initLoraParams, loraTable, type LoraConfig } from '../../src/model/lora-table.ts';
import { gpt2ParamTable, modelParams, paramSlice } from '../../src/model/param-table.ts';
import { mergeLora, savePeftAdapter } from '../../src/model/peft.ts';
import type { LoadedGPT2 } from '../../src/model/safetensors.ts';
import { decode, encode } from '../../src/model/tokenizer.ts';
import { localFolder } from '../../src/reward/folder-node.ts';
import { loadReward } from '../../src/reward/load.ts';
import { sentimentReward } from '../../src/reward/types.ts';
import { evaluate, TRL_EVAL, type EvalReport } from '../../src/rl/evaluate.ts';
import { ReferenceModel } from '../../src/rl/policy.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { loadEvalModel } from '../../src/cli/eval.ts';
import { testGpu } from '../helpers/gpu.ts';

const REWARD = 'test/fixtures/reward/tiny-distilbert';
const LORA_C_ATTN: LoraConfig = { r: 4, alpha: 8, dropout: 0, targetModules: ['c_attn'], useRslora: false };
const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
const table = gpt2ParamTable(cfg);

function modelA(): LoadedGPT2 {
  return { config: cfg, table, params: initGPT2Params(cfg, { seed: 3 }), valueHeadLoaded: false };
}

function modelB(): LoadedGPT2 {
  const params = initGPT2Params(cfg, { seed: 3 });
  const wte = paramSlice(params, modelParams(table).wte);
  for (let i = 0; i < wte.length; i++) wte[i] *= 50;
  return { config: cfg, table, params, valueHeadLoaded: false };
}

const QUERIES = [
  'The movie was',
  'I rented this film because',
  'Honestly,',
  'What a',
  'The acting',
  'Bad',
].map((t) => encode(t));

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('evaluate', () => {
  let report: EvalReport;

  test('runs the reference, a copy of it and another model on the same queries', async () => {
    const gpu = await testGpu();
    const rewardModel = await loadReward(
      { kind: 'local', path: REWARD },
      { folder: localFolder(REWARD), gpu },
    );
    report = await evaluate(
      gpu,
      {
        ref: { name: 'A', model: modelA() },
        models: [
          { name: 'A copy', model: modelA() },
          { name: 'B', model: modelB() },
        ],
        queries: QUERIES,
        reward: sentimentReward(rewardModel, 'positive'),
        decode,
      },
      // Batches of 4: the second batch has other sampling keys and a ragged last batch.
      { ...TRL_EVAL, seed: 7, batchSize: 4 },
    );
    rewardModel.dispose();
    expect(report.models.map((m) => m.name)).toEqual(['A', 'A copy', 'B']);
    expect(report.rows.length).toBe(QUERIES.length);
  }, 300_000);

  test('the same model gives identical responses and rewards, and KL 0 to itself', () => {
    for (const row of report.rows) {
      const [a, copy] = row.responses;
      expect(copy.ids).toEqual(a.ids);
      expect(copy.text).toBe(a.text);
      expect(copy.reward).toBe(a.reward);
      expect(copy.kl).toBe(0);
      expect(a.kl).toBe(0);
    }
    expect(report.models[0].kl).toBe(0);
    expect(report.models[1].kl).toBe(0);
  });

  test('response lengths: one LengthSampler(4, 16) draw per query, shared by every model', () => {
    for (const row of report.rows) {
      expect(row.maxNewTokens).toBeGreaterThanOrEqual(4);
      expect(row.maxNewTokens).toBeLessThan(16);
      for (const r of row.responses) {
        expect(r.tokens).toBe(r.ids.length);
        // A response ends early only on EOS (pad_token_id = eos), never past its max_new_tokens.
        if (r.tokens < row.maxNewTokens) expect(r.ids.at(-1)).toBe(50256);
        expect(r.tokens).toBeLessThanOrEqual(row.maxNewTokens);
      }
    }
    // B's responses come from another distribution: some differ from A's.
    expect(report.rows.some((row) => row.responses[2].text !== row.responses[0].text)).toBe(true);
  });

  test("B's KL is the sum of log p_B - log p_A over its response tokens, each sample alone", async () => {
    const gpu = await testGpu();
    const a = new ReferenceModel(gpu, cfg, modelA().params);
    const b = new ReferenceModel(gpu, cfg, modelB().params);
    try {
      for (const [i, row] of report.rows.entries()) {
        const r = row.responses[2];
        const ids = Int32Array.from([...QUERIES[i], ...r.ids]);
        const one = { B: 1, T: ids.length, ids };
        const [lpA, lpB] = [await a.logprobs(one), await b.logprobs(one)]; // (1, T-1)
        const Q = QUERIES[i].length;
        let kl = 0;
        for (let t = Q - 1; t < Q - 1 + r.ids.length; t++) kl += lpB[t] - lpA[t];
        expect(r.kl, `row ${i}`).toBeCloseTo(kl, 3);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
    // Scaled embeddings put B far from A: KL(B || A) is large and positive on every sample.
    expect(report.models[2].kl).toBeGreaterThan(1);
  });

  test('mean, median and std are those of the rows', () => {
    report.models.forEach((m, k) => {
      const rewards = report.rows.map((row) => row.responses[k].reward);
      const mu = mean(rewards);
      const sorted = [...rewards].sort((x, y) => x - y);
      // 6 samples: the median is the mean of the 3rd and 4th.
      expect(m.mean).toBeCloseTo(mu, 12);
      expect(m.median).toBeCloseTo((sorted[2] + sorted[3]) / 2, 12);
      expect(m.std).toBeCloseTo(Math.sqrt(rewards.reduce((s, x) => s + (x - mu) ** 2, 0) / 5), 12);
      expect(m.kl).toBeCloseTo(mean(report.rows.map((row) => row.responses[k].kl)), 12);
    });
  });
});

describe('rlhf-studio eval', () => {
  const bin = 'bin/rlhf-studio.mjs';

  function folder(model: LoadedGPT2): string {
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-eval-'));
    for (const [name, bytes] of exportHFFolder(cfg, model.params)) writeFileSync(join(dir, name), bytes);
    return dir;
  }

  test('writes the summary and one row per sample; the same model twice agrees', () => {
    const a = folder(modelA());
    const b = folder(modelB());
    const json = join(mkdtempSync(join(tmpdir(), 'rlhf-eval-out-')), 'eval.json');
    const args = [
      ...['eval', '--ref', a, '--model', a, '--model', b, '--reward', REWARD],
      ...['--prompts', 'test/fixtures/prompts/prompts.txt', '--samples', '5', '--seed', '1', '--json', json],
    ];
    const stdout = execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    expect(stdout).toMatch(/model +mean +median +std +kl/);
    const out = JSON.parse(readFileSync(json, 'utf8')) as {
      settings: { samples: number; seed: number; target: string };
      models: { name: string; role: string; mean: number; kl: number }[];
      rows: { query: string; responses: { text: string; reward: number }[] }[];
    };
    expect(out.settings).toMatchObject({ samples: 5, seed: 1, target: 'positive' });
    expect(out.models.map((m) => m.role)).toEqual(['reference', 'model', 'model']);
    expect(out.models[1].name).toBe(`${a}#2`);
    expect(out.models[1].kl).toBe(0);
    expect(out.rows.length).toBe(5);
    for (const row of out.rows) {
      expect(row.responses.length).toBe(3);
      expect(row.responses[1]).toEqual(row.responses[0]);
    }
  }, 300_000);

  test('--adapter is merged into its model as peft merges it; a missing one is named', async () => {
    const a = folder(modelA());
    // An adapter on c_attn with non-zero A and B (peft starts B at zero; here B is random too).
    const lt = loraTable(cfg, LORA_C_ATTN);
    const rng = mulberry32(5);
    const block = initLoraParams(lt, rng);
    for (const slot of lt.slots) {
      const b = block.subarray(slot.B.offset, slot.B.offset + slot.B.size);
      for (let i = 0; i < b.length; i++) b[i] = rng() - 0.5;
    }
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-eval-adapter-'));
    for (const [name, bytes] of savePeftAdapter(lt, block)) writeFileSync(join(dir, name), bytes);
    const m = await loadEvalModel({ arg: a, adapter: dir });
    // Expected: src/model/peft.ts mergeLora (checked against peft in test/node/lora.test.ts).
    expect(Array.from(m.model.params)).toEqual(Array.from(mergeLora(cfg, modelA().params, lt, block)));
    const c_attn = paramSlice(m.model.params, table.byName.get('h.0.attn.c_attn.weight')!);
    const base = paramSlice(modelA().params, table.byName.get('h.0.attn.c_attn.weight')!);
    expect(c_attn.some((x, i) => x !== base[i])).toBe(true);

    const common = ['eval', '--ref', a, '--reward', REWARD, '--prompts', 'test/fixtures/prompts/prompts.txt'];
    const missing = join(dir, 'nope');
    const r = spawnSync(process.execPath, [bin, ...common, '--model', a, '--adapter', missing], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${missing} is not a folder`);
    const bad = spawnSync(process.execPath, [bin, ...common, '--model', a, '--samples', '0'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--samples takes a positive integer, got "0"');
    const none = spawnSync(process.execPath, [bin, ...common], { encoding: 'utf8' });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('give at least one --model');
  });
});
