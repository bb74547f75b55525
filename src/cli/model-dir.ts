/** Loading a Hugging Face GPT-2 folder from disk (Node side of the CLI). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGPT2Weights, readWeightsFile, type LoadedGPT2 } from '../model/safetensors.ts';
import { UsageError } from './command.ts';

export interface LoadedDir extends LoadedGPT2 {
  /** Whether the weights file names its tensors with `transformer.` (current transformers) or not. */
  prefixed: boolean;
}

/** config.json plus model.safetensors (preferred) or pytorch_model.bin from `dir`. */
export function loadModelDir(dir: string, { valueHead = false } = {}): LoadedDir {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new UsageError(`${dir} has no config.json`);
  const weightsPath = ['model.safetensors', 'pytorch_model.bin'].map((f) => join(dir, f)).find(existsSync);
  if (!weightsPath) throw new UsageError(`${dir} has neither model.safetensors nor pytorch_model.bin`);
  const tensors = readWeightsFile(readFileSync(weightsPath));
  const prefixed = [...tensors.keys()].some((k) => k.startsWith('transformer.'));
  const loaded = loadGPT2Weights(
    { configJson: readFileSync(configPath, 'utf8'), weights: tensors },
    { valueHead },
  );
  return { ...loaded, prefixed };
}
