/**
 * GPT-2 forward and backward on our kernels against Hugging Face transformers (PyTorch, float32):
 * fixtures made by test/fixtures/scripts/make_gpt2_fixtures.sh with ../shared/reference/
 * make_gpt2_states.py, in both weight layouts, with plain and left-padded inputs. Tolerances are
 * ../shared/conformance/README.md's: logits max |err| <= 1e-4 * max(1, max|ref|), loss 1e-5 relative,
 * each gradient max |err| <= 1e-3 * max|ref|.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { gpt2Dump } from '../../src/model/dump.ts';
import { GPT2 } from '../../src/model/gpt2.ts';
import { readSafetensors, tensorToF32 } from '../../src/model/safetensors.ts';
import { expectClose, testGpu } from '../helpers/gpu.ts';
import { maxAbs, maxErr } from '../helpers/compare.ts';

const root = 'test/fixtures/gpt2';

describe('GPT-2 on our kernels equals transformers', () => {
  for (const layout of ['prefix', 'noprefix']) {
    for (const input of ['plain', 'leftpad']) {
      test(`${layout} layout, ${input} inputs: logits, loss and every gradient`, async () => {
        const gpu = await testGpu();
        const model = loadModelDir(`${root}/${layout}/model`);
        expect(model.prefixed).toBe(layout === 'prefix');
        const ref = readSafetensors(readFileSync(`${root}/${layout}/state-${input}.safetensors`)).tensors;
        const got = await gpt2Dump(gpu, model, ref, { prefixed: model.prefixed });

        const refLogits = tensorToF32(ref.get('logits')!);
        const logitsErr = maxErr(got.logits, refLogits);
        expect(logitsErr, 'logits max |err|').toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(refLogits)));
        const refLoss = tensorToF32(ref.get('loss')!)[0];
        expect(Math.abs(got.loss - refLoss) / Math.abs(refLoss), 'loss relative error').toBeLessThanOrEqual(
          1e-5,
        );

        const gradKeys = [...ref.keys()].filter((k) => k.startsWith('grad.'));
        // The no-prefix reference drops h.N.attn.c_attn.bias along with the h.N.attn.bias buffers (its
        // filter is endswith("attn.bias")), so every reference gradient must be among ours, not the reverse.
        expect(got.grads.size).toBeGreaterThanOrEqual(gradKeys.length);
        expect(got.grads.size).toBe(model.table.entries.length);
        let worst = 0;
        for (const key of gradKeys) {
          const want = tensorToF32(ref.get(key)!);
          const mine = got.grads.get(key.slice('grad.'.length));
          expect(mine, `${key} computed`).toBeDefined();
          const rel = maxErr(mine!.data, want) / maxAbs(want);
          worst = Math.max(worst, rel);
          expect(rel, `${key}: max |err| / max |ref|`).toBeLessThanOrEqual(1e-3);
        }
        console.log(
          `[gpt2 ${layout}/${input}] logits max|err| ${logitsErr.toExponential(2)}, loss ${got.loss} vs ${refLoss}, ` +
            `worst grad err/max ${worst.toExponential(2)}`,
        );
      });
    }
  }
});

describe('the chunked LM head', () => {
  test('logits in 64-row chunks (recomputed in backward) give the one-chunk gradients', async () => {
    // Expected values: the same model with one chunk, whose own gradients match transformers above.
    const gpu = await testGpu();
    const model = loadModelDir(`${root}/prefix/model`);
    const V = model.config.vocab_size;
    const [B, T] = [5, 30]; // 150 rows: three chunks of at most 64
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % V);
    const targets = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T === 0 ? -1 : ids[i + 1]));
    const grads = async (logitsChunkBytes?: number) => {
      const net = new GPT2(gpu, model.config, model.params, { logitsChunkBytes });
      net.forward({ B, T, ids });
      const lp = await gpu.readF32(net.headForward(targets).logprob, B * T);
      net.zeroGrads();
      net.headBackward({ dlogprob: -1 / (B * T) });
      net.backward();
      const g = await gpu.readF32(net.grads!, net.table.total);
      net.dispose();
      return { lp, g };
    };
    const one = await grads();
    const chunked = await grads(64 * Math.ceil(V / 4) * 4 * 4);
    expectClose(chunked.lp, one.lp, { atol: 1e-6, rtol: 1e-6, what: 'log-probs' });
    expectClose(chunked.g, one.g, { atol: 1e-6, rtol: 1e-4, what: 'gradients' });
  });
});
