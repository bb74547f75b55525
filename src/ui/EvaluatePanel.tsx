import { useId, useState } from 'react';
import { beginEvaluate, evalCsv, useEvaluate } from '../store/evaluate.ts';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { fmtNum } from './format.ts';
import { saveFile } from './save.ts';

/**
 * Before and after, as TRL's notebook ends: the run's reference and its policy continue the same
 * queries with the same sampling keys; per query both responses and rewards, and per model the mean,
 * median and std of the reward and the KL to the reference. Runs between PPO steps, or after the run.
 */
export function EvaluatePanel() {
  const id = useId();
  const [samples, setSamples] = useState(16);
  const [seed, setSeed] = useState(0);
  const { pendingId, report, step } = useEvaluate();
  const hasModel = useStudio((s) => s.run.info !== null && s.run.phase !== 'loading');
  const run = () => engine.send({ type: 'evaluate', id: beginEvaluate(), samples, seed });
  return (
    <section className="panel samples evaluate" data-testid="evaluate" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        Evaluate before and after
        {report && <span className="sub"> · policy at step {step}</span>}
      </h2>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <label htmlFor={`${id}-n`} className="hint">
          queries
        </label>
        <input
          id={`${id}-n`}
          className="narrow"
          type="number"
          min={1}
          max={256}
          value={samples}
          onChange={(e) => setSamples(Math.max(1, Math.min(256, Math.round(Number(e.target.value)) || 1)))}
        />
        <label htmlFor={`${id}-seed`} className="hint">
          seed
        </label>
        <input
          id={`${id}-seed`}
          className="narrow"
          type="number"
          value={seed}
          onChange={(e) => setSeed(Math.round(Number(e.target.value)) || 0)}
        />
        <button type="submit" data-testid="evaluate-run" disabled={!hasModel || pendingId !== null}>
          {pendingId !== null ? 'Evaluating…' : 'Evaluate'}
        </button>
        <button
          type="button"
          data-testid="evaluate-csv"
          disabled={!report}
          onClick={() => report && saveFile(`rlhf-studio-eval-step${step}.csv`, evalCsv(report), 'text/csv')}
        >
          CSV
        </button>
      </form>
      {!hasModel && <p className="hint">Load a model with Train first; evaluation runs between steps.</p>}
      {report && (
        <>
          <table data-testid="evaluate-summary">
            <thead>
              <tr>
                <th scope="col">model</th>
                {['mean', 'median', 'std', 'KL'].map((h) => (
                  <th key={h} scope="col" className="num">
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {report.models.map((m) => (
                <tr key={m.name}>
                  <td>{m.name}</td>
                  {[m.mean, m.median, m.std, m.kl].map((x, k) => (
                    <td key={k} className="num">
                      {fmtNum(x)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <div className="table-scroll">
            <table data-testid="evaluate-table">
              <thead>
                <tr>
                  <th scope="col">query</th>
                  <th scope="col">reference response</th>
                  <th scope="col" className="num">
                    reward
                  </th>
                  <th scope="col">policy response</th>
                  <th scope="col" className="num">
                    reward
                  </th>
                </tr>
              </thead>
              <tbody>
                {report.rows.map((r, i) => (
                  <tr key={i}>
                    <td className="text">{r.query}</td>
                    {r.responses.flatMap((x, k) => [
                      <td key={`t${k}`} className="text response">
                        {x.text}
                      </td>,
                      <td key={`r${k}`} className={`num ${x.reward >= 0 ? 'ok' : 'bad'}`}>
                        {fmtNum(x.reward)}
                      </td>,
                    ])}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
