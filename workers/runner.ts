/**
 * One training run inside the worker: loads its inputs, builds the TrainingSession, and steps it
 * until done, paused or stopped, reporting each step, the target's changes and checkpoints to the
 * page. GPU work (steps, compare, export, checkpoints) runs one job at a time through `exclusive`,
 * since the session's buffers are shared between them.
 */
import type { Gpu } from '../src/gpu/gpu.ts';
import { gpt2ParamTable } from '../src/model/param-table.ts';
import { decode, encode } from '../src/model/tokenizer.ts';
import {
  errorInfo,
  type FromWorker,
  type MetricRow,
  type RunPhase,
  type RunSettings,
  type StepReport,
  type TargetMark,
} from '../src/protocol.ts';
import {
  oneLogitReward,
  sentimentReward,
  type RewardModel,
  type SentimentReward,
  type SentimentTarget,
} from '../src/reward/types.ts';
import { totalPpoEpochs } from '../src/rl/config.ts';
import { TrainingSession, type CompareAgainst } from '../src/rl/session.ts';
import { applyCheckpoint } from '../src/rl/checkpoint-io.ts';
import { rolloutSettings } from '../src/rl/trainer.ts';
import {
  beginCheckpointedRun,
  checkCheckpointRoom,
  discardCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type ResumedRun,
  type StoredSettings,
} from './checkpoint.ts';
import {
  describePolicy,
  describePrompts,
  describeRewardSpec,
  loadPolicy,
  loadPrompts,
  loadRewardModel,
  peftBaseName,
  type ProgressFn,
} from './sources.ts';
import type { KeptModel } from './run-weights.ts';

type Post = (msg: FromWorker, transfer?: Transferable[]) => void;

/** Sends download progress at most every 150 ms per file, and always the last report. */
export function throttledProgress(post: Post): ProgressFn {
  const last = new Map<string, number>();
  return (id, label, p) => {
    const done = p.total !== null && p.loaded >= p.total;
    const now = performance.now();
    if (!done && now - (last.get(id) ?? -Infinity) < 150) return;
    last.set(id, now);
    post({ type: 'download', id, label, loaded: p.loaded, total: p.total, done });
  };
}

export class Runner {
  private session: TrainingSession | null = null;
  private rewardModel: RewardModel | null = null;
  private reward: SentimentReward | null = null;
  private settings: RunSettings | null = null;
  private stored: StoredSettings | null = null;
  private descriptions = { policy: '', reward: '', prompts: '' };
  private totalSteps = 0;
  private history: MetricRow[] = [];
  private marks: TargetMark[] = [];
  private target: SentimentTarget = 'positive';
  private phase: RunPhase = 'idle';
  private wake: (() => void) | null = null;
  private loop: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();
  private savedStep = -1;
  private stepInFlight = false;

  constructor(
    private readonly gpu: () => Promise<Gpu>,
    private readonly post: Post,
  ) {}

  /** Runs `job` after every GPU job queued before it. */
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

