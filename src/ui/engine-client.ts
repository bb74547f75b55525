/** The page's side of the worker protocol: starts the engine worker and routes its messages to the store. */
import type { ToWorker } from '../protocol.ts';
import { useStudio } from '../store/store.ts';

let worker: Worker | null = null;

export function startEngine(): void {
  if (worker) return;
  if (!navigator.gpu) {
    useStudio.getState().setGpuStatus('no-webgpu');
    return;
  }
  worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (ev) => useStudio.getState().handleWorkerMessage(ev.data);
  worker.onerror = (ev) =>
    useStudio.getState().handleWorkerMessage({
      type: 'error',
      error: { name: 'WorkerError', message: ev.message || 'the engine worker failed to start' },
    });
  send({ type: 'init' });
}

export function send(msg: ToWorker): void {
  if (!worker) throw new Error('engine not started');
  worker.postMessage(msg);
}

let nextId = 1;
export function runSelfTest(): void {
  useStudio.getState().startSelfTest();
  send({ type: 'selftest', id: nextId++, size: { M: 33, K: 64, N: 40 } });
}
