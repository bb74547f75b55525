/**
 * A DPO or reward-model run inside the worker: loads the policy GPT-2 and the preference pairs,
 * steps DPOTrainer / RewardModelTrainer (src/rl) until done, paused or stopped, and reports each
 * update's stats (TRL names) and a few pairs with the policy's and the reference's log-probs (DPO)
 * or the reward model's scores. The result downloads as a Hugging Face folder: the DPO policy
 * (GPT2LMHeadModel) or the reward model (GPT2ForSequenceClassification, num_labels 1).
 */
import {
  loadPreferencePairs,
  tokenizePairs,
  layoutPairBatch,
  type PreferencePair,
  type TokenizedPair,
} from '../src/data/preferences.ts';
import type { Gpu } from '../src/gpu/gpu.ts';
import type { GPT2Config } from '../src/model/config.ts';
import { exportHFFolder, loadHFFolder, type HFFiles } from '../src/model/hf-folder.ts';
import { fetchModelFiles } from '../src/model/hub.ts';
import { gpt2ParamTable } from '../src/model/param-table.ts';
import { decode, encode } from '../src/model/tokenizer.ts';
import {
  errorInfo,
  type FromWorker,
  type KeptWeightsKind,
  type PairsSpec,
  type PairView,
  type PreferenceRunSettings,
  type RunPhase,
} from '../src/protocol.ts';
import { loadGPT2RewardFolder } from '../src/reward/gpt2-reward-folder.ts';
import { DPOReference, type PairValues } from '../src/rl/dpo-policy.ts';
import { LoraDPOTrainer } from '../src/rl/dpo-lora-trainer.ts';
import { DPOTrainer } from '../src/rl/dpo-trainer.ts';
import { rewardBatchRows, tokenizeRewardPairs, type RewardPair } from '../src/rl/reward-model-data.ts';
import { RewardModelTrainer } from '../src/rl/reward-model-trainer.ts';
import { describePolicy, peftBaseName, strictFetch, type ProgressFn } from './sources.ts';
import type { KeptModel } from './run-weights.ts';

type Post = (msg: FromWorker, transfer?: Transferable[]) => void;

/** Pairs shown with their log-probs / scores. */
const SHOWN_PAIRS = 4;
/** DPO policies up to this many parameters get their shown pairs' log-probs after every update. */
const LIVE_LOGPS_MAX_PARAMS = 20e6;

/** One loaded run: the trainer behind a common face. */
interface Job {
  /** What the trained model is: DPO trains a policy, the reward-model method a reward model. */
  kind: KeptWeightsKind;
  config: GPT2Config;
  total: number;
  done(): boolean;
  step(): Promise<Record<string, number>>;
  /** The shown pairs as they stand now. */
  pairs(): Promise<PairView[]>;
  /** The trained model's folder; with LoRA the adapter folder, or with `merged` the merged weights. */
  exportFolder(merged: boolean): Promise<HFFiles>;
  /** A LoRA policy's base when it can be loaded again (a Hub repo, a URL): kept as its adapter then. */
  adapterBase: string | null;
  dispose(): void;
}

function pairsName(spec: PairsSpec): string {
  return spec.kind === 'blob'
    ? spec.name
    : decodeURIComponent(new URL(spec.url).pathname.split('/').pop() ?? '');
}

/** DPO with LoRA: the reference is the base with the adapters off (no second copy of the weights). */
function loraDpoJob(
  gpu: Gpu,
  files: HFFiles,
  rows: PreferencePair[],
  s: PreferenceRunSettings & { method: 'dpo' },
  baseModel: string | null,
): Job {
  const base = loadHFFolder(files);
  const pairs = tokenizePairs(rows, encode, s.config, base.config.eos_token_id ?? 50256);
  const shown = pairs.slice(0, SHOWN_PAIRS);
  const trainer = new LoraDPOTrainer(gpu, base, s.lora!, pairs, s.config);
  const refShown = trainer.refLogps(trainer.layout(shown));
  return {
    config: base.config,
    total: trainer.totalSteps,
    done: () => trainer.done,
    step: async () => (await trainer.step()).stats,
    async pairs() {
      const ref = await refShown;
      const now = await trainer.policyLogps(shown);
      return shown.map((p, i) => ({
        ...pairTexts(p.chosen.ids.slice(0, p.chosen.promptLength), p.chosen, p.rejected),
        row: p.row,
        chosenValue: now.chosen[i],
        rejectedValue: now.rejected[i],
        refChosen: ref.chosen[i],
        refRejected: ref.rejected[i],
      }));
    },
    kind: 'policy',
    exportFolder: (merged) => (merged ? trainer.exportMerged() : trainer.exportAdapter(baseModel)),
    adapterBase: baseModel,
    dispose: () => trainer.dispose(),
  };
}

