/**
 * The page's side of the worker protocol: starts the engine worker, routes its messages to the
 * store, and turns the studio's commands into ToWorker messages. Exported model files come back
 * through a promise per request, since they are not state to keep.
 */
import type { FromWorker, KeptWeightsKind, ToWorker } from '../protocol.ts';
import { settingsFromLink } from '../store/settings.ts';
import { resolvePpoRun, setPreferenceRunSender, startFormPreferenceRun, useMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import type { SentimentTarget } from '../reward/types.ts';
import type { CompareAgainst } from '../rl/session.ts';

let worker: Worker | null = null;
let nextId = 1;
let askedForCheckpoint = false;
/** Answers that go to their request's promise rather than into state. */
type Answer = Extract<FromWorker, { type: 'export-result' | 'weights-kept' }>;
const pending = new Map<number, { resolve: (msg: Answer) => void; reject: (e: Error) => void }>();

function onMessage(msg: FromWorker): void {
  if ((msg.type === 'export-result' || msg.type === 'weights-kept') && pending.has(msg.id)) {
    pending.get(msg.id)!.resolve(msg);
    pending.delete(msg.id);
  } else if (msg.type === 'error' && msg.requestId !== undefined && pending.has(msg.requestId)) {
    pending.get(msg.requestId)!.reject(new Error(msg.error.message));
    pending.delete(msg.requestId);
  }
  useStudio.getState().handleWorkerMessage(msg);
  if (msg.type === 'ready' && !askedForCheckpoint) {
    askedForCheckpoint = true;
    send({ type: 'checkpoint-query' });
  }
}

/** Reads the page's link into the settings form, then starts the engine worker. */
export function startEngine(): void {
  if (worker) return;
  const link = settingsFromLink(location.search, location.href);
  useStudio.getState().setLink(link.draft, link.linked, link.problems);
  if (!navigator.gpu) {
    useStudio.getState().setGpuStatus('no-webgpu');
    return;
  }
  worker = new Worker(new URL('../../workers/engine.worker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = (ev) =>
    useStudio.getState().handleWorkerMessage({
      type: 'error',
      error: { name: 'WorkerError', message: ev.message || 'the engine worker failed to start' },
    });
  send({ type: 'init' });
  setPreferenceRunSender((settings) => send({ type: 'train-preferences', settings }));
  // For trying the recovery path by hand (devtools console) and in the browser tests.
  Object.assign(window, { rlhfStudio: { simulateDeviceLoss: () => send({ type: 'simulate-device-loss' }) } });
}

export function send(msg: ToWorker): void {
  if (!worker) throw new Error('engine not started');
  worker.postMessage(msg);
}

export function runSelfTest(): void {
  useStudio.getState().startSelfTest();
  send({ type: 'selftest', id: nextId++, size: { M: 33, K: 64, N: 40 } });
}

/** Starts a run with the form's settings; returns false (and changes nothing) if they are invalid. */
export function train(): boolean {
  if (useMethod.getState().draft.method !== 'ppo') return startFormPreferenceRun().length === 0;
  const { settings } = resolvePpoRun(useStudio.getState().draft, useMethod.getState().draft.lora);
  if (!settings) return false;
  useStudio.getState().beginRun();
  send({ type: 'train', settings });
  return true;
}

export function resumeCheckpoint(): void {
  useStudio.getState().beginRun();
  send({ type: 'resume-checkpoint' });
}

export function discardCheckpoint(): void {
  send({ type: 'checkpoint-discard' });
}

export const pause = () => send({ type: 'pause' });
export const resume = () => send({ type: 'resume' });
export const stop = () => send({ type: 'stop' });

/** Flips the sentiment the reward favours; a running run applies it from its next step. */
export function setTarget(target: SentimentTarget): void {
  useStudio.getState().setTarget(target);
  if (worker) send({ type: 'set-target', target });
}

export function compare(prompt: string, maxNewTokens: number, against: CompareAgainst = 'reference'): void {
  useStudio.getState().setCompare(true);
  send({ type: 'compare', id: nextId++, prompt, maxNewTokens, against });
}

/** Sends a request whose answer (of type T) resolves the promise; an error naming it rejects it. */
function request<T extends Answer['type']>(
  make: (id: number) => Extract<ToWorker, { id: number }>,
): Promise<Extract<Answer, { type: T }>> {
  const id = nextId++;
  const done = new Promise<Answer>((resolve, reject) => pending.set(id, { resolve, reject }));
  send(make(id));
  return done as Promise<Extract<Answer, { type: T }>>;
}

/** The policy as a Hugging Face folder, by file name. */
export async function exportModel({ merged = false } = {}): Promise<Map<string, Uint8Array>> {
  const r = await request<'export-result'>((id) => ({ type: 'export', id, merged }));
  return new Map(r.files);
}

/** Keeps the loaded run's trained model with kept run `runId` (worker OPFS); its kind and bytes. */
export async function keepWeights(
  runId: string,
): Promise<{ kind: KeptWeightsKind; bytes: number; base: string | null }> {
  const r = await request<'weights-kept'>((id) => ({ type: 'keep-weights', id, runId }));
  return { kind: r.kind!, bytes: r.bytes, base: r.base };
}

export async function deleteWeights(runId: string): Promise<void> {
  await request<'weights-kept'>((id) => ({ type: 'delete-weights', id, runId }));
}
