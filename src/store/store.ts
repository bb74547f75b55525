/**
 * The studio's one store. Worker events enter through `handleWorkerMessage`, a plain action; UI
 * components subscribe to narrow slices.
 */
import { create } from 'zustand';
import type { AdapterSummary } from '../gpu/device.ts';
import type { FromWorker, WorkerErrorInfo } from '../protocol.ts';

export type GpuStatus = 'checking' | 'no-webgpu' | 'ready' | 'failed' | 'lost';

export interface SelfTestState {
  running: boolean;
  kernel?: string;
  ok?: boolean;
  maxAbsErr?: number;
  ms?: number;
}

export interface StudioState {
  gpuStatus: GpuStatus;
  adapter: AdapterSummary | null;
  errors: WorkerErrorInfo[];
  selfTest: SelfTestState;
  setGpuStatus(status: GpuStatus): void;
  startSelfTest(): void;
  dismissError(index: number): void;
  handleWorkerMessage(msg: FromWorker): void;
}

export const useStudio = create<StudioState>()((set) => ({
  gpuStatus: 'checking',
  adapter: null,
  errors: [],
  selfTest: { running: false },
  setGpuStatus: (gpuStatus) => set({ gpuStatus }),
  startSelfTest: () => set({ selfTest: { running: true } }),
  dismissError: (index) => set((s) => ({ errors: s.errors.filter((_, i) => i !== index) })),
  handleWorkerMessage: (msg) => {
    switch (msg.type) {
      case 'ready':
        set({ gpuStatus: 'ready', adapter: msg.adapter });
        return;
      case 'error':
        set((s) => ({
          errors: [...s.errors, msg.error],
          gpuStatus: s.gpuStatus === 'checking' ? 'failed' : s.gpuStatus,
          selfTest: { ...s.selfTest, running: false },
        }));
        return;
      case 'device-lost':
        set((s) => ({
          gpuStatus: 'lost',
          errors: [...s.errors, { name: 'GpuDeviceLostError', message: msg.message }],
        }));
        return;
      case 'selftest-result':
        set({
          selfTest: { running: false, kernel: msg.kernel, ok: msg.ok, maxAbsErr: msg.maxAbsErr, ms: msg.ms },
        });
        return;
      default: {
        const never: never = msg;
        throw new Error(`unhandled worker message ${JSON.stringify(never)}`);
      }
    }
  },
}));
