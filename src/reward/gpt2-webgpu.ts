/**
 * A GPT-2 reward model (GPT2ForSequenceClassification, one label) as a RewardModel: each text is
 * tokenized as TRL's RewardTrainer tokenizes a completion (GPT-2 BPE, EOS appended unless present),
 * cut to its first n_positions tokens, and scored by the score head at its last non-pad token; the
 * logit is the reward (no sigmoid), one column.
 */
import type { Gpu } from '../gpu/gpu.ts';
import type { HFFiles } from '../model/hf-folder.ts';
import { EOS_TOKEN, encode } from '../model/tokenizer.ts';
import { GPT2RewardModel } from '../rl/reward-model.ts';
import { loadGPT2RewardFolder } from './gpt2-reward-folder.ts';
import type { RewardModel } from './types.ts';

/** Texts scored per forward. */
const ROWS_PER_BATCH = 32;

export function loadGPT2Reward(gpu: Gpu, files: HFFiles): RewardModel {
  const loaded = loadGPT2RewardFolder(files);
  if (!loaded.scoreLoaded) {
    throw new Error(
      'the folder holds a GPT-2 without score.weight (a language model, not a reward model); ' +
        'train one with `rlhf-studio reward-train`',
    );
  }
  const rm = new GPT2RewardModel(gpu, loaded.config, loaded.params, loaded.padTokenId);
  const maxT = loaded.config.n_positions;
  return {
    labels: [loaded.label],
    async logits(texts) {
      const out = new Float32Array(texts.length);
      for (let i = 0; i < texts.length; i += ROWS_PER_BATCH) {
        const rows = texts
          .slice(i, i + ROWS_PER_BATCH)
          .map((t) => encode(t.endsWith(EOS_TOKEN) ? t : t + EOS_TOKEN).slice(0, maxT));
        out.set(await rm.forward(rows), i);
      }
      return out;
    },
    dispose: () => rm.dispose(),
  };
}