async function readPairs(spec: PairsSpec, progress: ProgressFn): Promise<PreferencePair[]> {
  const name = pairsName(spec);
  if (spec.kind === 'blob') {
    const bytes = new Uint8Array(await spec.blob.arrayBuffer());
    progress('pairs', `pairs ${name}`, { loaded: bytes.length, total: bytes.length, fraction: 1 });
    return loadPreferencePairs({ kind: 'bytes', bytes, name });
  }
  return loadPreferencePairs(
    { kind: 'url', url: spec.url },
    { fetch: strictFetch, onProgress: (p) => progress('pairs', `pairs ${name}`, p) },
  );
}

const textOf = (ids: readonly number[]) => decode(ids.filter((t) => t !== 50256));

function dpoJob(
  gpu: Gpu,
  files: HFFiles,
  rows: PreferencePair[],
  s: PreferenceRunSettings & { method: 'dpo' },
): Job {
  const policy = loadHFFolder(files);
  const pairs = tokenizePairs(rows, encode, s.config, policy.config.eos_token_id ?? 50256);
  const shown = pairs.slice(0, SHOWN_PAIRS);
  const average = s.config.loss_type === 'ipo';
  const logpsOf = async (params: Float32Array): Promise<PairValues> => {
    const net = new DPOReference(gpu, policy.config, params);
    try {
      return await net.logps(layoutPairBatch(shown), average);
    } finally {
      net.dispose();
    }
  };
  // The reference is the initial policy: its log-probs of the shown pairs are taken once.
  const refShown = logpsOf(policy.params);
  const trainer = new DPOTrainer(gpu, { policy, ref: null }, pairs, s.config);
  const live = policy.params.length <= LIVE_LOGPS_MAX_PARAMS;
  let last: PairValues | null = null;
  return {
    config: policy.config,
    total: trainer.totalSteps,
    done: () => trainer.done,
    step: async () => {
      const r = await trainer.step();
      last = null;
      return r.stats;
    },
    async pairs() {
      const ref = await refShown;
      if (!last) last = trainer.done || live ? await logpsOf(await trainer.readParams()) : ref;
      const now = last;
      return shown.map((p: TokenizedPair, i) => ({
        ...pairTexts(p.chosen.ids.slice(0, p.chosen.promptLength), p.chosen, p.rejected),
        row: p.row,
        chosenValue: now.chosen[i],
        rejectedValue: now.rejected[i],
        refChosen: ref.chosen[i],
        refRejected: ref.rejected[i],
      }));
    },
    kind: 'policy',
    exportFolder: async () => exportHFFolder(policy.config, await trainer.readParams()),
    adapterBase: null,
    dispose: () => trainer.dispose(),
  };
}

function pairTexts(
  prompt: readonly number[],
  chosen: { ids: number[]; promptLength: number },
  rejected: { ids: number[]; promptLength: number },
): { prompt: string; chosen: string; rejected: string } {
  return {
    prompt: textOf(prompt),
    chosen: textOf(chosen.ids.slice(chosen.promptLength)),
    rejected: textOf(rejected.ids.slice(rejected.promptLength)),
  };
}

function rewardJob(
  gpu: Gpu,
  files: HFFiles,
  rows: PreferencePair[],
  s: PreferenceRunSettings & { method: 'reward' },
  baseModel: string | null,
): Job {
  const model = loadGPT2RewardFolder(files, { seed: s.config.seed });
  const { pairs, dropped } = tokenizeRewardPairs(rows, encode, { maxLength: s.config.max_length });
  if (pairs.length === 0)
    throw new Error(
      `every pair has a side longer than max_length ${s.config.max_length} (rows ${dropped.slice(0, 5).join(', ')}...)`,
    );
  const trainer = new RewardModelTrainer(
    gpu,
    model.config,
    model.params,
    model.padTokenId,
    pairs,
    s.config,
    s.lora,
    baseModel,
  );
  const shown: RewardPair[] = pairs.slice(0, SHOWN_PAIRS);
  const texts = new Map(rows.map((r) => [r.row, r]));
  return {
    config: model.config,
    total: trainer.total,
    done: () => trainer.done,
    step: () => trainer.trainStep(),
    async pairs() {
      const scores = await trainer.rm.forward(rewardBatchRows(shown));
      const n = shown.length;
      return shown.map((p, i) => {
        const src = texts.get(p.row);
        const t =
          src?.kind === 'text'
            ? { prompt: src.prompt, chosen: src.chosen, rejected: src.rejected }
            : { prompt: '', chosen: textOf(p.chosen), rejected: textOf(p.rejected) };
        return { ...t, row: p.row, chosenValue: scores[i], rejectedValue: scores[n + i] };
      });
    },
    kind: 'reward-model',
    adapterBase: null,
    // With LoRA: peft's SEQ_CLS adapter folder, or merged, a whole GPT2ForSequenceClassification.
    exportFolder: (merged) => (merged && s.lora ? trainer.exportMerged() : trainer.exportFolder()),
    dispose: () => trainer.dispose(),
  };
}

export class PreferenceRunner {
  private job: Job | null = null;
  private phase: RunPhase = 'idle';
  private wake: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private stepsDone = 0;

  constructor(
    private readonly gpu: () => Promise<Gpu>,
    private readonly post: Post,
    private readonly progress: ProgressFn,
  ) {}

