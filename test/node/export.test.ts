/**
 * `rlhf-studio export` and `rlhf-studio generate` through the built CLI (bin/rlhf-studio.mjs):
 * exported folders reload with our loader to identical parameters and identical logits, and those
 * logits equal transformers' (test/fixtures/weights/tiny/expected.json, made by make_weights.py with
 * GPT2LMHeadModel; max |err| <= 1e-4 as ../shared/conformance/README.md). Loading the exported folder
 * in transformers itself is test/fixtures/scripts/check_export_interop.py (CI has no Python).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModelDir } from '../../src/cli/model-dir.ts';
import { makeGPT2Config } from '../../src/model/config.ts';
import { GPT2 } from '../../src/model/gpt2.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';
import type { LoadedGPT2 } from '../../src/model/safetensors.ts';
import { decode } from '../../src/model/tokenizer.ts';
import { testGpu } from '../helpers/gpu.ts';
import { maxErr } from '../helpers/compare.ts';

const bin = 'bin/rlhf-studio.mjs';
const cli = (...args: string[]) => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const tmp = () => mkdtempSync(join(tmpdir(), 'rlhf-export-'));

/** Logits (T, V) of one row of ids on our kernels. */
async function logitsOf(m: LoadedGPT2, ids: number[]): Promise<Float32Array> {
  const gpu = await testGpu();
  const net = new GPT2(gpu, m.config, m.params);
  const T = ids.length;
  net.forward({ B: 1, T, ids: Int32Array.from(ids) });
  const V = m.config.vocab_size;
  const out = new Float32Array(T * V);
  const reads: Promise<void>[] = [];
  net.headForward(new Int32Array(T).fill(-1), {
    onLogits: (chunk, r0, R) =>
      reads.push(
        gpu.readF32(chunk, R * net.ldV).then((d) => {
          for (let r = 0; r < R; r++) out.set(d.subarray(r * net.ldV, r * net.ldV + V), (r0 + r) * V);
        }),
      ),
  });
  await Promise.all(reads);
  await gpu.sync(); // the head's later dispatches, before their buffers go
  net.dispose();
  return out;
}

