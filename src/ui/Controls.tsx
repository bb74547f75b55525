import { useState } from 'react';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { downloadMetrics, downloadModelFiles, downloadModelZip } from './save.ts';
import { useMethod } from '../store/method.ts';
import { useMethodErrors } from './MethodSettings.tsx';
import { useSettingsErrors } from './SettingsPanel.tsx';

/** "Step 12 / 100": completed PPO steps of the run. */
function StepCounter() {
  const ppoDone = useStudio((s) => (s.metrics.length ? s.metrics[s.metrics.length - 1].step + 1 : 0));
  // A DPO / reward-model run counts its updates (1-based) in the method store.
  const prefDone = useMethod((s) => (s.metrics.length ? s.metrics[s.metrics.length - 1].step : 0));
  const done = Math.max(ppoDone, prefDone);
  const total = useStudio((s) => s.run.info?.totalSteps);
  return (
    <span className="step-counter" data-testid="step-counter" aria-live="polite" data-step={done}>
      Step <strong>{done}</strong>
      {total !== undefined && <> / {total}</>}
    </span>
  );
}

/** Flips the sentiment the reward favours; during a run, from the next step on. */
function TargetToggle() {
  const target = useStudio((s) => s.target);
  const other = target === 'positive' ? 'negative' : 'positive';
  return (
    <button
      type="button"
      className={`target ${target}`}
      data-testid="target-sentiment"
      data-target={target}
      aria-label={`Target sentiment: ${target}. Press to reward ${other} text instead.`}
      onClick={() => engine.setTarget(other)}
    >
      Target: <strong>{target}</strong> <span aria-hidden="true">⇄</span>
    </button>
  );
}

function useAsyncAction(action: () => Promise<void>): [() => void, boolean] {
  const [busy, setBusy] = useState(false);
  const addError = useStudio((s) => s.addError);
  const run = () => {
    setBusy(true);
    action()
      .catch((e: unknown) =>
        addError({ name: 'DownloadError', message: (e as Error).message, during: 'downloading' }),
      )
      .finally(() => setBusy(false));
  };
  return [run, busy];
}

/** The run's buttons, the target toggle, the step counter and the downloads. */
export function Controls() {
  const phase = useStudio((s) => s.run.phase);
  const gpuReady = useStudio((s) => s.gpuStatus === 'ready' || s.gpuStatus === 'lost');
  const hasModel = useStudio((s) => s.run.info !== null);
  const lora = useStudio((s) => s.run.info?.lora ?? null);
  const hasMetrics = useStudio((s) => s.metrics.length > 0);
  const ppoErrors = useSettingsErrors();
  const methodErrors = useMethodErrors();
  const errors = useMethod((s) => s.draft.method === 'ppo')
    ? new Map([...ppoErrors, ...methodErrors])
    : methodErrors;
  const [zip, zipping] = useAsyncAction(downloadModelZip);
  const [mergedZip, merging] = useAsyncAction(() => downloadModelZip({ merged: true }));
  const [files, saving] = useAsyncAction(downloadModelFiles);
  const running = phase === 'training' || phase === 'pausing' || phase === 'paused';
  const busy = running || phase === 'loading' || phase === 'stopping';
  const invalid = errors.size > 0;

  return (
    <div className="controls" role="toolbar" aria-label="Training controls">
      <button
        type="button"
        data-testid="train"
        disabled={busy || invalid || !gpuReady}
        title={invalid ? `Fix the settings first: ${[...errors.keys()].join(', ')}` : undefined}
        onClick={() => engine.train()}
      >
        Train
      </button>
      <button
        type="button"
        data-testid="pause"
        aria-pressed={phase !== 'training'}
        disabled={!running}
        onClick={phase === 'training' ? engine.pause : engine.resume}
      >
        {phase === 'training' || !running ? 'Pause' : 'Resume'}
      </button>
      <button type="button" data-testid="stop" disabled={!running} onClick={engine.stop}>
        Stop
      </button>
      <TargetToggle />
      <StepCounter />
      <span className={`phase phase-${phase}`} data-testid="phase">
        {phase}
      </span>
      <span className="spacer" />
      <div className="exports" role="group" aria-label="Download">
        <button
          type="button"
          data-testid="download-weights"
          disabled={!hasModel || phase === 'loading' || zipping}
          onClick={zip}
          title={
            lora
              ? 'The peft adapter folder in a .zip (adapter_config.json, adapter_model.safetensors; a PPO value head in model.safetensors), for the base model'
              : 'The policy as a Hugging Face folder in a .zip (config.json, model.safetensors with the value head, tokenizer files)'
          }
        >
          {zipping ? 'Zipping…' : lora ? '⤓ Adapter .zip' : '⤓ Model .zip'}
        </button>
        {lora && (
          <button
            type="button"
            className="secondary"
            data-testid="download-merged"
            disabled={phase === 'loading' || merging}
            onClick={mergedZip}
            title="The base with the LoRA adapters merged in (W + scaling (B A)^T): a whole Hugging Face GPT-2 folder"
          >
            {merging ? 'Merging…' : '⤓ merged .zip'}
          </button>
        )}
        <button
          type="button"
          className="secondary"
          disabled={!hasModel || phase === 'loading' || saving}
          onClick={files}
          title="The same folder as separate files"
        >
          files
        </button>
        <button
          type="button"
          className="secondary"
          data-testid="download-csv"
          disabled={!hasMetrics}
          onClick={() => downloadMetrics('csv')}
          title="Metrics, one row per PPO step"
        >
          CSV
        </button>
        <button
          type="button"
          className="secondary"
          data-testid="download-jsonl"
          disabled={!hasMetrics}
          onClick={() => downloadMetrics('jsonl')}
          title="Metrics, one JSON object per PPO step"
        >
          JSONL
        </button>
      </div>
    </div>
  );
}
