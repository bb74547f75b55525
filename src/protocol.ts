/**
 * The typed protocol between the page and the engine's Web Worker. One discriminated union each way;
 * the worker handles ToWorker in one exhaustive switch, the store handles FromWorker likewise.
 *
 * Everything here is structured-cloneable: sources picked as local files travel as Blobs (Files).
 * This module holds types only, so the page imports no engine code through it.
 */
import type { AdapterSummary } from './gpu/device.ts';
import type { LoraConfig } from './model/lora-table.ts';
import type { PPOConfig, RolloutSpec } from './rl/config.ts';
import type { DPOConfig } from './rl/dpo-config.ts';
import type { EvalReport } from './rl/evaluate.ts';
import type { RewardConfig } from './rl/reward-model-trainer.ts';
import type { ScalarStatName } from './rl/stats.ts';
import type { CompareAgainst } from './rl/session.ts';
import type { Sample } from './rl/trainer.ts';
import type { SentimentTarget } from './reward/types.ts';

export type { RolloutSpec } from './rl/config.ts';

/** Files the user picked, by name (a folder pick gives "dir/file" names; the last part is used). */
export type LocalFiles = ReadonlyMap<string, Blob>;

/** Where the policy GPT-2 comes from (src/model/hub.ts ModelSource, with Blobs for local files). */
export type PolicySpec =
  | { kind: 'hub'; repo: string; revision: string }
  | { kind: 'url'; base: string }
  | { kind: 'files'; files: LocalFiles };

/** Where the reward classifier comes from. */
export type RewardSpec =
  | { kind: 'hub'; repo: string; revision: string }
  | { kind: 'url'; url: string }
  | { kind: 'files'; files: LocalFiles };

/**
 * Which engine runs the reward model: 'auto' follows rewardPathFor (an ONNX graph wins), 'onnx'
 * and 'webgpu' (our DistilBERT kernels) force a path when the folder has both.
 */
export type RewardEngine = 'auto' | 'onnx' | 'webgpu';

/** Where prompts come from: the IMDb train split on the Hub, a file at a URL, or a local file. */
export type PromptsSpec =
  { kind: 'imdb' } | { kind: 'url'; url: string } | { kind: 'file'; file: Blob; name: string };

/** Everything one run needs; `config` has passed validatePPOConfig. */
export interface RunSettings {
  policy: PolicySpec;
  reward: RewardSpec;
  rewardEngine: RewardEngine;
  prompts: PromptsSpec;
  target: SentimentTarget;
  config: PPOConfig;
  rollout: RolloutSpec;
  /** Save a checkpoint to OPFS every this many PPO steps (0: never). */
  checkpointEvery: number;
  /**
   * LoRA adapters (TRL ModelConfig's use_peft and lora_*) on a frozen base that is also the reference;
   * null: every weight trains and the reference is a copy of the starting policy.
   */
  lora: LoraConfig | null;
}

/** Where preference pairs come from: a file at a URL (a Hub dataset file's URL too), or a Blob. */
export type PairsSpec = { kind: 'url'; url: string } | { kind: 'blob'; blob: Blob; name: string };

/** A DPO or reward-model run; `config` has passed validateDPOConfig / validateTrainingArgs. */
export type PreferenceRunSettings = {
  policy: PolicySpec;
  pairs: PairsSpec;
  /** LoRA adapters (TRL ModelConfig's use_peft and lora_*); null: every weight trains. */
  lora: LoraConfig | null;
} & ({ method: 'dpo'; config: DPOConfig } | { method: 'reward'; config: RewardConfig });

/** One shown pair: DPO's policy and reference sequence log-probs, or the reward model's scores. */
export interface PairView {
  row: number;
  prompt: string;
  chosen: string;
  rejected: string;
  /** DPO: the policy's log-probs of the completions; reward model: the scores. */
  chosenValue: number;
  rejectedValue: number;
  /** DPO only: the reference's log-probs. */
  refChosen?: number;
  refRejected?: number;
}

