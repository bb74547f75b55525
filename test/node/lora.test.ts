/**
 * LoRA on our kernels against PyTorch + peft 0.21: fixtures made by
 * test/fixtures/scripts/make_lora_fixture.py (a tiny GPT-2, vocabulary 97; r 4, r 8 with rslora, r 8 on
 * c_attn only; random non-zero A and B; lora_dropout 0; left-padded rows). Tolerances are the project's
 * conformance ones: logits max |err| <= 1e-4 * max(1, max|ref|), loss 1e-5 relative, each LoRA gradient
 * max |err| <= 1e-3 * max|ref|. The base weights must get no gradient block at all.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { GPT2 } from '../../src/model/gpt2.ts';
import { Lora } from '../../src/model/lora.ts';
import {
  loadPeftAdapter,
  mergeAdapterFolder,
  mergeLora,
  PEFT_PREFIX,
  savePeftAdapter,
} from '../../src/model/peft.ts';
import { paramSlice } from '../../src/model/param-table.ts';
import { readSafetensors, tensorToF32, tensorToInt32, type TensorMap } from '../../src/model/safetensors.ts';
import { IGNORE_INDEX, shiftLabels } from '../../src/ops/crossentropy.ts';
import { Generator } from '../../src/model/generate.ts';
import { testGpu } from '../helpers/gpu.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { maxAbs, maxErr } from '../helpers/compare.ts';

const root = 'test/fixtures/lora';
const CASES = ['r4', 'r8-rslora', 'r8-attn'];

export function readDir(dir: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

function readState(name: string): TensorMap {
  return readSafetensors(readFileSync(`${root}/${name}/state.safetensors`)).tensors;
}

/** Logits (B, T, V), loss and d loss / d LoRA block for the state's batch, adapters enabled or not. */
async function run(gpu: Gpu, net: GPT2, state: TensorMap, { backward }: { backward: boolean }) {
  const ids = tensorToInt32(state.get('input_ids')!);
  const [B, T] = state.get('input_ids')!.shape;
  const V = net.config.vocab_size;
  const batch = {
    B,
    T,
    ids,
    mask: tensorToInt32(state.get('attention_mask')!),
    positions: tensorToInt32(state.get('position_ids')!),
  };
  net.forward(batch);
  const targets = shiftLabels(tensorToInt32(state.get('labels')!), { B, T });
  const count = targets.reduce((n, t) => n + (t === IGNORE_INDEX ? 0 : 1), 0);
  const reads: Promise<[number, number, Float32Array]>[] = [];
  const head = net.headForward(targets, {
    onLogits: (chunk, r0, R) => reads.push(gpu.readF32(chunk, R * net.ldV).then((d) => [r0, R, d])),
  });
  const logprob = await gpu.readF32(head.logprob, B * T);
  const logits = new Float32Array(B * T * V);
  for (const [r0, R, data] of await Promise.all(reads))
    for (let r = 0; r < R; r++) logits.set(data.subarray(r * net.ldV, r * net.ldV + V), (r0 + r) * V);
  let loss = 0;
  for (let i = 0; i < B * T; i++) if (targets[i] !== IGNORE_INDEX) loss -= logprob[i] / count;
  if (!backward) return { logits, loss, grads: null };
  net.zeroGrads();
  net.headBackward({ dlogprob: -1 / count });
  net.backward();
  return { logits, loss, grads: await gpu.readF32(net.trainGrads(), net.trainTable.total) };
}

