/**
 * DPO with LoRA (src/rl/dpo-lora-trainer.ts) on a tiny random GPT-2 and id pairs: the reference is
 * the base with the adapters off, so the first update, taken while lora_B is still zero, sees
 * policy = reference (z = 0, loss = -logsigmoid(0) = ln 2, implicit rewards 0: hand derivation);
 * the base stays frozen (reference log-probs unchanged by training, merged weights differ from the
 * base only where adapters sit), the loss falls, and the adapter folder has peft's names and shapes.
 */
import { describe, expect, test } from 'vitest';
import type { TokenizedPair } from '../../src/data/preferences.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { loadHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import { loraTable, type LoraConfig } from '../../src/model/lora-table.ts';
import { gpt2ParamTable } from '../../src/model/param-table.ts';
import { PEFT_PREFIX } from '../../src/model/peft.ts';
import { readSafetensors, tensorToF32 } from '../../src/model/safetensors.ts';
import { DPO_CONFIG_DEFAULTS } from '../../src/rl/dpo-config.ts';
import { LoraDPOTrainer } from '../../src/rl/dpo-lora-trainer.ts';
import { testGpu } from '../helpers/gpu.ts';

const config = makeGPT2Config({ vocab_size: 64, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 });
const LORA: LoraConfig = { r: 4, alpha: 8, dropout: 0, targetModules: ['c_attn'], useRslora: false };
const seq = (prompt: number[], completion: number[]) => ({
  ids: [...prompt, ...completion],
  promptLength: prompt.length,
});
/** Uneven lengths on purpose. */
const PAIRS: TokenizedPair[] = [
  { row: 1, chosen: seq([5, 9, 2], [11, 12, 13]), rejected: seq([5, 9, 2], [40, 41]) },
  { row: 2, chosen: seq([7, 1], [20, 21, 22, 23]), rejected: seq([7, 1], [50]) },
];

describe('LoraDPOTrainer', () => {
  test('starts at ln 2 with a frozen base, learns, and saves a peft adapter', async () => {
    const gpu = await testGpu();
    const base = {
      config,
      table: gpt2ParamTable(config),
      params: initGPT2Params(config, { seed: 3 }),
      valueHeadLoaded: false,
    };
    const trainer = new LoraDPOTrainer(gpu, base, LORA, PAIRS, {
      ...DPO_CONFIG_DEFAULTS,
      learning_rate: 1e-2,
      per_device_train_batch_size: 2,
      max_steps: 3,
      max_length: null,
      max_prompt_length: null,
    });
    try {
      const batch = trainer.layout(PAIRS);
      const refBefore = await trainer.refLogps(batch);
      const losses: number[] = [];
      let first: Record<string, number> | null = null;
      while (!trainer.done) {
        const { stats } = await trainer.step();
        first ??= stats;
        losses.push(stats.loss);
      }
      expect(losses).toHaveLength(3);
      expect(first!.loss).toBeCloseTo(Math.LN2, 6);
      expect(Math.abs(first!['rewards/chosen'])).toBeLessThan(1e-6);
      expect(losses[2]).toBeLessThan(losses[0]);

      // The base is frozen: the reference (adapters off) gives the same log-probs after training.
      const refAfter = await trainer.refLogps(batch);
      for (let i = 0; i < PAIRS.length; i++) {
        expect(refAfter.chosen[i]).toBeCloseTo(refBefore.chosen[i], 5);
        expect(refAfter.rejected[i]).toBeCloseTo(refBefore.rejected[i], 5);
      }
      const policy = await trainer.policyLogps(PAIRS);
      expect(Math.abs(policy.chosen[0] - refAfter.chosen[0])).toBeGreaterThan(1e-4);

      // peft's names and shapes; lora_B has moved from its zero init.
      const files = await trainer.exportAdapter('tiny');
      expect(JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')))).toMatchObject({
        r: 4,
        lora_alpha: 8,
        target_modules: ['c_attn'],
        base_model_name_or_path: 'tiny',
      });
      const { tensors } = readSafetensors(files.get('adapter_model.safetensors')!);
      const table = loraTable(config, LORA);
      expect([...tensors.keys()].sort()).toEqual(table.entries.map((e) => PEFT_PREFIX + e.name).sort());
      expect(tensors.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`)?.shape).toEqual([48, 4]);
      const B = tensorToF32(tensors.get(`${PEFT_PREFIX}h.0.attn.c_attn.lora_B.weight`)!);
      expect(B.some((x) => x !== 0)).toBe(true);

      // Merged: c_attn changed, everything else is the base's.
      const merged = loadHFFolder(await trainer.exportMerged());
      for (const e of gpt2ParamTable(config).entries) {
        const a = merged.params.subarray(e.offset, e.offset + e.size);
        const b = base.params.subarray(e.offset, e.offset + e.size);
        const same = a.every((x, i) => x === b[i]);
        expect(same, e.name).toBe(e.name !== 'h.0.attn.c_attn.weight');
      }
    } finally {
      trainer.dispose();
    }
  });
});