describe('rlhf-studio export', () => {
  const expected = JSON.parse(readFileSync('test/fixtures/weights/tiny/expected.json', 'utf8')) as {
    ids: number[];
    logits: number[][];
  };

  for (const weights of ['model.safetensors', 'pytorch_model.bin']) {
    test(`from ${weights}: identical params and logits after the round trip, equal to transformers'`, async () => {
      const src = tmp();
      copyFileSync('test/fixtures/weights/tiny/config.json', join(src, 'config.json'));
      copyFileSync(`test/fixtures/weights/tiny/${weights}`, join(src, weights));
      const out = join(tmp(), 'exported');
      const msg = cli('export', '--model', src, '--out', out);
      expect(msg).toMatch(/^wrote .*exported: config.json, generation_config.json, model.safetensors/);
      expect(readdirSync(out).sort()).toEqual(
        [
          'config.json',
          'generation_config.json',
          'merges.txt',
          'model.safetensors',
          'special_tokens_map.json',
          'tokenizer.json',
          'tokenizer_config.json',
          'vocab.json',
        ].sort(),
      );
      const before = loadModelDir(src);
      const after = loadModelDir(out);
      expect(after.prefixed).toBe(true);
      expect(after.config).toEqual(before.config);
      expect(after.params).toEqual(before.params);
      const a = await logitsOf(before, expected.ids);
      const b = await logitsOf(after, expected.ids);
      expect(maxErr(a, b)).toBe(0);
      const err = maxErr(b, expected.logits.flat());
      console.log(`[export ${weights}] logits vs transformers: max |err| ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-4 * Math.max(1, ...expected.logits.flat().map(Math.abs)));
    });
  }

  test('--value-head keeps v_head.summary.*; without it they are dropped', () => {
    const src = tmp();
    copyFileSync('test/fixtures/weights/tiny/config.json', join(src, 'config.json'));
    copyFileSync('test/fixtures/weights/tiny-value-head.safetensors', join(src, 'model.safetensors'));
    const kept = join(tmp(), 'kept');
    expect(cli('export', '--model', src, '--out', kept, '--value-head')).toContain('with value head');
    const withHead = loadModelDir(kept, { valueHead: true });
    expect(withHead.valueHeadLoaded).toBe(true);
    expect(withHead.params).toEqual(loadModelDir(src, { valueHead: true }).params);
    const dropped = join(tmp(), 'dropped');
    cli('export', '--model', src, '--out', dropped);
    expect(loadModelDir(dropped, { valueHead: true }).valueHeadLoaded).toBe(false);
  });

  test('a missing --out or model is a usage error (exit 2)', () => {
    const r = spawnSync(process.execPath, [bin, 'export', '--model', 'test/fixtures/weights/tiny'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--out DIR2 is required');
    const s = spawnSync(process.execPath, [bin, 'export', '--out', tmp()], { encoding: 'utf8' });
    expect(s.status).toBe(2);
    expect(s.stderr).toContain('exactly one of --model, --hub, --url');
  });
});

describe('rlhf-studio generate', () => {
  test('--greedy --json on a fixture gives transformers’ greedy ids (greedy.json)', () => {
    const ref = JSON.parse(readFileSync('test/fixtures/gpt2/noprefix/greedy.json', 'utf8')) as {
      prompt_ids: number[];
      greedy_ids: number[];
    };
    const out = cli(
      'generate',
      '--model',
      'test/fixtures/gpt2/noprefix/model',
      '--prompt-ids',
      ref.prompt_ids.join(','),
      '--max-new-tokens',
      '24',
      '--greedy',
      '--json',
    );
    const r = JSON.parse(out) as { results: { prompt_ids: number[]; generated_ids: number[] }[] };
    expect(r.results[0].prompt_ids).toEqual(ref.prompt_ids);
    // Every top-2 gap of this fixture is > 1e-3, so all 24 ids must agree.
    expect(r.results[0].generated_ids).toEqual(ref.greedy_ids);
  });

  test('--prompt text with the GPT-2 vocabulary: a batch of two, sampled, text decoded', () => {
    const cfg = makeGPT2Config({ vocab_size: 50257, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2 });
    const dir = tmp();
    for (const [f, bytes] of exportHFFolder(cfg, initGPT2Params(cfg, { seed: 1 })))
      writeFileSync(join(dir, f), bytes);
    const out = cli(
      'generate',
      '--model',
      dir,
      '--prompt',
      'Hello world',
      '--prompt',
      'This movie was',
      '--max-new-tokens',
      '5',
      '--top-k',
      '50',
      '--seed',
      '7',
      '--ignore-eos',
      '--json',
    );
    const r = JSON.parse(out) as {
      results: { prompt_ids: number[]; generated_ids: number[]; prompt: string; text: string }[];
      tokens_per_s: number;
    };
    // "Hello world" is 15496 995 in GPT-2's vocabulary (shared/TESTING.md).
    expect(r.results[0].prompt_ids).toEqual([15496, 995]);
    expect(r.results.map((x) => x.prompt)).toEqual(['Hello world', 'This movie was']);
    for (const x of r.results) {
      expect(x.generated_ids).toHaveLength(5);
      expect(x.text).toBe(decode(x.generated_ids));
    }
    expect(r.tokens_per_s).toBeGreaterThan(0);
  });

  test('--prompt on a model without the GPT-2 vocabulary is a usage error', () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'generate',
        '--model',
        'test/fixtures/gpt2/noprefix/model',
        '--prompt',
        'hi',
        '--max-new-tokens',
        '2',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--prompt needs GPT-2's vocabulary");
  });
});