  /** Loads everything a run needs and starts stepping; `null` resumes the checkpoint in OPFS instead. */
  async start(settings: RunSettings | null): Promise<void> {
    await this.shutdown();
    this.setPhase('loading');
    let during = 'opening the GPU';
    try {
      const gpu = await this.gpu();
      const progress = throttledProgress(this.post);
      let ck: ResumedRun | null = null;
      if (settings === null) {
        during = 'reading the checkpoint';
        ck = await loadCheckpoint();
        settings = ck.settings;
      }
      const s = settings;
      this.settings = s;
      this.target = ck?.state.target ?? s.target;
      this.descriptions = ck?.state.app.descriptions ?? {
        policy: describePolicy(s.policy),
        reward: describeRewardSpec(s.reward),
        prompts: describePrompts(s.prompts),
      };
      during = 'loading the policy model';
      const model = ck ? ck.reference : await loadPolicy(s.policy, progress);
      during = 'loading the reward model';
      const loaded = await loadRewardModel(s.reward, s.rewardEngine, gpu, progress);
      this.rewardModel = loaded.model;
      // A one-logit reward model (trained here by the reward-model method) scores without a target.
      this.reward =
        loaded.model.labels.length === 1
          ? oneLogitReward(loaded.model, this.target)
          : sentimentReward(loaded.model, this.target);
      during = 'loading the prompts';
      const prompts = await loadPrompts(s.prompts, s.rollout, s.config.seed, progress);
      during = 'building the training session';
      const startStep = ck?.state.step ?? 0;
      // A resumed run continues the saved one's streams (trainer RNG, sampler, score moments) exactly.
      this.session = new TrainingSession(gpu, {
        model,
        reward: this.reward,
        prompts,
        decode,
        config: ck?.state.ppo ?? s.config,
        rollout: ck?.state.rollout ?? rolloutSettings(s.rollout),
        // LoRA: adapters on the frozen base, which is also the reference (one copy of its weights).
        lora: ck ? ck.lora : s.lora && { config: s.lora, baseModel: peftBaseName(s.policy) },
      });
      if (ck) applyCheckpoint(this.session, ck);
      this.totalSteps = ck?.state.totalSteps ?? totalPpoEpochs(s.config);
      this.history = ck?.state.metrics ?? [];
      this.marks = ck?.state.marks ?? [];
      this.savedStep = ck ? startStep : -1;
      if (ck) this.stored = ck.state.app.settings;
      else if (s.checkpointEvery > 0) this.stored = await this.beginCheckpoints(s, this.session);
      // A new run without checkpoints still replaces the saved one, which no longer matches the page.
      else await discardCheckpoint();
      const c = this.session.config;
      this.post({
        type: 'run-info',
        info: {
          ...this.descriptions,
          modelShape: {
            n_layer: c.n_layer,
            n_embd: c.n_embd,
            n_head: c.n_head,
            params: gpt2ParamTable(c, { valueHead: true }).total,
          },
          rewardEngine: loaded.engine,
          rewardLabels: loaded.model.labels,
          promptCount: prompts.length,
          totalSteps: this.totalSteps,
          startStep,
          lora: this.session.spec.lora?.config ?? null,
        },
      });
      if (ck) this.post({ type: 'restored', history: this.history, marks: this.marks, target: this.target });
    } catch (e) {
      await this.fail(e, during);
      return;
    }
    this.setPhase('training');
    this.loop = this.run();
  }

  /** Checkpoints are a safety net: without OPFS (e.g. some private windows) the run goes on without them. */
  private async beginCheckpoints(s: RunSettings, session: TrainingSession): Promise<StoredSettings | null> {
    try {
      await checkCheckpointRoom(session);
      return await beginCheckpointedRun(s);
    } catch (e) {
      this.post({
        type: 'error',
        error: errorInfo(e, 'preparing checkpoints (training goes on without them)'),
      });
      return null;
    }
  }