describe('LoRA on our kernels equals PyTorch + peft', () => {
  for (const name of CASES) {
    test(`${name}: logits, loss, every lora_A / lora_B gradient; adapters off = the base`, async () => {
      const gpu = await testGpu();
      const base = loadModelDir(`${root}/base`);
      const adapter = loadPeftAdapter(readDir(`${root}/${name}/adapter`), base.config);
      const state = readState(name);
      const net = new GPT2(gpu, base.config, base.params);
      const lora = new Lora(gpu, base.config, adapter.lora, adapter.params);
      net.attachLora(lora);
      const created = vi.spyOn(gpu, 'createBuffer');
      const got = await run(gpu, net, state, { backward: true });
      expect(net.grads, 'no base gradient block').toBeNull();
      // Nothing as large as the base parameters (wte alone is 97 x 32) is allocated by forward + backward.
      const sizes = created.mock.calls.map(([bytes, label]) => ({ bytes, label }));
      created.mockRestore();
      expect(sizes.filter((b) => b.label === 'gpt2.grads' || b.bytes >= base.params.length * 4)).toEqual([]);
      expect(sizes.some((b) => b.label === 'lora.grads')).toBe(true);

      const refLogits = tensorToF32(state.get('logits')!);
      const logitsErr = maxErr(got.logits, refLogits);
      expect(logitsErr, 'logits').toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(refLogits)));
      const refLoss = tensorToF32(state.get('loss')!)[0];
      expect(Math.abs(got.loss - refLoss) / refLoss, 'loss').toBeLessThanOrEqual(1e-5);
      const gradKeys = [...state.keys()].filter((k) => k.startsWith('grad.'));
      expect(gradKeys.length).toBe(lora.table.slots.length * 2);
      let worst = 0;
      for (const key of gradKeys) {
        const e = lora.table.byName.get(key.slice(`grad.${PEFT_PREFIX}`.length));
        expect(e, key).toBeDefined();
        const want = tensorToF32(state.get(key)!);
        const rel = maxErr(paramSlice(got.grads!, e!), want) / maxAbs(want);
        worst = Math.max(worst, rel);
        expect(rel, `${key}: max |err| / max |ref|`).toBeLessThanOrEqual(1e-3);
      }

      net.adaptersEnabled = false;
      const off = await run(gpu, net, state, { backward: false });
      const refBase = tensorToF32(state.get('base_logits')!);
      expect(maxErr(off.logits, refBase), 'base logits').toBeLessThanOrEqual(
        1e-4 * Math.max(1, maxAbs(refBase)),
      );
      console.log(
        `[lora ${name}] logits max|err| ${logitsErr.toExponential(2)}, loss ${got.loss} vs ${refLoss}, ` +
          `worst grad err/max ${worst.toExponential(2)}`,
      );
      net.dispose();
      lora.dispose();
    });
  }

  test('greedy generation with the adapter equals peft generate(do_sample=False)', async () => {
    const gpu = await testGpu();
    const base = loadModelDir(`${root}/base`);
    for (const name of CASES) {
      const adapter = loadPeftAdapter(readDir(`${root}/${name}/adapter`), base.config);
      const state = readState(name);
      const net = new GPT2(gpu, base.config, base.params);
      net.attachLora(new Lora(gpu, base.config, adapter.lora, adapter.params));
      const prompts = tensorToInt32(state.get('greedy_prompts')!);
      const [P, L] = state.get('greedy_prompts')!.shape;
      const want = tensorToInt32(state.get('greedy')!);
      const S = state.get('greedy')!.shape[1];
      const gen = new Generator(net);
      const rows = Array.from({ length: P }, (_, b) => Array.from(prompts.subarray(b * L, (b + 1) * L)));
      const { ids } = await gen.generate(rows, { maxNewTokens: S, greedy: true, stopAtEos: false });
      expect(ids, name).toEqual(
        Array.from({ length: P }, (_, b) => Array.from(want.subarray(b * S, (b + 1) * S))),
      );
      gen.dispose();
      net.adapters!.dispose();
      net.dispose();
    }
  });

  test('merged weights (W + scaling (B A)^T) give the adapted logits without adapters', async () => {
    const gpu = await testGpu();
    const base = loadModelDir(`${root}/base`);
    const adapter = loadPeftAdapter(readDir(`${root}/r8-rslora/adapter`), base.config);
    const state = readState('r8-rslora');
    const merged = mergeLora(base.config, base.params, adapter.table, adapter.params);
    const net = new GPT2(gpu, base.config, merged);
    const got = await run(gpu, net, state, { backward: false });
    const ref = tensorToF32(state.get('logits')!);
    expect(maxErr(got.logits, ref)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(ref)));
    net.dispose();
  });

  test('an adapter folder merges only into the base it names', () => {
    const base = loadModelDir(`${root}/base`);
    const adapter = loadPeftAdapter(readDir(`${root}/r8-rslora/adapter`), base.config);
    const folder = savePeftAdapter(adapter.table, adapter.params, { baseModel: 'hub/base' });
    const block = base.params.subarray(0, base.table.total);
    expect(mergeAdapterFolder(folder, base.config, block, 'hub/base')).toEqual(
      mergeLora(base.config, block, adapter.table, adapter.params),
    );
    expect(() => mergeAdapterFolder(folder, base.config, block, 'hub/other', 'run 2')).toThrow(
      'run 2 is a LoRA adapter on hub/base, not on hub/other: load that base to merge it into',
    );
    expect(() => mergeAdapterFolder(folder, base.config, block, null)).toThrow(/not on an unnamed base/);
  });

  test("a saved adapter holds peft's names and config, and loads back to the same block", () => {
    const base = loadModelDir(`${root}/base`);
    const files = readDir(`${root}/r4/adapter`);
    const adapter = loadPeftAdapter(files, base.config);
    const saved = savePeftAdapter(adapter.table, adapter.params, { baseModel: 'gpt2' });
    const ref = readSafetensors(files.get('adapter_model.safetensors')!).tensors;
    const mine = readSafetensors(saved.get('adapter_model.safetensors')!).tensors;
    expect([...mine.keys()].sort()).toEqual([...ref.keys()].sort());
    for (const [k, t] of ref) expect(tensorToF32(mine.get(k)!), k).toEqual(tensorToF32(t));
    const cfg = JSON.parse(new TextDecoder().decode(saved.get('adapter_config.json')!)) as Record<
      string,
      unknown
    >;
    const refCfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!)) as Record<
      string,
      unknown
    >;
    for (const f of [
      'peft_type',
      'r',
      'lora_alpha',
      'lora_dropout',
      'fan_in_fan_out',
      'use_rslora',
      'bias',
      'task_type',
    ])
      expect(cfg[f], f).toEqual(refCfg[f]);
    expect([...(cfg.target_modules as string[])].sort()).toEqual(
      [...(refCfg.target_modules as string[])].sort(),
    );
    const again = loadPeftAdapter(saved, base.config);
    expect(again.params).toEqual(adapter.params);
  });

  test('a bad adapter folder is refused naming the problem', () => {
    const base = loadModelDir(`${root}/base`);
    const files = readDir(`${root}/r4/adapter`);
    const cfg = (patch: Record<string, unknown>) => {
      const j = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!)) as Record<
        string,
        unknown
      >;
      return new Map([
        ...files,
        ['adapter_config.json', new TextEncoder().encode(JSON.stringify({ ...j, ...patch }))],
      ]);
    };
    expect(() => loadPeftAdapter(cfg({ r: 8 }), base.config)).toThrow(
      /lora_A.weight is \[4, 32\].*\[8, 32\]/,
    );
    expect(() => loadPeftAdapter(cfg({ use_dora: true }), base.config)).toThrow(/use_dora/);
    expect(() => loadPeftAdapter(cfg({ target_modules: ['q_proj'] }), base.config)).toThrow(/q_proj/);
    expect(() => loadPeftAdapter(cfg({ target_modules: ['c_attn'] }), base.config)).toThrow(/unexpected/);
    expect(() => loadPeftAdapter(new Map(), base.config)).toThrow(/adapter_config.json is missing/);
  });
});