/** 'pausing' and 'stopping': asked for, taking effect when the step in flight ends. */
export type RunPhase =
  'idle' | 'loading' | 'training' | 'pausing' | 'paused' | 'stopping' | 'stopped' | 'finished' | 'failed';

/** One PPO step as the page sees it. */
export interface StepReport {
  step: number;
  stats: Partial<Record<ScalarStatName, number>>;
  samples: Sample[];
  /** The sentiment this step was rewarded for. */
  target: SentimentTarget;
  /** Wall time of the step, seconds (trainStep, reward included). */
  seconds: number;
  /** Query + response tokens the step generated and trained on. */
  tokens: number;
  /** GPU memory allocated by the engine after the step (Gpu.allocatedBytes) and its peak. */
  gpuBytes: number;
  gpuPeakBytes: number;
}

/** One row of the metrics history (no samples): what charts, CSV and checkpoints keep. */
export type MetricRow = Omit<StepReport, 'samples'>;

/** A change of sentiment target: applies from PPO step `fromStep`. */
export interface TargetMark {
  fromStep: number;
  target: SentimentTarget;
}

/** What a run was started with, for the status area. */
export interface RunInfo {
  policy: string;
  /** n_layer, n_embd, parameters (value head included). */
  modelShape: { n_layer: number; n_embd: number; n_head: number; params: number };
  reward: string;
  rewardEngine: string;
  rewardLabels: string[];
  prompts: string;
  promptCount: number;
  totalSteps: number;
  startStep: number;
  /** The LoRA settings when the run trains adapters on a frozen base; null: every weight trains. */
  lora: LoraConfig | null;
}

/** What a saved run's weights are: a policy GPT-2 (PPO, DPO) or a reward model. */
export type KeptWeightsKind = 'policy' | 'reward-model';

/** A checkpoint in OPFS that a run can resume from. */
export interface CheckpointInfo {
  step: number;
  totalSteps: number;
  savedAt: string;
  policy: string;
  reward: string;
  prompts: string;
  target: SentimentTarget;
  bytes: number;
}

export interface Continuation {
  text: string;
  score: number;
}

export interface CompareResult {
  prompt: string;
  /** The reference's continuation, or (against 'policy') a second policy sample. */
  ref: Continuation;
  against: CompareAgainst;
  policy: Continuation;
  target: SentimentTarget;
  step: number;
}

export type ToWorker =
  /** Open the GPU device; answered by `ready` or `error`. */
  | { type: 'init' }
  /** Run a WGSL kernel and compare it with its CPU reference; answered by `selftest-result`. */
  | { type: 'selftest'; id: number; size: { M: number; K: number; N: number } }
  /** Load models and prompts, then train; answered by `run-phase`, `download`, `run-info`, `step`... */
  | { type: 'train'; settings: RunSettings }
  /** Load a policy and pairs, then train DPO or a reward model; answered like `train`, with `pref-step`. */
  | { type: 'train-preferences'; settings: PreferenceRunSettings }
  /** Resume the run saved in OPFS; answered like `train`, with `restored` first. */
  | { type: 'resume-checkpoint' }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Stop after the step in flight; the model stays loaded for compare and export. */
  | { type: 'stop' }
  /** Switch the sentiment the reward favours, from the next PPO step on. */
  | { type: 'set-target'; target: SentimentTarget }
  /**
   * Reference vs policy continuations of a prompt (`against: 'policy'`: two policy samples, the
   * second in `ref`); answered by `compare-result`.
   */
  | { type: 'compare'; id: number; prompt: string; maxNewTokens: number; against?: CompareAgainst }
  /**
   * Reference vs policy on `samples` queries of the run's prompts with the same sampling keys
   * (src/rl/evaluate.ts); answered by `eval-result`.
   */
  | { type: 'evaluate'; id: number; samples: number; seed: number }
  /**
   * The policy as a Hugging Face folder; answered by `export-result`. A LoRA run gives its peft
   * adapter folder, or with `merged` the base with the adapters merged in.
   */
  | { type: 'export'; id: number; merged?: boolean }
  /**
   * Keep the loaded run's trained model with the saved run `runId` (OPFS rlhf-studio-runs/RUN_ID/): a
   * policy as a whole GPT-2 folder (a LoRA policy merged), a reward model as its folder; answered by
   * `weights-kept`.
   */
  | { type: 'keep-weights'; id: number; runId: string }
  /** Remove a saved run's weights; answered by `weights-kept` with bytes 0. */
  | { type: 'delete-weights'; id: number; runId: string }
  /**
   * Saved runs' policies side by side against `settings.policy` as the reference, on `samples` queries
   * of `settings.prompts`, scored by `settings.reward` (src/rl/evaluate.ts); answered by `eval-result`.
   * Refused while a run is training.
   */
  | {
      type: 'evaluate-runs';
      id: number;
      settings: RunSettings;
      runs: { runId: string; name: string }[];
      samples: number;
      seed: number;
    }
  /** Is there a checkpoint to resume? Answered by `checkpoint-info`. */
  | { type: 'checkpoint-query' }
  | { type: 'checkpoint-discard' }
  /** Destroys the GPU device, as a driver reset would: exercises the lost-device path (tests, devtools). */
  | { type: 'simulate-device-loss' };

