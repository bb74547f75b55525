/**
 * The typed protocol between the page and the engine's Web Worker. One discriminated union each way;
 * the worker handles ToWorker in one exhaustive switch, the store handles FromWorker likewise.
 */
import type { AdapterSummary } from './gpu/device.ts';

export type ToWorker =
  /** Open the GPU device; answered by `ready` or `error`. */
  | { type: 'init' }
  /** Run a WGSL kernel and compare it with its CPU reference; answered by `selftest-result`. */
  | { type: 'selftest'; id: number; size: { M: number; K: number; N: number } };

export interface WorkerErrorInfo {
  name: string;
  message: string;
}

export type FromWorker =
  | { type: 'ready'; adapter: AdapterSummary }
  | { type: 'error'; error: WorkerErrorInfo }
  | { type: 'device-lost'; reason: string; message: string }
  | {
      type: 'selftest-result';
      id: number;
      kernel: string;
      ok: boolean;
      maxAbsErr: number;
      ms: number;
    };

export function errorInfo(e: unknown): WorkerErrorInfo {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}
