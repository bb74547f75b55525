/**
 * LoRA PPO: the session trains only the adapters and the value head (the base block is bit-identical
 * after two steps, its gradient block never exists, Adam's moments are the LoRA block's size), the
 * reference is the policy's own GPT2 with adapters off (its log-probs equal a separate base model's),
 * and the saved folder is a peft adapter that loads back. Then the CLI end to end: `train --use_peft
 * --merge`, `generate --adapter` against the merged folder, and `export --adapter --merge` against
 * the merged weights train wrote.
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
import { loadPeftAdapter } from '../../src/model/peft.ts';
import { gpt2ParamTable, paramSlice } from '../../src/model/param-table.ts';
import { loraTable } from '../../src/model/lora-table.ts';
import { TRL_DEFAULTS, validatePPOConfig } from '../../src/rl/config.ts';
import { nextTokenTargets, PolicyWithValueHead } from '../../src/rl/policy.ts';
import { loraPolicyBlock } from '../../src/rl/lora-policy.ts';
import { TrainingSession } from '../../src/rl/session.ts';
import { expectClose, randn, testGpu } from '../helpers/gpu.ts';

const bin = 'bin/rlhf-studio.mjs';

describe('LoRA PPO session', () => {
  test('trains adapters and value head only; the reference is the base; saves a peft folder', async () => {
    const gpu = await testGpu();
    const model = loadModelDir('test/fixtures/lora/base');
    const config = validatePPOConfig({
      ...TRL_DEFAULTS,
      batch_size: 4,
      mini_batch_size: 2,
      ppo_epochs: 1,
      learning_rate: 1e-2,
      seed: 3,
    });
    const queries = [
      [1, 2, 3],
      [4, 5],
      [6, 7, 8, 9],
      [10, 11],
    ];
    const session = new TrainingSession(gpu, {
      model,
      // A reward for the number of token 7 in the text (ids joined by spaces).
      reward: (texts) => Promise.resolve(texts.map((t) => t.split(' ').filter((x) => x === '7').length)),
      prompts: { batch: () => queries.map((tokens) => ({ tokens })) },
      decode: (ids) => ids.map((i) => ` ${i}`).join(''),
      config,
      rollout: { responseMinLength: 3, responseMaxLength: 6, padId: 96 },
      lora: {
        config: {
          r: 4,
          alpha: 8,
          dropout: 0.1,
          targetModules: ['c_attn', 'c_proj', 'c_fc'],
          useRslora: false,
        },
        baseModel: 'tiny',
      },
    });
    const net = session.policy.net;
    expect(session.ref.net).toBe(net);
    const loraTotal = net.adapters!.table.total;
    expect(session.policy.opt.N).toBe(loraTotal);
    const lora0 = await net.adapters!.readParams();
    for (let s = 0; s < 2; s++) {
      const r = await session.trainStep();
      expect(Number.isFinite(r.stats['ppo/loss/total'])).toBe(true);
    }
    expect(net.grads, 'no base gradient block').toBeNull();
    const base = await net.readParams();
    expect(base).toEqual(model.params.subarray(0, base.length));
    const lora1 = await net.adapters!.readParams();
    const slot = net.adapters!.table.slots[0];
    expect(
      paramSlice(lora0, slot.B).every((x) => x === 0),
      'peft init: B = 0',
    ).toBe(true);
    expect(
      paramSlice(lora1, slot.B).some((x) => x !== 0),
      'B trained',
    ).toBe(true);

    // Reference log-probs = a separate copy of the base.
    const rows = { B: 2, T: 5, ids: Int32Array.from([1, 2, 3, 4, 5, 9, 8, 7, 6, 5]) };
    const refLp = await session.ref.logprobs(rows);
    const plain = new GPT2(gpu, model.config, model.params.subarray(0, base.length));
    plain.forward(rows);
    const h = plain.headForward(nextTokenTargets(rows));
    const lp = await gpu.readF32(h.logprob, 10);
    expect(Array.from(refLp)).toEqual([0, 1, 2, 3, 5, 6, 7, 8].map((i) => lp[i]));
    const pol = await session.policy.forward(rows);
    expect(pol.logprobs).not.toEqual(refLp);
    plain.dispose();

    const files = await session.exportFolder();
    expect([...files.keys()].sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'model.safetensors',
    ]);
    const back = loadPeftAdapter(files, model.config, { valueHead: true });
    expect(back.valueHeadLoaded).toBe(true);
    expect(back.params).toEqual(lora1);
    session.dispose();
  }, 120_000);
});

describe('continuing from a peft adapter', () => {
  test('the policy block starts from the adapter; a value head missing from the folder is initialised', () => {
    const model = loadModelDir('test/fixtures/lora/base');
    const files = new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        new Uint8Array(readFileSync(join('test/fixtures/lora/r4/adapter', f))),
      ]),
    );
    const adapter = loadPeftAdapter(files, model.config, { valueHead: true });
    expect(adapter.valueHeadLoaded).toBe(false);
    const block = loraPolicyBlock(model, { config: adapter.lora, adapter }, 1);
    for (const s of adapter.table.slots)
      for (const e of [s.A, s.B]) expect(paramSlice(block.params, e)).toEqual(paramSlice(adapter.params, e));
    const vw = adapter.table.byName.get('v_head.summary.weight')!;
    const bound = 1 / Math.sqrt(model.config.n_embd); // nn.Linear(C, 1) init
    const v = paramSlice(block.params, vw);
    expect(v.some((x) => x !== 0)).toBe(true);
    expect(v.every((x) => Math.abs(x) <= bound)).toBe(true);
  });
});

describe('micro-batches', () => {
  test('forward/backward in parts of 2 rows gives the outputs and gradients of the whole batch', async () => {
    // Expected values: the same policy run on all 5 rows at once.
    const gpu = await testGpu();
    const model = loadModelDir('test/fixtures/lora/base');
    const base = model.params.subarray(0, gpt2ParamTable(model.config).total);
    const config = {
      r: 4,
      alpha: 8,
      dropout: 0,
      targetModules: ['c_attn', 'c_proj', 'c_fc'],
      useRslora: true,
    };
    const lora = {
      config,
      params: randn(loraTable(model.config, config, { valueHead: true }).total, 4, -0.3, 0.3),
    };
    const [B, T] = [5, 7];
    const rows = { B, T, ids: Int32Array.from({ length: B * T }, (_, i) => (i * 13) % 97) };
    const dl = randn(B * (T - 1), 5);
    const dv = randn(B * (T - 1), 6);
    const outs = [];
    for (const microBatch of [null, 2]) {
      const p = new PolicyWithValueHead(gpu, model.config, base, { learningRate: 1e-3, lora, microBatch });
      const f = await p.forward(rows, { train: true });
      p.zeroGrads();
      p.backward(dl, dv);
      outs.push({ f, g: await gpu.readF32(p.net.trainGrads(), p.net.trainTable.total) });
      p.dispose();
    }
    expectClose(outs[1].f.logprobs, outs[0].f.logprobs, { what: 'logprobs' });
    expectClose(outs[1].f.values!, outs[0].f.values!, { what: 'values' });
    expectClose(outs[1].g, outs[0].g, { atol: 1e-5, rtol: 1e-4, what: 'gradients' });
  });
});

describe('rlhf-studio with LoRA', () => {
  test('train --use_peft --merge, generate --adapter = generate on the merged folder, export --merge', () => {
    const policy = mkdtempSync(join(tmpdir(), 'lora-policy-'));
    const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 64, n_embd: 16, n_layer: 1, n_head: 2 });
    for (const [name, bytes] of exportHFFolder(cfg, initGPT2Params(cfg, { seed: 3 })))
      writeFileSync(join(policy, name), bytes);
    const out = mkdtempSync(join(tmpdir(), 'lora-out-'));
    const run = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    run(
      'train',
      '--model',
      policy,
      '--reward',
      'test/fixtures/reward/tiny-distilbert',
      '--prompts',
      'test/fixtures/prompts/prompts.txt',
      '--steps',
      '1',
      '--batch_size',
      '4',
      '--mini_batch_size',
      '2',
      '--ppo_epochs',
      '1',
      '--learning_rate',
      '1e-2',
      '--response-max-length',
      '6',
      '--use_peft',
      '--lora_r',
      '4',
      '--lora_alpha',
      '16',
      '--lora_target_modules',
      'c_attn,c_proj,c_fc',
      '--use_rslora',
      '--out',
      join(out, 'adapter'),
      '--merge',
      '--quiet',
    );
    const adapter = loadPeftAdapter(
      new Map(
        ['adapter_config.json', 'adapter_model.safetensors', 'model.safetensors'].map((f) => [
          f,
          execFileSync('cat', [join(out, 'adapter', f)]),
        ]),
      ),
      cfg,
      { valueHead: true },
    );
    expect(adapter.lora).toEqual({
      r: 4,
      alpha: 16,
      dropout: 0.05,
      targetModules: ['c_attn', 'c_proj', 'c_fc'],
      useRslora: true,
    });
    expect(adapter.valueHeadLoaded).toBe(true);
    const gen = (...args: string[]) =>
      (
        JSON.parse(
          run(
            'generate',
            ...args,
            '--prompt-ids',
            '464,3807',
            '--prompt-ids',
            '40',
            '--max-new-tokens',
            '6',
            '--greedy',
            '--ignore-eos',
            '--json',
          ),
        ) as { results: { generated_ids: number[] }[] }
      ).results.map((r) => r.generated_ids);
    const withAdapter = gen('--model', policy, '--adapter', join(out, 'adapter'));
    expect(withAdapter).toEqual(gen('--model', join(out, 'adapter', 'merged')));
    run(
      'export',
      '--model',
      policy,
      '--adapter',
      join(out, 'adapter'),
      '--merge',
      '--out',
      join(out, 'exported'),
    );
    const a = loadModelDir(join(out, 'exported'));
    const b = loadModelDir(join(out, 'adapter', 'merged'));
    expect(a.params).toEqual(b.params);
    const base = loadModelDir(policy);
    expect(a.params).not.toEqual(base.params);
  }, 300_000);
});