  /** Whether this runner holds the last run started (its model is what `export` downloads). */
  get loaded(): boolean {
    return this.job !== null;
  }

  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private setPhase(phase: RunPhase, detail?: string): void {
    this.phase = phase;
    this.post({ type: 'run-phase', phase, detail });
    this.wake?.();
  }

  async start(s: PreferenceRunSettings): Promise<void> {
    await this.shutdown();
    this.setPhase('loading');
    let during = 'opening the GPU';
    try {
      const gpu = await this.gpu();
      during = 'loading the policy model';
      const files = await fetchModelFiles(s.policy, {
        fetch: strictFetch,
        onProgress: (p) => this.progress(`policy/${p.file}`, `policy ${p.file}`, p),
      });
      during = 'loading the preference pairs';
      const rows = await readPairs(s.pairs, this.progress);
      during = s.method === 'dpo' ? 'building the DPO trainer' : 'building the reward-model trainer';
      const base = describePolicy(s.policy);
      this.job =
        s.method === 'dpo'
          ? s.lora
            ? loraDpoJob(gpu, files, rows, s, peftBaseName(s.policy))
            : dpoJob(gpu, files, rows, s)
          : rewardJob(gpu, files, rows, s, peftBaseName(s.policy));
      this.stepsDone = 0;
      const c = this.job.config;
      this.post({
        type: 'run-info',
        info: {
          policy: base,
          modelShape: {
            n_layer: c.n_layer,
            n_embd: c.n_embd,
            n_head: c.n_head,
            params: gpt2ParamTable(c, { scoreHead: s.method === 'reward' }).total,
          },
          reward: s.method === 'dpo' ? 'none (DPO)' : 'trained here (reward model)',
          rewardEngine: s.method === 'dpo' ? 'DPO' : 'reward model',
          rewardLabels: [],
          prompts: `${pairsName(s.pairs)} (preference pairs)`,
          promptCount: rows.length,
          totalSteps: this.job.total,
          startStep: 0,
          lora: s.lora,
        },
      });
      this.post({ type: 'pref-pairs', step: 0, rows: await this.exclusive(() => this.job!.pairs()) });
    } catch (e) {
      this.fail(e, during);
      return;
    }
    this.setPhase('training');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const job = this.job!;
    while (!job.done()) {
      if (this.phase === 'pausing' || this.phase === 'paused') {
        if (this.phase === 'pausing') this.setPhase('paused');
        if (this.phase === 'paused') await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (this.phase !== 'training') break;
      try {
        const t0 = performance.now();
        const stats = await this.exclusive(() => job.step());
        this.stepsDone++;
        const seconds = (performance.now() - t0) / 1000;
        this.post({ type: 'pref-step', step: this.stepsDone, stats, seconds });
        const rows = await this.exclusive(() => job.pairs());
        this.post({ type: 'pref-pairs', step: this.stepsDone, rows });
      } catch (e) {
        this.fail(e, `update ${this.stepsDone + 1}`);
        return;
      }
    }
    if (this.phase === 'stopping') this.setPhase('stopped', `stopped after ${this.stepsDone} updates`);
    else if (this.phase === 'training') this.setPhase('finished', `${this.stepsDone} updates done`);
  }

  private fail(e: unknown, during: string): void {
    this.post({ type: 'error', error: errorInfo(e, during) });
    this.setPhase('failed', during);
  }

  pause(): void {
    if (this.phase === 'training') this.setPhase('pausing');
  }

  resume(): void {
    if (this.phase === 'paused' || this.phase === 'pausing') this.setPhase('training');
  }

  stop(): void {
    if (this.active) this.setPhase('stopping');
  }

  private get active(): boolean {
    return this.phase === 'training' || this.phase === 'pausing' || this.phase === 'paused';
  }

  /** Loading, training, paused or stopping: the GPU is (or may again be) the run's. */
  get busy(): boolean {
    return this.active || this.phase === 'loading' || this.phase === 'stopping';
  }

  /**
   * The trained model for the runs list (see Runner.keptModel): a LoRA DPO policy on a loadable base
   * as its adapter folder, anything else as a whole folder (LoRA merged).
   */
  async keptModel(): Promise<KeptModel> {
    const job = this.job;
    if (!job) throw new Error('there is no trained model to keep');
    const base = job.adapterBase;
    return { kind: job.kind, files: await this.exclusive(() => job.exportFolder(!base)), base };
  }

  /** The trained model as a Hugging Face folder; answered by `export-result`. */
  async export(id: number, merged: boolean): Promise<void> {
    const job = this.job;
    if (!job) throw new Error('there is no trained model to download yet: press Train');
    const entries = [...(await this.exclusive(() => job.exportFolder(merged)))];
    this.post({ type: 'export-result', id, step: this.stepsDone, files: entries }, [
      ...new Set(entries.map(([, b]) => b.buffer as ArrayBuffer)),
    ]);
  }

  /** Stops the loop (if any) and frees the trainer. */
  async shutdown(): Promise<void> {
    if (this.active) this.setPhase('stopping');
    this.wake?.();
    await this.loop;
    await this.queue;
    this.job?.dispose();
    this.job = null;
  }
}
