import { useEffect, useRef, useState } from 'react';
import { beginEvaluate, failEvaluate, useEvaluate } from '../store/evaluate.ts';
import { resolvePpoRun, useMethod } from '../store/method.ts';
import { curve, overlayStat, useRuns, type SavedRun } from '../store/runs.ts';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { QueryCount } from './fields.tsx';
import { fmtBytes, fmtNum } from './format.ts';

const COLORS = ['#2f6fdb', '#c0392b', '#1e8449', '#8e44ad', '#d68910', '#17a589'];

/** Keeps the run that just ended (finished or stopped) in the runs list, with its trained model. */
function useSaveEndedRuns(): void {
  const phase = useStudio((s) => s.run.phase);
  const last = useRef(phase);
  useEffect(() => {
    const was = last.current;
    last.current = phase;
    if (was === phase || (phase !== 'finished' && phase !== 'stopped')) return;
    const studio = useStudio.getState();
    const method = useMethod.getState();
    const kind = method.running ?? 'ppo';
    const metrics = kind === 'ppo' ? studio.metrics : method.metrics;
    if (metrics.length === 0) return;
    const date = new Date().toISOString();
    const target = kind === 'ppo' ? ` ${studio.target}` : '';
    const lora = studio.run.info?.lora ? ' LoRA' : '';
    const runs = useRuns.getState();
    runs
      .save({
        name: `${kind.toUpperCase()}${lora}${target}, ${metrics.length} steps`,
        date,
        method: kind,
        settings: { studio: studio.draft, method: method.draft },
        metrics: metrics.map((m) => ({ step: m.step, stats: m.stats })),
        samples: kind === 'ppo' ? studio.samples : method.pairs,
        weights: null,
      })
      .then(async (id) => runs.setWeights(id, await engine.keepWeights(id)))
      .catch((e: unknown) =>
        studio.addError({
          name: 'StorageError',
          message: (e as Error).message ?? String(e),
          during: 'keeping the run in the runs list',
        }),
      );
  }, [phase]);
}

