/**
 * `rlhf-studio reward-train --use_peft` (src/cli/reward-train.ts, src/rl/reward-model-trainer.ts):
 * LoRA adapters on the frozen body and the score head trained in full, saved as peft 0.21 saves a
 * SEQ_CLS LoRA model (checked with get_peft_model_state_dict on a GPT2ForSequenceClassification:
 * keys base_model.model.transformer.h.{i}.attn.c_attn.lora_{A,B}.weight and
 * base_model.model.score.weight; modules_to_save ['classifier', 'score'], task_type SEQ_CLS).
 * OUT/merged is a reward-model folder whose body differs from the base only in the adapted c_attn
 * weights and whose score.weight is the adapter's; training lowers the pairs' loss. lora_dropout
 * applies to training forwards, seeded per update: the same run twice gives the same losses, and
 * once B has moved from zero the losses differ from the run without dropout.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { metricsSteps } from '../../src/cli/metrics-log.ts';
import { readModelFiles } from '../../src/cli/reward-dump.ts';
import { rewardTrainCommand } from '../../src/cli/reward-train.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { gpt2ParamTable, paramEntry, paramSlice } from '../../src/model/param-table.ts';
import { PEFT_PREFIX } from '../../src/model/peft.ts';
import { readSafetensors, tensorToF32 } from '../../src/model/safetensors.ts';
import { loadGPT2RewardFolder } from '../../src/reward/gpt2-reward-folder.ts';
import type { RewardPair } from '../../src/rl/reward-model-data.ts';
import { REWARD_DEFAULTS, RewardModelTrainer } from '../../src/rl/reward-model-trainer.ts';
import { testGpu } from '../helpers/gpu.ts';

const C = 16;
const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: C, n_layer: 1, n_head: 2 });

describe('rlhf-studio reward-train --use_peft', () => {
  test("writes peft's SEQ_CLS adapter folder and a merged reward model; the loss falls", async () => {
    await testGpu(); // logs the adapter
    const work = mkdtempSync(join(tmpdir(), 'rlhf-rm-lora-'));
    const model = join(work, 'base');
    const base = initGPT2Params(cfg, { seed: 3 });
    mkdirSync(model);
    for (const [f, bytes] of exportHFFolder(cfg, base)) writeFileSync(join(model, f), bytes);
    const pairs = join(work, 'pairs.jsonl');
    const rows = ['This movie was', 'The plot', 'I thought it', 'Honestly, the film'].flatMap((p) => [
      { prompt: p, chosen: ' great, truly great.', rejected: ' awful, truly awful.' },
      { prompt: p, chosen: ' wonderful.', rejected: ' boring.' },
    ]);
    writeFileSync(pairs, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = join(work, 'rm');
    const metrics = join(work, 'metrics.jsonl');
    const args = ['--model', model, '--pairs', pairs, '--eval_pairs', pairs, '--out', out];
    args.push('--metrics', metrics, '--quiet', '--use_peft', '--lora_r', '4', '--lora_alpha', '8', '--merge');
    args.push('--learning_rate', '1e-2', '--per_device_train_batch_size', '8', '--max_steps', '6');
    expect(await rewardTrainCommand.run(args)).toBe(0);

    const lines = metricsSteps(readFileSync(metrics, 'utf8'));
    expect(lines.at(-1)!.eval_loss).toBeLessThan(lines[0].eval_loss);

    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({
      peft_type: 'LORA',
      task_type: 'SEQ_CLS',
      modules_to_save: ['classifier', 'score'],
      r: 4,
      lora_alpha: 8,
      target_modules: ['c_attn'],
    });
    const { tensors } = readSafetensors(readFileSync(join(out, 'adapter_model.safetensors')));
    expect([...tensors.keys()].sort()).toEqual(
      [
        `${PEFT_PREFIX}h.0.attn.c_attn.lora_A.weight`,
        `${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`,
        'base_model.model.score.weight',
      ].sort(),
    );
    const score = tensorToF32(tensors.get('base_model.model.score.weight')!);
    expect(score.length).toBe(C);

    // merged: the body is the base's but for c_attn; score.weight is the adapter's
    const merged = loadGPT2RewardFolder(readModelFiles(join(out, 'merged')), { seed: 0 });
    const table = gpt2ParamTable(cfg, { scoreHead: true });
    expect(Array.from(paramSlice(merged.params, paramEntry(table, 'score.weight')))).toEqual(
      Array.from(score),
    );
    const bodyTable = gpt2ParamTable(cfg);
    for (const e of bodyTable.entries) {
      const a = paramSlice(merged.params, paramEntry(table, e.name));
      const b = paramSlice(base, e);
      expect(
        a.every((x, i) => x === b[i]),
        e.name,
      ).toBe(e.name !== 'h.0.attn.c_attn.weight');
    }
  });

  test('lora_dropout: seeded per update, applied once B is non-zero', async () => {
    const gpu = await testGpu();
    const base = initGPT2Params(cfg, { seed: 5 });
    const scoreTable = gpt2ParamTable(cfg, { scoreHead: true });
    const params = new Float32Array(scoreTable.total);
    params.set(base.subarray(0, gpt2ParamTable(cfg).total));
    const pairs: RewardPair[] = [0, 1, 2, 3].map((i) => ({
      row: i + 1,
      chosen: [464 + i, 3807, 373, 1049, 13],
      rejected: [464 + i, 3807, 373, 12361, 13],
    }));
    const config = { ...REWARD_DEFAULTS, learning_rate: 5e-2, per_device_train_batch_size: 4, max_steps: 4 };
    const losses = async (dropout: number) => {
      const lora = { r: 4, alpha: 8, dropout, targetModules: ['c_attn', 'c_fc'], useRslora: false };
      const t = new RewardModelTrainer(gpu, cfg, params, 50256, pairs, config, lora);
      const out: number[] = [];
      try {
        while (!t.done) out.push((await t.trainStep()).loss);
      } finally {
        t.dispose();
      }
      return out;
    };
    const [a, b, none] = [await losses(0.5), await losses(0.5), await losses(0)];
    expect(a).toEqual(b);
    // Update 0: B = 0, the adapters add nothing whatever the mask.
    expect(a[0]).toBe(none[0]);
    expect(a.slice(2).some((x, i) => x !== none[i + 2])).toBe(true);
    expect(a.every(Number.isFinite)).toBe(true);
  });
});
