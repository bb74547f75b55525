/// <reference lib="webworker" />
/**
 * The engine's Web Worker: owns the GPU device and everything that runs on it. The page talks to it
 * only through src/protocol.ts.
 */
import { runSelfTest } from '../src/engine/selftest.ts';
import { Gpu } from '../src/gpu/gpu.ts';
import { tunedTiles } from '../src/ops/matmul-tune.ts';
import { errorInfo, type FromWorker, type ToWorker } from '../src/protocol.ts';
import { checkpointInfo, discardCheckpoint } from './checkpoint.ts';
import { evaluateRun, evaluateSavedRuns } from './evaluate.ts';
import { opfsTileCache } from './opfs.ts';
import { PreferenceRunner } from './method-runner.ts';
import { Runner, throttledProgress } from './runner.ts';
import { deleteRunWeights, saveRunWeights } from './run-weights.ts';

declare const self: DedicatedWorkerGlobalScope;

let gpu: Gpu | null = null;
/** When a device was last lost (performance.now()). */
let lastLossAt = -Infinity;

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

/** The device, opened again after a loss (a new device, so a run can resume from its checkpoint). */
async function init(): Promise<Gpu> {
  if (gpu && !gpu.lost) return gpu;
  gpu = await Gpu.create(self.navigator.gpu);
  const opened = gpu;
  opened.onLost = (e) => {
    lastLossAt = performance.now();
    if (gpu === opened) post({ type: 'device-lost', reason: e.reason, message: e.message });
  };
  // On a hardware adapter, matmul tiles measured for it (cached in OPFS; a second or a few, once).
  await tunedTiles(opened, opfsTileCache()).catch((e) =>
    post({
      type: 'error',
      error: errorInfo(e, 'measuring matmul tile sizes (the built-in choice is used instead)'),
    }),
  );
  post({ type: 'ready', adapter: opened.adapter });
  return opened;
}

const runner = new Runner(init, post);
const prefRunner = new PreferenceRunner(init, post, throttledProgress(post));

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'init':
      await init();
      return;
    case 'selftest': {
      const result = await runSelfTest(await init(), msg.size);
      post({ type: 'selftest-result', id: msg.id, ...result });
      return;
    }
    case 'train':
      await prefRunner.shutdown();
      await runner.start(msg.settings);
      return;
    case 'train-preferences':
      await runner.shutdown();
      await prefRunner.start(msg.settings);
      return;
    case 'resume-checkpoint':
      await prefRunner.shutdown();
      await runner.start(null);
      return;
    case 'pause':
      runner.pause();
      prefRunner.pause();
      return;
    case 'resume':
      runner.resume();
      prefRunner.resume();
      return;
    case 'stop':
      runner.stop();
      prefRunner.stop();
      return;
    case 'set-target':
      runner.setTarget(msg.target);
      return;
    case 'compare':
      await runner.compare(msg.id, msg.prompt, msg.maxNewTokens, msg.against);
      return;
    case 'evaluate':
      post(await runner.withSession((s) => evaluateRun(s, msg)));
      return;
    case 'export':
      await (prefRunner.loaded ? prefRunner : runner).export(msg.id, msg.merged === true);
      return;
    case 'keep-weights': {
      const { kind, files, base } = await (prefRunner.loaded ? prefRunner : runner).keptModel();
      const bytes = await saveRunWeights(msg.runId, kind, files);
      post({ type: 'weights-kept', id: msg.id, runId: msg.runId, bytes, kind, base });
      return;
    }
    case 'delete-weights':
      await deleteRunWeights(msg.runId);
      post({ type: 'weights-kept', id: msg.id, runId: msg.runId, bytes: 0, kind: null, base: null });
      return;
    case 'evaluate-runs':
      // The run's buffers and the evaluation's would share the GPU; one at a time keeps memory bounded.
      if (runner.busy || prefRunner.busy)
        throw new Error('a run is in progress: stop it (or let it finish) before evaluating kept runs');
      post(await evaluateSavedRuns(await init(), msg, throttledProgress(post)));
      return;
    case 'checkpoint-query':
      post({ type: 'checkpoint-info', info: await checkpointInfo() });
      return;
    case 'checkpoint-discard':
      await discardCheckpoint();
      post({ type: 'checkpoint-info', info: null });
      return;
    case 'simulate-device-loss':
      gpu?.device.destroy();
      return;
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** What each request was doing, for error messages. */
const DURING: Partial<Record<ToWorker['type'], string>> = {
  init: 'opening the GPU',
  selftest: 'running the GPU self-test',
  compare: 'comparing the reference and the policy',
  evaluate: 'evaluating the reference and the policy',
  'evaluate-runs': 'evaluating kept runs side by side',
  'keep-weights': 'keeping the run’s weights',
  'delete-weights': 'deleting the run’s weights',
  export: 'exporting the model',
  'checkpoint-query': 'looking for a saved checkpoint',
  'checkpoint-discard': 'discarding the checkpoint',
};

// After a device loss, readbacks still in flight reject on their own (mapAsync aborted), sometimes
// before the device's `lost` promise settles: expected, and said once by device-lost. Any other
// stray rejection is an engine bug, shown like any error.
self.addEventListener('unhandledrejection', (ev) => {
  ev.preventDefault();
  setTimeout(() => {
    if (performance.now() - lastLossAt > 10_000)
      post({ type: 'error', error: errorInfo(ev.reason, 'an engine task') });
  }, 1000);
});

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  handle(msg).catch((e: unknown) =>
    post({
      type: 'error',
      error: errorInfo(e, DURING[msg.type]),
      requestId: 'id' in msg ? msg.id : undefined,
    }),
  );
};
