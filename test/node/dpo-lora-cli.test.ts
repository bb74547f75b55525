/**
 * `rlhf-studio dpo --use_peft` (src/cli/dpo.ts with src/rl/dpo-lora-trainer.ts) on the tiny
 * full-vocabulary policy of test/fixtures/dpo: --out gets peft's adapter folder (names
 * base_model.model.transformer.h.{i}.attn.c_attn.lora_{A,B}.weight, lora_A (r, C), lora_B (3C, r)),
 * the base is frozen (OUT/merged differs from the base only in the adapted c_attn weights), the first
 * update sees lora_B = 0, so policy = reference and the loss is -logsigmoid(0) = ln 2 (hand
 * derivation), and --adapter DIR continues the saved adapter (its first update is then past ln 2).
 * lora_dropout 0.1 runs the dropout path of the training forward and its backward.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { dpoCommand } from '../../src/cli/dpo.ts';
import { metricsSteps } from '../../src/cli/metrics-log.ts';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { PEFT_PREFIX } from '../../src/model/peft.ts';
import { readSafetensors, tensorToF32 } from '../../src/model/safetensors.ts';
import { testGpu } from '../helpers/gpu.ts';

const POLICY = 'test/fixtures/dpo/policy';
const PAIRS = 'test/fixtures/dpo/pairs.jsonl';
const RUN = ['--max_steps', '2', '--per_device_train_batch_size', '5', '--learning_rate', '1e-2', '--quiet'];

describe('rlhf-studio dpo --use_peft', () => {
  test('writes a peft adapter folder and a merged model; the base stays as it was', async () => {
    await testGpu(); // logs the adapter
    const dir = mkdtempSync(join(tmpdir(), 'dpo-lora-cli-'));
    const out = join(dir, 'out');
    const metrics = join(dir, 'metrics.jsonl');
    const args = ['--model', POLICY, '--pairs', PAIRS, '--out', out, '--metrics', metrics, ...RUN];
    args.push('--use_peft', '--lora_r', '4', '--lora_alpha', '8', '--lora_dropout', '0.1', '--merge');
    expect(await dpoCommand.run(args)).toBe(0);

    const lines = metricsSteps(readFileSync(metrics, 'utf8'));
    expect(lines.length).toBe(2);
    expect(lines[0].loss).toBeCloseTo(Math.LN2, 6);
    expect(lines[1].loss).toBeLessThan(Math.LN2 - 1e-3);

    const base = loadModelDir(POLICY);
    const C = base.config.n_embd;
    expect(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'))).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.1,
      target_modules: ['c_attn'],
      base_model_name_or_path: POLICY,
    });
    const { tensors } = readSafetensors(readFileSync(join(out, 'adapter_model.safetensors')));
    const names = [0, 1].flatMap((l) =>
      ['A', 'B'].map((m) => `${PEFT_PREFIX}h.${l}.attn.c_attn.lora_${m}.weight`),
    );
    expect([...tensors.keys()].sort()).toEqual(names.sort());
    expect(tensors.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_A.weight`)?.shape).toEqual([4, C]);
    expect(tensors.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`)?.shape).toEqual([3 * C, 4]);
    const B = tensorToF32(tensors.get(`${PEFT_PREFIX}h.1.attn.c_attn.lora_B.weight`)!);
    expect(B.some((x) => x !== 0)).toBe(true);

    // The base is frozen: merged = base except the adapted weights.
    const merged = loadModelDir(join(out, 'merged'));
    for (const e of base.table.entries) {
      const a = merged.params.subarray(e.offset, e.offset + e.size);
      const b = base.params.subarray(e.offset, e.offset + e.size);
      expect(
        a.every((x, i) => x === b[i]),
        e.name,
      ).toBe(!/^h\.\d+\.attn\.c_attn\.weight$/.test(e.name));
    }

    // --adapter continues from the saved adapter: its first update no longer sees policy = reference.
    const metrics2 = join(dir, 'metrics2.jsonl');
    const again = ['--model', POLICY, '--pairs', PAIRS, '--out', join(dir, 'out2'), '--metrics', metrics2];
    expect(await dpoCommand.run([...again, '--adapter', out, ...RUN])).toBe(0);
    const cont = metricsSteps(readFileSync(metrics2, 'utf8'));
    expect(cont[0].loss).toBeLessThan(lines[1].loss + 1e-3);
    expect(JSON.parse(readFileSync(join(dir, 'out2', 'adapter_config.json'), 'utf8')).r).toBe(4);
  });

  test('LoRA flags that do not fit are usage errors before any work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpo-lora-cli-'));
    const base = ['--model', POLICY, '--pairs', PAIRS, '--out', join(dir, 'out')];
    await expect(dpoCommand.run([...base, '--use_peft', '--ref', POLICY])).rejects.toThrow(/drop --ref/);
    await expect(dpoCommand.run([...base, '--merge'])).rejects.toThrow(/--merge needs LoRA/);
    await expect(dpoCommand.run([...base, '--lora_r', '8'])).rejects.toThrow(/--lora_r needs --use_peft/);
    await expect(dpoCommand.run([...base, '--adapter', dir, '--lora_r', '8'])).rejects.toThrow(
      /has its own LoRA settings; drop --lora_r/,
    );
  });
});
