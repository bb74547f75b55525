/** Reading test/fixtures/reward-gpt2 (made by test/fixtures/scripts/make_reward_fixture_gpt2.py). */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { readSafetensors, type TensorMap } from '../../src/model/safetensors.ts';

export const REWARD_FIXTURE = 'test/fixtures/reward-gpt2';

/** config.json and model.safetensors of a folder, as loadGPT2RewardFolder takes them. */
export function fixtureFiles(dir: string): Map<string, Uint8Array> {
  return new Map(
    ['config.json', 'model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(`${dir}/${f}`))]),
  );
}

/** A gzipped safetensors file's tensors. */
export function readGz(path: string): TensorMap {
  return readSafetensors(gunzipSync(readFileSync(path))).tensors;
}