export interface WorkerErrorInfo {
  name: string;
  message: string;
  /** The chain of causes (Error.cause), outermost first. */
  causes?: string[];
  /** What the engine was doing, e.g. "loading the reward model". */
  during?: string;
}

export type FromWorker =
  | { type: 'ready'; adapter: AdapterSummary }
  /** `requestId`: the compare / export request that failed, if it was one. */
  | { type: 'error'; error: WorkerErrorInfo; requestId?: number }
  | { type: 'device-lost'; reason: string; message: string }
  | {
      type: 'selftest-result';
      id: number;
      kernel: string;
      ok: boolean;
      maxAbsErr: number;
      ms: number;
    }
  | { type: 'run-phase'; phase: RunPhase; detail?: string }
  /** A file download (or read) in progress; `total` null when the server sent no length. */
  | { type: 'download'; id: string; label: string; loaded: number; total: number | null; done: boolean }
  | { type: 'run-info'; info: RunInfo }
  | { type: 'step'; report: StepReport }
  /** One DPO / reward-model update: TRL's stat names (dpo-stats.ts, reward-model-loss.ts). */
  | { type: 'pref-step'; step: number; stats: Record<string, number>; seconds: number }
  | { type: 'pref-pairs'; step: number; rows: PairView[] }
  | { type: 'target'; mark: TargetMark }
  /** A resumed run's history, before its first new step. */
  | { type: 'restored'; history: MetricRow[]; marks: TargetMark[]; target: SentimentTarget }
  | { type: 'compare-result'; id: number; result: CompareResult }
  /** `step`: the PPO step the policy was at (-1: saved runs side by side, `title` says which). */
  | { type: 'eval-result'; id: number; step: number; report: EvalReport; title?: string }
  | {
      type: 'weights-kept';
      id: number;
      runId: string;
      bytes: number;
      kind: KeptWeightsKind | null;
      /** A LoRA policy kept as its adapter folder: the base it goes on (a Hub repo or URL); else null. */
      base: string | null;
    }
  | { type: 'export-result'; id: number; step: number; files: [string, Uint8Array][] }
  | { type: 'checkpoint-saved'; step: number; savedAt: string; bytes: number }
  | { type: 'checkpoint-info'; info: CheckpointInfo | null };

export function errorInfo(e: unknown, during?: string): WorkerErrorInfo {
  const info: WorkerErrorInfo =
    e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
  const causes: string[] = [];
  for (let c = e instanceof Error ? e.cause : undefined; c !== undefined && causes.length < 5;) {
    causes.push(c instanceof Error ? `${c.name}: ${c.message}` : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  if (causes.length) info.causes = causes;
  if (during) info.during = during;
  return info;
}
