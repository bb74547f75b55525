/**
 * The training checkpoint's state file (state.json), shared by the studio's worker (OPFS) and the
 * CLI (a folder): a pure serialise and a parse that checks every field's type and range, so that a
 * damaged or foreign file is refused with the field named, never half-used.
 *
 * The tensors live beside it (src/rl/checkpoint-io.ts): the frozen reference, the policy with its
 * value head, Adam's moments. This file holds everything else the next PPO step depends on:
 *
 *   step              PPO steps done (also the prompt sampler's position: PromptSet.batch(step, B))
 *   session           trainer RNG state, KL coefficient, running score moments, generation calls,
 *                     the policy's training forwards (LoRA dropout masks)
 *   adamStep          Adam's t (bias correction)
 *   gpt2Config        the policy's config.json text
 *   ppo, rollout      the run's PPOConfig and response lengths
 *   lora              the LoRA settings when the policy trains adapters on a frozen base (else null;
 *                     absent in files written before LoRA checkpoints, read as null)
 *   totalSteps, target, marks, metrics   where the run is going and what it logged so far
 *   app               what the client needs to rebuild its inputs (sources, paths), checked by the client
 *
 * JSON keeps every finite double exactly (shortest round-trip form); a non-finite stat is stored
 * as null and read back as NaN.
 */
import { validateLoraConfig, type LoraConfig } from '../model/lora-table.ts';
import type { MetricRow, TargetMark } from '../protocol.ts';
import type { SentimentTarget } from '../reward/types.ts';
import { PPOConfigError, validatePPOConfig, type PPOConfig } from './config.ts';
import type { SessionState } from './session.ts';
import type { ScalarStatName } from './stats.ts';
import type { RolloutSettings } from './trainer.ts';

export const CHECKPOINT_FORMAT = 'rlhf-studio-checkpoint';
export const CHECKPOINT_VERSION = 2;

export interface CheckpointState<App = unknown> {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  step: number;
  savedAt: string;
  session: SessionState;
  adamStep: number;
  gpt2Config: string;
  ppo: PPOConfig;
  rollout: RolloutSettings;
  lora: LoraConfig | null;
  totalSteps: number;
  target: SentimentTarget;
  marks: TargetMark[];
  metrics: MetricRow[];
  app: App;
}

/** A state file that cannot be used; the message names the field. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function serialiseCheckpointState<App>(state: CheckpointState<App>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

/* ------------------------------------------------------------------------------------------------ */
/* Field checks: each returns the value typed, or throws CheckpointError naming `at`.              */

const fail = (at: string, want: string, got: unknown): never => {
  const shown = typeof got === 'string' ? JSON.stringify(got.slice(0, 40)) : String(got);
  throw new CheckpointError(`${at} must be ${want}, got ${Array.isArray(got) ? 'an array' : shown}`);
};

export function expectObject(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'an object', v);
  return v as Record<string, unknown>;
}

export function expectArray(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) fail(at, 'an array', v);
  return v as unknown[];
}

export function expectString(v: unknown, at: string): string {
  if (typeof v !== 'string') fail(at, 'a string', v);
  return v as string;
}

export function expectBoolean(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') fail(at, 'true or false', v);
  return v as boolean;
}

export function expectNumber(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(at, 'a finite number', v);
  return v as number;
}

export function expectInt(v: unknown, at: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max)
    fail(at, `an integer in [${min}, ${max}]`, v);
  return v as number;
}

export function expectOneOf<T extends string>(v: unknown, at: string, options: readonly T[]): T {
  if (!(options as readonly unknown[]).includes(v)) fail(at, `one of ${options.join(', ')}`, v);
  return v as T;
}

const TARGETS = ['positive', 'negative'] as const;

function parseSession(v: unknown, at: string): SessionState {
  const o = expectObject(v, at);
  const t = expectObject(o.trainer, `${at}.trainer`);
  const m = expectObject(t.scoreMoments, `${at}.trainer.scoreMoments`);
  const moment = (k: string) => expectNumber(m[k], `${at}.trainer.scoreMoments.${k}`);
  return {
    trainer: {
      step: expectInt(t.step, `${at}.trainer.step`),
      klCoef: expectNumber(t.klCoef, `${at}.trainer.klCoef`),
      rng: expectInt(t.rng, `${at}.trainer.rng`, 0, 0xffffffff),
      scoreMoments: { mean: moment('mean'), std: moment('std'), var: moment('var'), count: moment('count') },
    },
    sampleCalls: expectInt(o.sampleCalls, `${at}.sampleCalls`),
    // Absent in files written before LoRA checkpoints (full fine-tuning draws no dropout masks).
    dropoutPasses: o.dropoutPasses === undefined ? 0 : expectInt(o.dropoutPasses, `${at}.dropoutPasses`),
  };
}

