/// <reference lib="webworker" />
/**
 * The engine's Web Worker: owns the GPU device and everything that runs on it. The page talks to it
 * only through src/protocol.ts.
 */
import { runSelfTest } from '../src/engine/selftest.ts';
import { Gpu } from '../src/gpu/gpu.ts';
import { errorInfo, type FromWorker, type ToWorker } from '../src/protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

let gpu: Gpu | null = null;

function post(msg: FromWorker): void {
  self.postMessage(msg);
}

async function init(): Promise<Gpu> {
  if (gpu && !gpu.lost) return gpu;
  gpu = await Gpu.create(self.navigator.gpu);
  gpu.onLost = (e) => post({ type: 'device-lost', reason: e.reason, message: e.message });
  post({ type: 'ready', adapter: gpu.adapter });
  return gpu;
}

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
    default: {
      const never: never = msg;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  handle(ev.data).catch((e: unknown) => post({ type: 'error', error: errorInfo(e) }));
};
