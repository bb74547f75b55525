/**
 * SFT: the loss, mean_token_accuracy and gradients of one batch against PyTorch (GPT2LMHeadModel on
 * the body of test/fixtures/reward-gpt2/model, rows and numbers from
 * test/fixtures/scripts/make_reward_fixture_gpt2.py; loss 1e-5 relative, gradients within 1e-3 of
 * each tensor's max), the tokenization rules of TRL's SFTTrainer on hand-made rows, and
 * `rlhf-studio sft` end to end on a tiny GPT-2: on one repeated row, the loss falls.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { GPT2 } from '../../src/model/gpt2.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { gpt2ParamTable, paramSlice } from '../../src/model/param-table.ts';
import { tensorToF32 } from '../../src/model/safetensors.ts';
import { EOS_TOKEN_ID, encode } from '../../src/model/tokenizer.ts';
import { loadGPT2RewardFolder } from '../../src/reward/gpt2-reward-folder.ts';
import { IGNORE, layoutSFTBatch, tokenizeSFTRows, type SFTRow } from '../../src/rl/sft-data.ts';
import { sftStep } from '../../src/rl/sft.ts';
import { testGpu } from '../helpers/gpu.ts';
import { fixtureFiles, readGz, REWARD_FIXTURE } from '../helpers/reward-fixture.ts';
import { metricsSteps } from '../../src/cli/metrics-log.ts';

const root = REWARD_FIXTURE;

describe('SFT tokenization (TRL SFTTrainer)', () => {
  const pc: SFTRow = { kind: 'prompt-completion', row: 1, prompt: 'This movie was', completion: ' great.' };
  const text: SFTRow = { kind: 'text', row: 2, text: 'A fine film.' };
  test('prompt + completion + EOS as one text; prompt masked by default, not when completion_only_loss is off', () => {
    const [e] = tokenizeSFTRows([pc], encode);
    const p = encode('This movie was').length;
    expect(e.ids).toEqual([...encode('This movie was great.'), EOS_TOKEN_ID]);
    expect(e.labels.slice(0, p)).toEqual(Array(p).fill(IGNORE));
    expect(e.labels.slice(p)).toEqual(e.ids.slice(p));
    const [off] = tokenizeSFTRows([pc], encode, {
      max_length: null,
      packing: false,
      completion_only_loss: false,
    });
    expect(off.labels).toEqual(off.ids);
  });
  test('text rows: EOS appended, every token labelled; completion_only_loss on them is an error naming the row', () => {
    const [e] = tokenizeSFTRows([text], encode);
    expect(e.ids).toEqual([...encode('A fine film.'), EOS_TOKEN_ID]);
    expect(e.labels).toEqual(e.ids);
    expect(() =>
      tokenizeSFTRows([text], encode, { max_length: 8, packing: false, completion_only_loss: true }),
    ).toThrow(/row 2/);
  });
  test('max_length keeps the start and drops rows left with no label; packing cuts the concatenation', () => {
    const p = encode('This movie was').length; // 3
    expect(
      tokenizeSFTRows([pc], encode, { max_length: p, packing: false, completion_only_loss: null }),
    ).toEqual([]);
    const [cut] = tokenizeSFTRows([pc], encode, {
      max_length: p + 1,
      packing: false,
      completion_only_loss: null,
    });
    expect(cut.ids.length).toBe(p + 1);
    const packed = tokenizeSFTRows([text, text, text], encode, {
      max_length: 4,
      packing: true,
      completion_only_loss: null,
    });
    const all = [...encode('A fine film.'), EOS_TOKEN_ID];
    expect(packed.flatMap((e) => e.ids)).toEqual([...all, ...all, ...all]);
    expect(packed.every((e) => e.ids.length <= 4)).toBe(true);
  });
  test('the batch predicts labels[t+1] at t and pads with the pad id', () => {
    const b = layoutSFTBatch(
      [
        { ids: [1, 2, 3], labels: [IGNORE, 2, 3] },
        { ids: [4], labels: [4] },
      ],
      9,
    );
    expect([...b.ids]).toEqual([1, 2, 3, 4, 9, 9]);
    expect([...b.targets]).toEqual([2, 3, -1, -1, -1, -1]);
    expect(b.count).toBe(2);
  });
});

describe('SFT loss equals PyTorch', () => {
  test('loss, mean_token_accuracy and the gradients of a right-padded batch', async () => {
    const gpu = await testGpu();
    const rm = loadGPT2RewardFolder(fixtureFiles(`${root}/model`));
    const params = rm.params.slice(0, gpt2ParamTable(rm.config).total);
    const rows = JSON.parse(readFileSync(`${root}/sft_rows.json`, 'utf8')) as {
      input_ids: number[];
      completion_mask: number[];
    }[];
    const examples = rows.map((r) => ({
      ids: r.input_ids,
      labels: r.input_ids.map((id, t) => (r.completion_mask[t] ? id : IGNORE)),
    }));
    const net = new GPT2(gpu, rm.config, params);
    try {
      net.zeroGrads();
      const stats = await sftStep(net, layoutSFTBatch(examples, EOS_TOKEN_ID));
      const ref = readGz(`${root}/sft.safetensors.gz`);
      const refLoss = tensorToF32(ref.get('loss')!)[0];
      expect(Math.abs(stats.loss - refLoss) / refLoss).toBeLessThanOrEqual(1e-5);
      // 5 of 22 tokens (a token made to predict itself); a count, so equal up to f32 rounding of 5/22.
      expect(stats.mean_token_accuracy).toBeCloseTo(tensorToF32(ref.get('mean_token_accuracy')!)[0], 6);
      const grads = await gpu.readF32(net.grads!, net.table.total);
      let checked = 0;
      for (const e of net.table.entries) {
        const want = ref.get(`grad.transformer.${e.name}`);
        if (!want) continue;
        const w = tensorToF32(want);
        const g = paramSlice(grads, e);
        let maxRef = 0;
        let err = 0;
        for (let i = 0; i < w.length; i++) {
          maxRef = Math.max(maxRef, Math.abs(w[i]));
          err = Math.max(err, Math.abs(w[i] - g[i]));
        }
        expect(err, e.name).toBeLessThanOrEqual(1e-3 * maxRef);
        checked++;
      }
      expect(checked).toBe(net.table.entries.length - 1); // all but wte (not in the fixture)
    } finally {
      net.dispose();
    }
  });
});

describe('rlhf-studio sft', () => {
  test('trains on prompt/completion rows: metrics per step, the loss falls, the folder loads back', () => {
    const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
    const work = mkdtempSync(join(tmpdir(), 'rlhf-sft-'));
    for (const [name, bytes] of exportHFFolder(cfg, initGPT2Params(cfg, { seed: 4 })))
      writeFileSync(join(work, name), bytes);
    const data = join(work, 'data.jsonl');
    writeFileSync(
      data,
      JSON.stringify({ prompt: 'This movie was', completion: ' great, really great.' }) + '\n',
    );
    const metrics = join(work, 'metrics.jsonl');
    const args = ['--model', work, '--data', data, '--out', join(work, 'out'), '--metrics', metrics];
    const train = [
      '--learning_rate',
      '1e-2',
      '--max_steps',
      '4',
      '--per_device_train_batch_size',
      '1',
      '--quiet',
    ];
    execFileSync(process.execPath, ['bin/rlhf-studio.mjs', 'sft', ...args, ...train]);
    const text = readFileSync(metrics, 'utf8');
    const lines = metricsSteps(text);
    expect(JSON.parse(text.trim().split('\n').at(-1)!)).toEqual({ end: 'complete', steps: 4 });
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect(lines[0].num_tokens).toBe(encode(' great, really great.').length + 1); // completion + EOS
    expect(lines[3].loss).toBeLessThan(lines[0].loss);
    expect(loadModelDir(join(work, 'out')).params.length).toBe(gpt2ParamTable(cfg).total);
  }, 120_000);
});
