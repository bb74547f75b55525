/**
 * The studio's one store. Worker events enter through `handleWorkerMessage`, a plain action; UI
 * components subscribe to narrow slices (the charts to `metrics` and `marks`, the table to `samples`).
 */
import { create } from 'zustand';
import type { AdapterSummary } from '../gpu/device.ts';
import type {
  CheckpointInfo,
  CompareResult,
  FromWorker,
  MetricRow,
  RunInfo,
  RunPhase,
  StepReport,
  TargetMark,
  WorkerErrorInfo,
} from '../protocol.ts';
import type { SentimentTarget } from '../reward/types.ts';
import { failEvaluate, handleEvalMessage } from './evaluate.ts';
import { handlePreferenceMessage, showResumedLora } from './method.ts';
import { presetDraft, DEFAULT_PRESET, type PresetId, type SettingsDraft } from './settings.ts';

export type GpuStatus = 'checking' | 'no-webgpu' | 'ready' | 'failed' | 'lost';

export interface SelfTestState {
  running: boolean;
  kernel?: string;
  ok?: boolean;
  maxAbsErr?: number;
  ms?: number;
}

export interface DownloadState {
  id: string;
  label: string;
  loaded: number;
  total: number | null;
  done: boolean;
}

export interface RunState {
  phase: RunPhase;
  detail?: string;
  info: RunInfo | null;
}

export interface SamplesState {
  step: number;
  target: SentimentTarget;
  rows: StepReport['samples'];
}

export interface StudioState {
  gpuStatus: GpuStatus;
  adapter: AdapterSummary | null;
  errors: WorkerErrorInfo[];
  selfTest: SelfTestState;
  /** The settings form, and the names the page's link set. */
  draft: SettingsDraft;
  linked: string[];
  linkProblems: string[];
  run: RunState;
  metrics: MetricRow[];
  marks: TargetMark[];
  samples: SamplesState | null;
  /** The sentiment the toggle shows: the run's target, or the one the next run starts with. */
  target: SentimentTarget;
  downloads: DownloadState[];
  /** A saved run to offer resuming, and the last checkpoint of this run. */
  checkpointOffer: CheckpointInfo | null;
  lastCheckpoint: { step: number; savedAt: string; bytes: number } | null;
  compare: { pending: boolean; result: CompareResult | null };

  setGpuStatus(status: GpuStatus): void;
  startSelfTest(): void;
  dismissError(index: number): void;
  addError(error: WorkerErrorInfo): void;
  setDraft(patch: Partial<SettingsDraft>): void;
  applyPreset(id: PresetId): void;
  setLink(draft: SettingsDraft, linked: string[], problems: string[]): void;
  setTarget(target: SentimentTarget): void;
  beginRun(): void;
  setCompare(pending: boolean): void;
  handleWorkerMessage(msg: FromWorker): void;
}

const freshRun = {
  run: { phase: 'loading' as RunPhase, info: null },
  metrics: [],
  marks: [],
  samples: null,
  downloads: [],
  lastCheckpoint: null,
  compare: { pending: false, result: null },
};

