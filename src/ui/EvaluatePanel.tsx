import { useId, useState } from 'react';
import { beginEvaluate, evalCsv, useEvaluate } from '../store/evaluate.ts';
import { useMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import * as engine from './engine-client.ts';
import { fmtNum } from './format.ts';
import { QueryCount } from './fields.tsx';
import { saveFile } from './save.ts';

/**
 * Before and after, as TRL's notebook ends: the run's reference and its policy continue the same
 * queries with the same sampling keys; per query both responses and rewards, and per model the mean,
 * median and std of the reward and the KL to the reference. Runs between PPO steps, or after the run;
 * kept runs evaluated side by side (the runs panel) show here too, one response column per model.
 */
export function EvaluatePanel() {
  const id = useId();
  const [samples, setSamples] = useState(16);
  const [seed, setSeed] = useState(0);
  const { pendingId, report, step, title } = useEvaluate();
  // Before/after needs a PPO run's session (its reference and reward); DPO and reward-model runs have none.
  const ppoRun = useMethod((s) => s.running === null);
  const hasModel = useStudio((s) => s.run.info !== null && s.run.phase !== 'loading') && ppoRun;
  const run = () => engine.send({ type: 'evaluate', id: beginEvaluate(), samples, seed });
  return (
    <section className="panel samples evaluate" data-testid="evaluate" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        Evaluate before and after
        {report && (
          <span className="sub" data-testid="evaluate-title">
            {' '}
            · {title ?? `policy at step ${step}`}
          </span>
        )}
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
        <QueryCount id={`${id}-n`} value={samples} onChange={setSamples} />
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
          onClick={() =>
            report &&
            saveFile(
              title ? 'rlhf-studio-eval-runs.csv' : `rlhf-studio-eval-step${step}.csv`,
              evalCsv(report),
              'text/csv',
            )
          }
        >
          CSV
        </button>
      </form>
      {!hasModel && (
        <p className="hint">
          {ppoRun
            ? 'Load a model with Train first; evaluation runs between steps.'
            : 'Before/after is for PPO runs; kept runs of any method are evaluated side by side from the runs list.'}
        </p>
      )}
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
                  {report.models.flatMap((m, k) => [
                    <th key={`t${k}`} scope="col">
                      {k === 0 ? 'reference' : title ? m.name : 'policy'} response
                    </th>,
                    <th key={`r${k}`} scope="col" className="num">
                      reward
                    </th>,
                  ])}
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
