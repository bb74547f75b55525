import { useEffect, useRef } from 'react';
import { useMethod } from '../store/method.ts';
import { curve, overlayStat, useRuns, type SavedRun } from '../store/runs.ts';
import { useStudio } from '../store/store.ts';
import { fmtBytes, fmtNum } from './format.ts';

const COLORS = ['#2f6fdb', '#c0392b', '#1e8449', '#8e44ad', '#d68910', '#17a589'];

/** Keeps the run that just ended (finished or stopped) in the runs list. */
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
    useRuns
      .getState()
      .save({
        name: `${kind.toUpperCase()}${target}, ${metrics.length} steps`,
        date,
        method: kind,
        settings: { studio: studio.draft, method: method.draft },
        metrics: metrics.map((m) => ({ step: m.step, stats: m.stats })),
        samples: kind === 'ppo' ? studio.samples : method.pairs,
      })
      .catch((e: unknown) =>
        studio.addError({
          name: 'StorageError',
          message: String(e),
          during: 'keeping the run in the runs list',
        }),
      );
  }, [phase]);
}

/** Selected runs' curves on one chart (PPO: env/reward_mean; DPO, reward model: loss). */
function Overlay({ runs }: { runs: SavedRun[] }) {
  const lines = runs.map((r) => ({
    run: r,
    stat: overlayStat(r.method),
    pts: curve(r, overlayStat(r.method)),
  }));
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
    <figure data-testid="runs-overlay" data-lines={lines.length}>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label="Overlay of the selected runs">
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
        {lines.map((l, k) => (
          <span key={l.run.id} style={{ color: COLORS[k % COLORS.length], marginRight: 12 }}>
            ● {l.run.name} ({l.stat})
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** The runs kept in this browser: name, date, size, delete, storage in use, and an overlay of the picked ones. */
export function RunsPanel() {
  useSaveEndedRuns();
  const { runs, usage, selected, refresh, remove, toggle } = useRuns();
  useEffect(() => {
    refresh().catch(() => undefined);
  }, [refresh]);
  const picked = runs.filter((r) => selected.includes(r.id));
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
              <th scope="col">overlay</th>
              <th scope="col">name</th>
              <th scope="col">date</th>
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
                    aria-label={`overlay ${r.name}`}
                    checked={selected.includes(r.id)}
                    onChange={() => toggle(r.id)}
                  />
                </td>
                <td>{r.name}</td>
                <td>{new Date(r.date).toLocaleString()}</td>
                <td className="num">{fmtBytes(r.bytes)}</td>
                <td>
                  <button type="button" onClick={() => void remove(r.id)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {picked.length > 0 && <Overlay runs={picked} />}
    </section>
  );
}
