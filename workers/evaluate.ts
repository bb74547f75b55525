/**
 * The Evaluate panel's engine side: the run's reference and its policy as it is now continue the same
 * queries with the same sampling keys, the run's reward scores both (src/rl/evaluate.ts). The queries
 * are taken from far along the run's prompt stream (EVAL_STEP), past where a studio run trains.
 */
import type { GPT2Config } from '../src/model/config.ts';
import { gpt2ParamTable } from '../src/model/param-table.ts';
import type { LoadedGPT2 } from '../src/model/safetensors.ts';
import type { FromWorker, ToWorker } from '../src/protocol.ts';
import { evaluate, TRL_EVAL } from '../src/rl/evaluate.ts';
import type { TrainingSession } from '../src/rl/session.ts';

/** The prompt-stream "step" whose batch gives the evaluation queries. */
export const EVAL_STEP = 1_000_000;
/** Queries generated at once (the same for both models, so their sampling keys are). */
const EVAL_BATCH = 8;

/** Base GPT-2 weights (value head dropped) as `evaluate` takes them. */
function asModel(config: GPT2Config, params: Float32Array): LoadedGPT2 {
  const table = gpt2ParamTable(config);
  return { config, table, params: params.subarray(0, table.total), valueHeadLoaded: false };
}

/** Evaluates the session's reference against its policy; the answer to an `evaluate` request. */
export async function evaluateRun(
  session: TrainingSession,
  msg: Extract<ToWorker, { type: 'evaluate' }>,
): Promise<Extract<FromWorker, { type: 'eval-result' }>> {
  if (!(Number.isInteger(msg.samples) && msg.samples >= 1 && msg.samples <= 256))
    throw new Error(`evaluate: samples ${msg.samples} is not an integer in [1, 256]`);
  const { config, spec } = session;
  const queries = spec.prompts.batch(EVAL_STEP, msg.samples).map((p) => p.tokens);
  const ref = asModel(config, await session.ref.net.readParams());
  const policy = asModel(config, await session.policy.readParams());
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