/** Selected runs' curves of one stat on one chart (PPO: env/reward_mean; DPO, reward model: loss). */
function Overlay({ runs, stat }: { runs: SavedRun[]; stat: string }) {
  const lines = runs.map((r) => ({ run: r, stat, pts: curve(r, stat) }));
  const all = lines.flatMap((l) => l.pts);
  if (all.length === 0) return <p className="hint">The selected runs have no points to draw.</p>;
  const [W, H, P] = [560, 180, 30];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => P + ((x - x0) / (x1 - x0)) * (W - 2 * P);
  const sy = (y: number) => H - P + ((y - y0) / (y1 - y0)) * -(H - 2 * P);
  return (
    <figure data-testid="runs-overlay" data-lines={lines.length} data-stat={stat}>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${stat} of the selected runs`}>
        <text x={2} y={P - 8} fontSize={11}>
          {fmtNum(y1)}
        </text>
        <text x={2} y={H - P} fontSize={11}>
          {fmtNum(y0)}
        </text>
        <line x1={P} y1={H - P} x2={W - P} y2={H - P} stroke="#999" />
        {lines.map((l, k) => (
          <polyline
            key={l.run.id}
            fill="none"
            stroke={COLORS[k % COLORS.length]}
            strokeWidth={2}
            points={l.pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        <strong>{stat}</strong>:{' '}
        {lines.map((l, k) => (
          <span key={l.run.id} style={{ color: COLORS[k % COLORS.length], marginRight: 12 }}>
            ● {l.run.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/**
 * Kept runs' policies side by side (TRL's happy / pessimistic / reference table): the PPO form's policy
 * is the reference, its reward and prompts score and feed them; the report lands in the Evaluate panel.
 */
function SideBySide({ picked }: { picked: SavedRun[] }) {
  const [samples, setSamples] = useState(16);
  const pendingId = useEvaluate((s) => s.pendingId);
  const phase = useStudio((s) => s.run.phase);
  const addError = useStudio((s) => s.addError);
  const policies = picked.filter((r) => r.weights?.kind === 'policy');
  const busy = ['loading', 'training', 'pausing', 'paused', 'stopping'].includes(phase);
  const run = () => {
    const { settings, errors } = resolvePpoRun(useStudio.getState().draft, useMethod.getState().draft.lora);
    if (!settings) {
      addError({
        name: 'SettingsError',
        message: errors.map((e) => `${e.field}: ${e.message}`).join('; '),
        during: 'evaluating kept runs (the PPO form gives the reference, reward and prompts)',
      });
      return;
    }
    const id = beginEvaluate();
    try {
      engine.send({
        type: 'evaluate-runs',
        id,
        settings,
        runs: policies.map((r) => ({ runId: r.id, name: r.name })),
        samples,
        seed: 0,
      });
    } catch (e) {
      failEvaluate(id);
      throw e;
    }
  };
  return (
    <div className="row" data-testid="side-by-side">
      <button
        type="button"
        data-testid="evaluate-runs"
        disabled={policies.length === 0 || pendingId !== null || busy}
        onClick={run}
        title="Reference: the PPO form's policy; reward and prompts: the form's. The table appears under Evaluate."
      >
        {pendingId !== null ? 'Evaluating…' : `Evaluate ${policies.length} side by side`}
      </button>
      <label className="hint">
        queries <QueryCount label="side-by-side queries" value={samples} onChange={setSamples} />
      </label>
      <span className="hint">
        {busy
          ? 'after the run in progress'
          : 'against the PPO form’s policy as the reference, with its reward and prompts'}
        {picked.length > policies.length && ' · reward models and runs without kept weights are left out'}
      </span>
    </div>
  );
}

/** The runs kept in this browser: name, date, size, delete, storage in use, overlays and side by side. */
export function RunsPanel() {
  useSaveEndedRuns();
  const { runs, usage, selected, refresh, remove, toggle } = useRuns();
  const addError = useStudio((s) => s.addError);
  useEffect(() => {
    refresh().catch(() => undefined);
  }, [refresh]);
  const picked = runs.filter((r) => selected.includes(r.id));
  const stats = [...new Set(picked.map((r) => overlayStat(r.method)))];
  const del = (id: string) =>
    engine
      .deleteWeights(id)
      .then(() => remove(id))
      .catch((e: unknown) =>
        addError({ name: 'StorageError', message: (e as Error).message, during: 'deleting the run' }),
      );
  return (
    <section className="panel samples runs" data-testid="runs" aria-labelledby="runs-title">
      <h2 id="runs-title">
        Runs
        <span className="sub" data-testid="runs-usage">
          {' '}
          · {runs.length} kept
          {usage && ` · storage in use ${fmtBytes(usage.used)} of ${fmtBytes(usage.quota)}`}
        </span>
      </h2>
      {runs.length === 0 ? (
        <p className="hint">Each finished or stopped run is kept here, in this browser.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">pick</th>
              <th scope="col">name</th>
              <th scope="col">date</th>
              <th scope="col">model</th>
              <th scope="col" className="num">
                size
              </th>
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id} data-testid="run-row">
                <td>
                  <input
                    type="checkbox"
                    aria-label={`pick ${r.name}`}
                    checked={selected.includes(r.id)}
                    onChange={() => toggle(r.id)}
                  />
                </td>
                <td>{r.name}</td>
                <td>{new Date(r.date).toLocaleString()}</td>
                <td data-testid="run-weights" title={r.weights?.base ? `on ${r.weights.base}` : undefined}>
                  {!r.weights
                    ? '—'
                    : r.weights.kind === 'reward-model'
                      ? 'reward model'
                      : r.weights.base
                        ? 'LoRA adapter'
                        : 'policy'}
                </td>
                <td className="num">{fmtBytes(r.bytes + (r.weights?.bytes ?? 0))}</td>
                <td>
                  <button type="button" onClick={() => void del(r.id)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {picked.length > 0 && <SideBySide picked={picked} />}
      {stats.map((stat) => (
        <Overlay key={stat} stat={stat} runs={picked.filter((r) => overlayStat(r.method) === stat)} />
      ))}
    </section>
  );
}
