// `rlhf-studio dpo-dump` against PyTorch: test/fixtures/dpo/ is written by
// test/fixtures/scripts/make_dpo_fixture.py (transformers GPT-2s with the full 50257 vocabulary,
// TRL 0.19's DPO formulas; cases.json names each case's loss type, beta and label smoothing).
// Tolerances from the issue: loss rel 1e-5, log-probs 1e-4 abs, every gradient within 1e-3 of
// its tensor's max |g| (the wte gradient on the fixture's sampled rows, scaled by the full max).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { dpoDumpCommand, readPairsArg } from '../../src/cli/dpo-dump.ts';
import { tokenizePairs } from '../../src/data/preferences.ts';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { encode } from '../../src/model/tokenizer.ts';
import type { DPOLossType } from '../../src/rl/dpo.ts';
import { dpoDump, dpoDumpTensors } from '../../src/rl/dpo-dump.ts';
import {
  readSafetensors,
  writeSafetensors,
  tensorToF32,
  tensorToInt32,
  type TensorMap,
} from '../../src/model/safetensors.ts';
import { expectClose, testGpu } from '../helpers/gpu.ts';

const FIX = 'test/fixtures/dpo';
const cases = JSON.parse(readFileSync(`${FIX}/cases.json`, 'utf8')) as Record<
  string,
  { loss_type: string; beta: number; label_smoothing: number }
>;
const out = mkdtempSync(join(tmpdir(), 'dpo-dump-'));
const f32 = (m: TensorMap, k: string) => {
  const t = m.get(k);
  if (!t) throw new Error(`no tensor ${k}`);
  return tensorToF32(t);
};
const absMax = (x: ArrayLike<number>) => Array.from(x).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('dpo-dump equals PyTorch (TRL formulas)', () => {
  // The first case through the command itself (its own device); the others in-process on the
  // file's device, which saves compiling every pipeline again.
  test.each(Object.keys(cases))('%s', async (name) => {
    const gpu = await testGpu();
    const c = cases[name];
    const path = join(out, `${name}.safetensors`);
    if (name === Object.keys(cases)[0]) {
      const args = ['--model', `${FIX}/policy`, '--ref', `${FIX}/ref`, '--pairs', `${FIX}/pairs.jsonl`];
      args.push('--beta', String(c.beta), '--loss_type', c.loss_type);
      args.push('--label_smoothing', String(c.label_smoothing), '--out', path);
      expect(await dpoDumpCommand.run(args)).toBe(0);
    } else {
      const policy = loadModelDir(`${FIX}/policy`);
      const ref = loadModelDir(`${FIX}/ref`);
      const pairs = tokenizePairs(await readPairsArg(`${FIX}/pairs.jsonl`), encode);
      const settings = {
        beta: c.beta,
        lossType: c.loss_type as DPOLossType,
        labelSmoothing: c.label_smoothing,
      };
      const r = await dpoDump(gpu, { policy, ref }, pairs, settings, { prefixed: policy.prefixed });
      writeFileSync(path, writeSafetensors(dpoDumpTensors(r)));
    }
    const got = readSafetensors(readFileSync(path)).tensors;
    const want = readSafetensors(readFileSync(`${FIX}/case-${name}.safetensors`)).tensors;

    const loss = f32(want, 'loss')[0];
    expectClose(f32(got, 'loss'), [loss], { atol: 0, rtol: 1e-5, what: 'loss' });
    for (const k of ['chosen_logps', 'rejected_logps'])
      expectClose(f32(got, k), f32(want, k), { atol: 1e-4, rtol: 0, what: k });
    // rewards = beta * (logp - ref logp): the log-prob tolerance scaled by beta
    for (const k of ['chosen_rewards', 'rejected_rewards'])
      expectClose(f32(got, k), f32(want, k), { atol: 2e-4 * c.beta, rtol: 0, what: k });
    for (const k of ['mean_chosen_logits', 'mean_rejected_logits'])
      expectClose(f32(got, k), f32(want, k), { atol: 1e-5, rtol: 1e-4, what: k });

    const wteKey = 'grad.transformer.wte.weight';
    const gradKeys = [...want.keys()].filter((k) => k.startsWith('grad.') && !k.startsWith(wteKey));
    expect(gradKeys.length).toBe(27); // 2 layers x 12 + wpe + ln_f weight and bias
    for (const k of gradKeys) {
      const w = f32(want, k);
      expectClose(f32(got, k), w, { atol: 1e-3 * absMax(w), rtol: 0, what: k });
    }
    const wte = f32(got, wteKey);
    const C = 32;
    expect(wte.length).toBe(50257 * C);
    const rows = tensorToInt32(want.get(`${wteKey}.rows`)!);
    const sampled = new Float32Array(rows.length * C);
    rows.forEach((r, i) => sampled.set(wte.subarray(r * C, (r + 1) * C), i * C));
    const scale = f32(want, `${wteKey}.absmax`)[0];
    expect(absMax(wte)).toBeCloseTo(scale, 5);
    expectClose(sampled, f32(want, `${wteKey}.sampled`), { atol: 1e-3 * scale, rtol: 0, what: wteKey });
  });
});