  private async run(): Promise<void> {
    const session = this.session!;
    while (session.step < this.totalSteps) {
      if (this.phase === 'pausing' || this.phase === 'paused') {
        await this.checkpoint(true);
        if (this.phase === 'pausing') this.setPhase('paused', `paused after ${session.step} PPO steps`);
        if (this.phase === 'paused') await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (this.phase !== 'training') break;
      try {
        this.stepInFlight = true;
        const report = await this.exclusive(() => this.step(session)).finally(
          () => (this.stepInFlight = false),
        );
        this.post({ type: 'step', report });
        const every = this.settings!.checkpointEvery;
        if (every > 0 && session.step % every === 0) await this.checkpoint(false);
      } catch (e) {
        await this.fail(e, `PPO step ${session.step}`);
        return;
      }
    }
    await this.checkpoint(true);
    if (this.phase === 'stopping') this.setPhase('stopped', `stopped after ${session.step} PPO steps`);
    else if (this.phase === 'training') this.setPhase('finished', `${this.totalSteps} PPO steps done`);
  }

  private async step(session: TrainingSession): Promise<StepReport> {
    const target = this.target;
    const t0 = performance.now();
    const r = await session.trainStep();
    const seconds = (performance.now() - t0) / 1000;
    const B = this.settings!.config.batch_size;
    const tokens = Math.round(
      B * ((r.stats['tokens/queries_len_mean'] ?? 0) + (r.stats['tokens/responses_len_mean'] ?? 0)),
    );
    const row: MetricRow = {
      step: r.step,
      stats: r.stats,
      target,
      seconds,
      tokens,
      gpuBytes: session.gpu.allocatedBytes,
      gpuPeakBytes: session.gpu.peakBytes,
    };
    this.history.push(row);
    return { ...row, samples: r.samples };
  }

  /** Saves a checkpoint when checkpoints are on; with `onlyIfNew`, only when the last one is older than this step. */
  private async checkpoint(onlyIfNew: boolean): Promise<void> {
    const session = this.session;
    if (!session || !this.stored || this.settings!.checkpointEvery <= 0) return;
    if (onlyIfNew && session.step === this.savedStep) return;
    if (session.step === 0 || session.gpu.lost) return;
    try {
      const saved = await this.exclusive(() =>
        saveCheckpoint({
          session,
          totalSteps: this.totalSteps,
          target: this.target,
          marks: this.marks,
          metrics: this.history,
          app: { settings: this.stored!, descriptions: this.descriptions },
        }),
      );
      this.savedStep = saved.step;
      this.post({ type: 'checkpoint-saved', ...saved });
    } catch (e) {
      // A failed save does not stop training; it is reported like any error.
      this.post({ type: 'error', error: errorInfo(e, `saving the checkpoint of step ${session.step}`) });
    }
  }

  private async fail(e: unknown, during: string): Promise<void> {
    const gpu = this.session?.gpu;
    // A readback on a lost device can fail before the device's `lost` promise settles: give it a second.
    for (let i = 0; i < 10 && gpu && !gpu.lost; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const lost = gpu?.lost;
    // A lost device has its own message (device-lost); repeating it as an error adds nothing.
    if (!lost) this.post({ type: 'error', error: errorInfo(e, during) });
    this.setPhase('failed', lost ? 'the GPU device was lost' : during);
  }

  /** Pauses after the step in flight (and its checkpoint). */
  pause(): void {
    if (this.phase === 'training') this.setPhase('pausing');
  }

  resume(): void {
    const step = this.session?.step ?? 0;
    if (this.phase === 'paused' || this.phase === 'pausing')
      this.setPhase('training', `resumed after ${step} PPO steps`);
  }

  /** Stops after the step in flight, saving a checkpoint; the model stays for compare and export. */
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
   * The new target applies from the next step: the switch is queued behind the step in flight,
   * which keeps the target it started with.
   */
  setTarget(target: SentimentTarget): void {
    const reward = this.reward;
    const session = this.session;
    if (!reward || !session) {
      // Still loading: the reward is (or will be) built with it, before any step.
      this.target = target;
      reward?.setTarget(target);
      return;
    }
    const mark = { fromStep: session.step + (this.stepInFlight ? 1 : 0), target };
    this.exclusive(async () => {
      reward.setTarget(target);
      this.target = target;
    }).catch((e: unknown) =>
      this.post({ type: 'error', error: errorInfo(e, 'switching the sentiment target') }),
    );
    this.marks.push(mark);
    this.post({ type: 'target', mark });
  }

  async compare(
    id: number,
    prompt: string,
    maxNewTokens: number,
    against: CompareAgainst = 'reference',
  ): Promise<void> {
    const session = this.session;
    if (!session) throw new Error('load a model first: press Train');
    const ids = encode(prompt);
    if (ids.length === 0) throw new Error('type a prompt to compare');
    const result = await this.exclusive(() => session.compare(ids, maxNewTokens, against));
    this.post({
      type: 'compare-result',
      id,
      result: {
        prompt,
        ref: { text: result.ref.text, score: result.ref.score },
        against,
        policy: { text: result.policy.text, score: result.policy.score },
        target: this.target,
        step: session.step,
      },
    });
  }

  /** Runs `job` on the loaded session as a GPU job (between steps), e.g. workers/evaluate.ts. */
  withSession<T>(job: (session: TrainingSession) => Promise<T>): Promise<T> {
    const session = this.session;
    if (!session) return Promise.reject(new Error('load a model first: press Train'));
    return this.exclusive(() => job(session));
  }

  /** The policy's folder (with LoRA the peft adapter folder), or with `merged` the adapters merged in. */
  async export(id: number, merged: boolean): Promise<void> {
    const session = this.session;
    if (!session) throw new Error('there is no trained model to download yet: press Train');
    const files = await this.exclusive(() =>
      merged ? session.exportMergedFolder() : session.exportFolder(),
    );
    const entries = [...files];
    this.post({ type: 'export-result', id, step: session.step, files: entries }, [
      ...new Set(entries.map(([, b]) => b.buffer as ArrayBuffer)),
    ]);
  }

  /**
   * The policy for the runs list: a LoRA policy on a base that can be loaded again (a Hub repo or a
   * URL) as its adapter folder (megabytes, not the base's size again), merged into the base at
   * evaluation; otherwise a whole GPT-2 folder (a LoRA policy on local files merged).
   */
  async keptModel(): Promise<KeptModel> {
    const session = this.session;
    if (!session) throw new Error('there is no trained model to keep');
    const base = session.spec.lora?.baseModel ?? null;
    const files = await this.exclusive(() => (base ? session.exportFolder() : session.exportMergedFolder()));
    return { kind: 'policy', files, base };
  }

  /** Stops the loop (if any) and frees the session. */
  async shutdown(): Promise<void> {
    if (this.active) this.setPhase('stopping');
    await this.loop;
    await this.queue;
    this.session?.dispose();
    this.rewardModel?.dispose();
    this.session = null;
    this.rewardModel = null;
    this.reward = null;
    this.stored = null;
  }
}
