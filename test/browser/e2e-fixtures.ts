/**
 * The tiny models the end-to-end training test serves from the built app, chosen through the page's
 * link (?policy=/e2e/policy&reward=/e2e/reward&prompts=/e2e/prompts.txt):
 *
 *   /e2e/policy/      a random GPT-2 with GPT-2's whole vocabulary, 1 layer of n_embd 16 (SwiftShader
 *                     is slow), as a Hugging Face folder written by exportHFFolder
 *   /e2e/reward/      test/fixtures/reward/tiny-distilbert (config, safetensors, ONNX, tokenizer)
 *   /e2e/prompts.txt  test/fixtures/prompts/prompts.txt
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGPT2Config } from '../../src/model/config.ts';
import { exportHFFolder } from '../../src/model/hf-folder.ts';
import { initGPT2Params } from '../../src/model/init.ts';

export const E2E_POLICY = makeGPT2Config({
  vocab_size: 50257,
  n_positions: 64,
  n_embd: 16,
  n_layer: 1,
  n_head: 2,
});

export function writeE2EFixtures(dir: string): void {
  const policy = join(dir, 'e2e/policy');
  mkdirSync(policy, { recursive: true });
  for (const [name, bytes] of exportHFFolder(E2E_POLICY, initGPT2Params(E2E_POLICY, { seed: 7 }))) {
    writeFileSync(join(policy, name), bytes);
  }
  cpSync('test/fixtures/reward/tiny-distilbert', join(dir, 'e2e/reward'), { recursive: true });
  cpSync('test/fixtures/prompts/prompts.txt', join(dir, 'e2e/prompts.txt'));
}
