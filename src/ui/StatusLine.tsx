import { useStudio } from '../store/store.ts';
import { adapterName, fmtBytes, fmtDuration } from './format.ts';

/** Mean of the last few step times: the ETA's pace. */
const PACE_WINDOW = 5;

/** Adapter, GPU memory, step time, tokens/s, ETA; what the run was started with; the last checkpoint. */
export function StatusLine() {
  const adapter = useStudio((s) => s.adapter);
  const last = useStudio((s) => s.metrics[s.metrics.length - 1]);
  const pace = useStudio((s) => {
    const recent = s.metrics.slice(-PACE_WINDOW);
    return recent.length ? recent.reduce((a, r) => a + r.seconds, 0) / recent.length : null;
  });
  const info = useStudio((s) => s.run.info);
  const phase = useStudio((s) => s.run.phase);
  const detail = useStudio((s) => s.run.detail);
  const checkpoint = useStudio((s) => s.lastCheckpoint);
  const done = last ? last.step + 1 : 0;
  const remaining = info ? info.totalSteps - done : null;
  const eta =
    pace !== null && remaining !== null && phase === 'training' ? fmtDuration(pace * remaining) : '—';
  return (
    <div className="status" data-testid="status">
      <dl className="status-line">
        <div>
          <dt>GPU</dt>
          <dd data-testid="status-adapter">{adapter ? adapterName(adapter) : '—'}</dd>
        </div>
        <div>
          <dt>memory</dt>
          <dd data-testid="status-memory" data-bytes={last?.gpuBytes} data-peak-bytes={last?.gpuPeakBytes}>
            {last ? `${fmtBytes(last.gpuBytes)} (peak ${fmtBytes(last.gpuPeakBytes)})` : '—'}
          </dd>
        </div>
        <div>
          <dt>step time</dt>
          <dd>{last ? fmtDuration(last.seconds) : '—'}</dd>
        </div>
        <div>
          <dt>tokens/s</dt>
          <dd data-testid="status-tokens">
            {last ? Math.round(last.tokens / last.seconds).toLocaleString() : '—'}
          </dd>
        </div>
        <div>
          <dt>ETA</dt>
          <dd data-testid="status-eta">{eta}</dd>
        </div>
        {checkpoint && (
          <div>
            <dt>checkpoint</dt>
            <dd data-testid="status-checkpoint">
              step {checkpoint.step}, {fmtBytes(checkpoint.bytes)}
            </dd>
          </div>
        )}
      </dl>
      {info && (
        <p className="run-info" data-testid="run-info">
          {info.policy} ({info.modelShape.n_layer} layers, n_embd {info.modelShape.n_embd},{' '}
          {(info.modelShape.params / 1e6).toFixed(1)}M parameters)
          {info.lora && (
            <>
              {' '}
              + LoRA r {info.lora.r}, alpha {info.lora.alpha} on {info.lora.targetModules.join(', ')} (base
              frozen, and the reference)
            </>
          )}{' '}
          · reward {info.reward} ({info.rewardEngine}, labels {info.rewardLabels.join('/')}) ·{' '}
          {info.promptCount.toLocaleString()} prompts from {info.prompts}
          {info.startStep > 0 && <> · resumed at step {info.startStep}</>}
        </p>
      )}
      {detail && phase !== 'training' && <p className="run-detail">{detail}</p>}
    </div>
  );
}