function parseRollout(v: unknown, at: string): RolloutSettings {
  const o = expectObject(v, at);
  const r = {
    responseMinLength: expectInt(o.responseMinLength, `${at}.responseMinLength`, 1),
    responseMaxLength: expectInt(o.responseMaxLength, `${at}.responseMaxLength`, 1),
    padId: expectInt(o.padId, `${at}.padId`),
  };
  if (r.responseMaxLength <= r.responseMinLength)
    fail(`${at}.responseMaxLength`, `> responseMinLength (${r.responseMinLength})`, r.responseMaxLength);
  return r;
}

/** A LoRA config as state.json keeps it (lora-table.ts's LoraConfig), or null. */
export function parseLoraConfig(v: unknown, at: string): LoraConfig | null {
  if (v === null || v === undefined) return null;
  const o = expectObject(v, at);
  const c: LoraConfig = {
    r: expectInt(o.r, `${at}.r`, 1),
    alpha: expectNumber(o.alpha, `${at}.alpha`),
    dropout: expectNumber(o.dropout, `${at}.dropout`),
    targetModules: expectArray(o.targetModules, `${at}.targetModules`).map((t, i) =>
      expectString(t, `${at}.targetModules[${i}]`),
    ),
    useRslora: expectBoolean(o.useRslora, `${at}.useRslora`),
  };
  try {
    return validateLoraConfig(c);
  } catch (e) {
    throw new CheckpointError(`${at}: ${(e as Error).message}`);
  }
}

function parseMetricRow(v: unknown, at: string): MetricRow {
  const o = expectObject(v, at);
  const statsObj = expectObject(o.stats, `${at}.stats`);
  const stats: Partial<Record<ScalarStatName, number>> = {};
  for (const [k, x] of Object.entries(statsObj)) {
    stats[k as ScalarStatName] = x === null ? NaN : expectNumber(x, `${at}.stats["${k}"]`);
  }
  return {
    step: expectInt(o.step, `${at}.step`),
    stats,
    target: expectOneOf(o.target, `${at}.target`, TARGETS),
    seconds: expectNumber(o.seconds, `${at}.seconds`),
    tokens: expectInt(o.tokens, `${at}.tokens`),
    gpuBytes: expectInt(o.gpuBytes, `${at}.gpuBytes`),
    gpuPeakBytes: expectInt(o.gpuPeakBytes, `${at}.gpuPeakBytes`),
  };
}

/**
 * Parses state.json. `parseApp` checks the client's own part (called with the value and its path,
 * "app"). Throws CheckpointError naming the first bad field.
 */
export function parseCheckpointState<App>(
  text: string,
  parseApp: (v: unknown, at: string) => App,
): CheckpointState<App> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`state.json is not JSON (${(e as Error).message})`);
  }
  const o = expectObject(json, 'state');
  if (o.format !== CHECKPOINT_FORMAT) fail('state.format', `"${CHECKPOINT_FORMAT}"`, o.format);
  if (o.version !== CHECKPOINT_VERSION) fail('state.version', String(CHECKPOINT_VERSION), o.version);
  let ppo: PPOConfig;
  try {
    ppo = validatePPOConfig(expectObject(o.ppo, 'state.ppo'));
  } catch (e) {
    if (e instanceof PPOConfigError) throw new CheckpointError(`state.ppo.${e.field}: ${e.message}`);
    throw e;
  }
  const step = expectInt(o.step, 'state.step');
  const session = parseSession(o.session, 'state.session');
  if (session.trainer.step !== step)
    fail('state.session.trainer.step', `state.step (${step})`, session.trainer.step);
  const metrics = expectArray(o.metrics, 'state.metrics').map((m, i) =>
    parseMetricRow(m, `state.metrics[${i}]`),
  );
  const marks = expectArray(o.marks, 'state.marks').map((m, i) => {
    const mark = expectObject(m, `state.marks[${i}]`);
    return {
      fromStep: expectInt(mark.fromStep, `state.marks[${i}].fromStep`),
      target: expectOneOf(mark.target, `state.marks[${i}].target`, TARGETS),
    };
  });
  return {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step,
    savedAt: expectString(o.savedAt, 'state.savedAt'),
    session,
    adamStep: expectInt(o.adamStep, 'state.adamStep'),
    gpt2Config: expectString(o.gpt2Config, 'state.gpt2Config'),
    ppo,
    rollout: parseRollout(o.rollout, 'state.rollout'),
    lora: parseLoraConfig(o.lora, 'state.lora'),
    totalSteps: expectInt(o.totalSteps, 'state.totalSteps', 1),
    target: expectOneOf(o.target, 'state.target', TARGETS),
    marks,
    metrics,
    app: parseApp(o.app, 'state.app'),
  };
}
