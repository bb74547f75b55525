/**
 * The Evaluate panel's engine side: the run's reference and its policy as it is now continue the same
 * queries with the same sampling keys, the run's reward scores both (src/rl/evaluate.ts); or, for runs
 * kept in the runs list, their policies side by side against the form's policy as the reference
 * (TRL's "happy" / "pessimistic" / reference table). The queries are taken from far along the prompt
 * stream (EVAL_STEP), past where a studio run trains.
 */
import type { Gpu } from '../src/gpu/gpu.ts';
import type { GPT2Config } from '../src/model/config.ts';
import { loadHFFolder, type HFFiles } from '../src/model/hf-folder.ts';
import { gpt2ParamTable } from '../src/model/param-table.ts';
import { ADAPTER_CONFIG_FILE, mergeAdapterFolder } from '../src/model/peft.ts';
import type { LoadedGPT2 } from '../src/model/safetensors.ts';
import { decode } from '../src/model/tokenizer.ts';
import type { FromWorker, ToWorker } from '../src/protocol.ts';
import { oneLogitReward, sentimentReward } from '../src/reward/types.ts';
import { evaluate, TRL_EVAL, type EvalModel } from '../src/rl/evaluate.ts';
import type { TrainingSession } from '../src/rl/session.ts';
import { loadRunWeights } from './run-weights.ts';
import { loadPolicy, loadPrompts, loadRewardModel, peftBaseName, type ProgressFn } from './sources.ts';

/** The prompt-stream "step" whose batch gives the evaluation queries. */
export const EVAL_STEP = 1_000_000;
/** Queries generated at once (the same for both models, so their sampling keys are). */
const EVAL_BATCH = 8;

/** Base GPT-2 weights (value head dropped) as `evaluate` takes them. */
function asModel(config: GPT2Config, params: Float32Array): LoadedGPT2 {
  const table = gpt2ParamTable(config);
  return { config, table, params: params.subarray(0, table.total), valueHeadLoaded: false };
}

function checkSamples(samples: number): void {
  if (!(Number.isInteger(samples) && samples >= 1 && samples <= 256))
    throw new Error(`evaluate: samples ${samples} is not an integer in [1, 256]`);
}

/** Evaluates the session's reference against its policy; the answer to an `evaluate` request. */
export async function evaluateRun(
  session: TrainingSession,
  msg: Extract<ToWorker, { type: 'evaluate' }>,
): Promise<Extract<FromWorker, { type: 'eval-result' }>> {
  checkSamples(msg.samples);
  const { config, spec } = session;
  const queries = spec.prompts.batch(EVAL_STEP, msg.samples).map((p) => p.tokens);
  const ref = asModel(config, await session.ref.net.readParams());
  // With LoRA, the policy is the base with its adapters merged in.
  const policy = asModel(config, await session.policyWeights());
  const step = session.step;
  const report = await evaluate(
    session.gpu,
    {
      ref: { name: 'reference', model: ref },
      models: [{ name: `policy (step ${step})`, model: policy }],
      queries,
      reward: spec.reward,
      decode: spec.decode,
    },
    { ...TRL_EVAL, seed: msg.seed, batchSize: Math.min(EVAL_BATCH, msg.samples) },
  );
  return { type: 'eval-result', id: msg.id, step, report };
}

/**
 * A kept policy as `evaluate` takes it: a whole GPT-2 folder as it is; a LoRA adapter folder merged
 * into the reference, which must be the base it was trained on (named in its adapter_config.json).
 */
function keptPolicy(name: string, files: HFFiles, ref: LoadedGPT2, refName: string | null): LoadedGPT2 {
  if (!files.has(ADAPTER_CONFIG_FILE)) return loadHFFolder(files);
  // The form's policy is the reference and the base: the adapter must name it (else a clear error).
  const base = ref.params.subarray(0, gpt2ParamTable(ref.config).total);
  return asModel(ref.config, mergeAdapterFolder(files, ref.config, base, refName, name));
}

/**
 * Kept runs' policies side by side: the reference is `settings.policy` (the form's), the queries come
 * from `settings.prompts`, the reward is `settings.reward` toward `settings.target` (a one-logit reward
 * model's logit as it is). Each run's weights are read from OPFS: a whole GPT-2 folder, or a LoRA
 * policy's adapter folder, merged into the reference (its base).
 */
export async function evaluateSavedRuns(
  gpu: Gpu,
  msg: Extract<ToWorker, { type: 'evaluate-runs' }>,
  progress: ProgressFn,
): Promise<Extract<FromWorker, { type: 'eval-result' }>> {
  checkSamples(msg.samples);
  if (msg.runs.length === 0) throw new Error('pick one or more kept runs to evaluate');
  const s = msg.settings;
  const ref = await loadPolicy(s.policy, progress);
  const models: EvalModel[] = [];
  for (const r of msg.runs) {
    const kept = await loadRunWeights(r.runId);
    if (kept.kind !== 'policy')
      throw new Error(`${r.name} is a reward model; side by side evaluates policies (PPO and DPO runs)`);
    models.push({ name: r.name, model: keptPolicy(r.name, kept.files, ref, peftBaseName(s.policy)) });
  }
  const shape = (c: GPT2Config) => [c.n_layer, c.n_embd, c.n_head, c.vocab_size, c.n_positions].join(',');
  for (const m of models)
    if (shape(m.model.config) !== shape(ref.config))
      throw new Error(
        `${m.name} is not the shape of the reference (n_layer ${ref.config.n_layer}, n_embd ` +
          `${ref.config.n_embd}): pick the policy those runs started from in the form`,
      );
  const loaded = await loadRewardModel(s.reward, s.rewardEngine, gpu, progress);
  try {
    const reward =
      loaded.model.labels.length === 1
        ? oneLogitReward(loaded.model, s.target)
        : sentimentReward(loaded.model, s.target);
    const prompts = await loadPrompts(s.prompts, s.rollout, s.config.seed, progress);
    const queries = prompts.batch(EVAL_STEP, msg.samples).map((p) => p.tokens);
    const report = await evaluate(
      gpu,
      { ref: { name: 'reference', model: asModel(ref.config, ref.params) }, models, queries, reward, decode },
      { ...TRL_EVAL, seed: msg.seed, batchSize: Math.min(EVAL_BATCH, msg.samples) },
    );
    const title = `${msg.runs.map((r) => r.name).join(' · ')} vs the reference, reward toward ${s.target}`;
    return { type: 'eval-result', id: msg.id, step: -1, report, title };
  } finally {
    loaded.model.dispose();
  }
}