export const useStudio = create<StudioState>()((set, get) => ({
  gpuStatus: 'checking',
  adapter: null,
  errors: [],
  selfTest: { running: false },
  draft: presetDraft(DEFAULT_PRESET),
  linked: [],
  linkProblems: [],
  run: { phase: 'idle', info: null },
  metrics: [],
  marks: [],
  samples: null,
  target: 'positive',
  downloads: [],
  checkpointOffer: null,
  lastCheckpoint: null,
  compare: { pending: false, result: null },

  setGpuStatus: (gpuStatus) => set({ gpuStatus }),
  startSelfTest: () => set({ selfTest: { running: true } }),
  dismissError: (index) => set((s) => ({ errors: s.errors.filter((_, i) => i !== index) })),
  addError: (error) => set((s) => ({ errors: [...s.errors, error] })),
  setDraft: (patch) => set((s) => ({ draft: { ...s.draft, ...patch, preset: 'custom' } })),
  applyPreset: (id) => set((s) => ({ draft: presetDraft(id, s.draft.target), linked: [] })),
  setLink: (draft, linked, linkProblems) => set({ draft, linked, linkProblems, target: draft.target }),
  setTarget: (target) => set((s) => ({ target, draft: { ...s.draft, target } })),
  beginRun: () => set({ ...freshRun, checkpointOffer: null }),
  setCompare: (pending) => set((s) => ({ compare: { ...s.compare, pending } })),

  handleWorkerMessage: (msg) => {
    switch (msg.type) {
      case 'ready':
        set({ gpuStatus: 'ready', adapter: msg.adapter });
        return;
      case 'error':
        failEvaluate(msg.requestId);
        set((s) => ({
          errors: [...s.errors, msg.error],
          gpuStatus: s.gpuStatus === 'checking' ? 'failed' : s.gpuStatus,
          selfTest: { ...s.selfTest, running: false },
          // A failed compare ends its wait (a failed export rejects its promise in engine-client.ts).
          ...(msg.requestId !== undefined ? { compare: { ...s.compare, pending: false } } : {}),
        }));
        return;
      case 'device-lost':
        set((s) => ({
          gpuStatus: 'lost',
          errors: [
            ...s.errors,
            {
              name: 'GpuDeviceLostError',
              message: msg.message,
              during: s.run.phase === 'training' ? 'training' : undefined,
            },
          ],
        }));
        return;
      case 'selftest-result':
        set({
          selfTest: { running: false, kernel: msg.kernel, ok: msg.ok, maxAbsErr: msg.maxAbsErr, ms: msg.ms },
        });
        return;
      case 'run-phase':
        set((s) => ({ run: { ...s.run, phase: msg.phase, detail: msg.detail } }));
        return;
      case 'download':
        set((s) => {
          const d: DownloadState = {
            id: msg.id,
            label: msg.label,
            loaded: msg.loaded,
            total: msg.total,
            done: msg.done,
          };
          const i = s.downloads.findIndex((x) => x.id === msg.id);
          return { downloads: i < 0 ? [...s.downloads, d] : s.downloads.map((x, j) => (j === i ? d : x)) };
        });
        return;
      case 'run-info':
        if (msg.info.startStep > 0) showResumedLora(msg.info.lora);
        set((s) => ({
          run: { ...s.run, info: msg.info },
          // Every file is in memory by now, whatever the last progress report said.
          downloads: s.downloads.map((d) => ({ ...d, done: true })),
        }));
        return;
      case 'restored':
        set({ metrics: msg.history, marks: msg.marks, target: msg.target });
        return;
      case 'step': {
        const { samples, ...row } = msg.report;
        set((s) => ({
          metrics: [...s.metrics, row],
          samples: { step: row.step, target: row.target, rows: samples },
        }));
        return;
      }
      case 'pref-step':
      case 'pref-pairs':
        handlePreferenceMessage(msg);
        return;
      case 'target':
        set((s) => ({ marks: [...s.marks, msg.mark], target: msg.mark.target }));
        return;
      case 'compare-result':
        set({ compare: { pending: false, result: msg.result } });
        return;
      case 'eval-result':
        handleEvalMessage(msg);
        return;
      case 'export-result':
      case 'weights-kept':
        return; // these go to the request's promise (engine-client.ts), not into state
      case 'checkpoint-saved':
        set({ lastCheckpoint: { step: msg.step, savedAt: msg.savedAt, bytes: msg.bytes } });
        return;
      case 'checkpoint-info':
        // While a run is going, its own checkpoints are not offered back to it.
        if (get().run.phase === 'idle' || msg.info === null) set({ checkpointOffer: msg.info });
        return;
      default: {
        const never: never = msg;
        throw new Error(`unhandled worker message ${JSON.stringify(never)}`);
      }
    }
  },
}));
