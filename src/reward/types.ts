/**
 * The reward-model interface the PPO trainer sees, and the sentiment score built on it.
 *
 * A reward model is any text classifier: N texts in, an (N, L) row-major Float32Array of raw logits
 * out, where L = labels.length and labels[j] is config.json's id2label[j]. The ONNX path
 * (src/reward/onnx.ts) and the WebGPU DistilBERT path both implement it.
 */

export interface RewardModel {
  /** Class names in logit order: id2label[0], id2label[1], ... */
  labels: string[];
  /** Raw logits, (N, labels.length) row-major, for N texts. No softmax. */
  logits(texts: string[]): Promise<Float32Array>;
  /** Frees the model's sessions and buffers. */
  dispose(): void;
}

/** Which sentiment the policy is rewarded for. */
export type SentimentTarget = 'positive' | 'negative';

/** The label each target scores: TRL's gpt2-sentiment example reads the POSITIVE logit. */
const TARGET_LABEL: Record<SentimentTarget, string> = { positive: 'POSITIVE', negative: 'NEGATIVE' };

/** Raised when a model has no label for the requested sentiment. */
export class MissingLabelError extends Error {
  override name = 'MissingLabelError';
}

/**
 * Index of the target's label (POSITIVE / NEGATIVE, matched case-insensitively) in `labels`.
 * Throws MissingLabelError naming the labels the model has.
 */
export function sentimentLabelIndex(labels: string[], target: SentimentTarget): number {
  const want = TARGET_LABEL[target];
  const j = labels.findIndex((l) => l.toUpperCase() === want);
  if (j < 0) {
    const have = labels.map((l) => JSON.stringify(l)).join(', ');
    throw new MissingLabelError(
      `the reward model has no ${want} label for target '${target}'; its labels (config.json id2label) are ${have}`,
    );
  }
  return j;
}

/** A reward function whose sentiment target can be changed between calls (e.g. per PPO step). */
export interface SentimentReward {
  /** One score per text: the raw logit of the current target's label. */
  (texts: string[]): Promise<number[]>;
  readonly target: SentimentTarget;
  /** Switches the target; throws MissingLabelError if the model has no such label. */
  setTarget(target: SentimentTarget): void;
}

/**
 * The sentiment reward of TRL's gpt2-sentiment example: the classifier pipeline with
 * `function_to_apply: "none"`, so the score is the raw logit of the target label
 * (POSITIVE for 'positive', NEGATIVE for 'negative'), not a probability.
 */
export function sentimentReward(model: RewardModel, target: SentimentTarget): SentimentReward {
  const L = model.labels.length;
  let current = target;
  let j = sentimentLabelIndex(model.labels, target);
  const score = async (texts: string[]): Promise<number[]> => {
    const col = j; // the target in force when the call started
    const logits = await model.logits(texts); // (N, L)
    if (logits.length !== texts.length * L) {
      throw new Error(
        `reward model returned ${logits.length} logits for ${texts.length} texts x ${L} labels`,
      );
    }
    return texts.map((_, i) => logits[i * L + col]);
  };
  const setTarget = (t: SentimentTarget): void => {
    j = sentimentLabelIndex(model.labels, t);
    current = t;
  };
  // defineProperty, not Object.assign: assign would copy the getter's value once.
  Object.defineProperty(score, 'target', { get: () => current, enumerable: true });
  return Object.assign(score, { setTarget }) as SentimentReward;
}

/**
 * The reward of a one-logit model (a GPT-2 reward model, TRL's RewardTrainer output): its logit as
 * is. A sentiment target does not apply to it.
 */
export function scalarReward(model: RewardModel): (texts: string[]) => Promise<number[]> {
  if (model.labels.length !== 1) {
    throw new Error(
      `a scalar reward needs a one-logit model; this one has labels ${model.labels.join(', ')}`,
    );
  }
  return async (texts) => {
    const logits = await model.logits(texts);
    if (logits.length !== texts.length)
      throw new Error(`reward model returned ${logits.length} scores for ${texts.length} texts`);
    return Array.from(logits);
  };
}

/**
 * A one-logit reward model (a GPT-2 trained by reward-train) where a switchable sentiment reward is
 * expected: the score is its logit whatever the target; switching the target is refused, since a
 * target does not apply to it.
 */
export function oneLogitReward(model: RewardModel, target: SentimentTarget): SentimentReward {
  const score = scalarReward(model);
  const setTarget = (t: SentimentTarget): void => {
    throw new Error(
      `the reward model has one logit (its score is the reward), so the target (${t}) does not apply`,
    );
  };
  return Object.assign(score, { setTarget, target }) as SentimentReward;
}
